// The holdout function against the reference vectors (see holdout_check.js).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Holdout, HoldoutError } from "../src/index.js";
import { checkHoldoutVectors } from "./holdout_check.js";

const vectors = JSON.parse(readFileSync(new URL("../../testdata/holdout_vectors.json", import.meta.url)));

test("every reference vector: hash, bucket, threshold and decision", () => {
  const { cases, failures } = checkHoldoutVectors(vectors);
  assert.ok(cases >= 50, "the vectors are there");
  assert.deepEqual(failures, []);
});

test("a fraction outside [0, 1] is a HoldoutError naming the holdout", () => {
  for (const fraction of [-0.1, 1.5, NaN, "0.5"]) {
    assert.throws(() => new Holdout("promo", "s", fraction), (e) => e instanceof HoldoutError && /`promo`/.test(e.message));
  }
});
