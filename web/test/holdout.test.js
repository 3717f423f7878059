// The holdout function against the reference vectors of docs/design.md §5, made by an
// independent Python implementation (`tools/holdout_vectors.py`).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { Holdout, HoldoutError, holdoutBucket, holdoutThreshold, murmur3_x86_32 } from "../src/index.js";

const vectors = JSON.parse(readFileSync(new URL("../../testdata/holdout_vectors.json", import.meta.url)));

test("every reference vector: hash, bucket, threshold and decision", () => {
  assert.ok(vectors.cases.length >= 50, "the vectors are there");
  for (const [fraction, threshold] of Object.entries(vectors.thresholds)) {
    assert.equal(holdoutThreshold(Number(fraction)), threshold, `threshold of ${fraction}`);
  }
  for (const c of vectors.cases) {
    const key = new TextEncoder().encode(`${c.salt}:${c.id}`);
    assert.equal(murmur3_x86_32(key), c.murmur3_x86_32, `murmur3 of ${c.salt}:${c.id}`);
    assert.equal(holdoutBucket(c.salt, c.id), c.bucket, `bucket of ${c.salt}:${c.id}`);
    for (const [fraction, held] of Object.entries(c.in_holdout)) {
      assert.equal(new Holdout("h", c.salt, Number(fraction)).contains(c.id), held, `${c.salt}:${c.id} at ${fraction}`);
    }
  }
});

test("a fraction outside [0, 1] is a HoldoutError naming the holdout", () => {
  for (const fraction of [-0.1, 1.5, NaN, "0.5"]) {
    assert.throws(() => new Holdout("promo", "s", fraction), (e) => e instanceof HoldoutError && /`promo`/.test(e.message));
  }
});
