// The holdout function against the reference vectors of docs/design.md §5 (made by an
// independent Python implementation, `tools/holdout_vectors.py`). Runs in Node
// (`holdout.test.js`) and in Chromium (`page.html`).

import { Holdout, holdoutBucket, holdoutThreshold, murmur3_x86_32 } from "../src/index.js";

/** Checks every vector; returns `{ cases, failures }`. */
export function checkHoldoutVectors(vectors) {
  const failures = [];
  const expect = (what, got, want) => {
    if (got !== want) failures.push(`${what}: got ${got}, want ${want}`);
  };
  for (const [fraction, threshold] of Object.entries(vectors.thresholds)) {
    expect(`threshold of ${fraction}`, holdoutThreshold(Number(fraction)), threshold);
  }
  for (const c of vectors.cases) {
    const key = new TextEncoder().encode(`${c.salt}:${c.id}`);
    expect(`murmur3 of ${c.salt}:${c.id}`, murmur3_x86_32(key), c.murmur3_x86_32);
    expect(`bucket of ${c.salt}:${c.id}`, holdoutBucket(c.salt, c.id), c.bucket);
    for (const [fraction, held] of Object.entries(c.in_holdout)) {
      expect(`${c.salt}:${c.id} at ${fraction}`, new Holdout("h", c.salt, Number(fraction)).contains(c.id), held);
    }
  }
  return { cases: vectors.cases.length, failures };
}
