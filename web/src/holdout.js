// Holdout assignment (docs/design.md §5), the same function as the Rust SDK and Python:
//   bucket(salt, id) = murmur3_x86_32(utf8(salt + ":" + id), seed 0) mod 10000
//   held out ⇔ bucket < floor(fraction × 10000 + 0.5)

import { HoldoutError } from "./errors.js";

/** Buckets an entity id can fall in. */
export const BUCKETS = 10000;

const encoder = new TextEncoder();

/** MurmurHash3 x86 32-bit of `bytes` (a Uint8Array) with `seed`, as an unsigned integer. */
export function murmur3_x86_32(bytes, seed = 0) {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const mix = (k) => Math.imul(rotl(Math.imul(k, c1), 15), c2);
  let h = seed | 0;
  const tail = bytes.length & ~3;
  for (let i = 0; i < tail; i += 4) {
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h = (Math.imul(rotl(h ^ mix(k), 13), 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  switch (bytes.length & 3) {
    case 3:
      k ^= bytes[tail + 2] << 16;
    // falls through
    case 2:
      k ^= bytes[tail + 1] << 8;
    // falls through
    case 1:
      k ^= bytes[tail];
      h ^= mix(k);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function rotl(x, r) {
  return (x << r) | (x >>> (32 - r));
}

/** The bucket (0..9999) of entity `id` under `salt`. */
export function holdoutBucket(salt, id) {
  return murmur3_x86_32(encoder.encode(`${salt}:${id}`)) % BUCKETS;
}

/** Buckets below this are held out: `floor(fraction × 10000 + 0.5)`. */
export function holdoutThreshold(fraction) {
  checkFraction("holdout", fraction);
  return Math.floor(fraction * BUCKETS + 0.5);
}

function checkFraction(name, fraction) {
  if (typeof fraction !== "number" || !(fraction >= 0 && fraction <= 1)) {
    throw new HoldoutError(`holdout \`${name}\`: fraction ${fraction} is not in [0, 1]`);
  }
}

/**
 * A named holdout: entities whose bucket is below the threshold are scored and logged
 * but never treated, so a client can show them the untreated experience.
 */
export class Holdout {
  constructor(name, salt, fraction) {
    checkFraction(name, fraction);
    this.name = name;
    this.salt = salt;
    this.fraction = fraction;
    this.threshold = holdoutThreshold(fraction);
  }

  /** The bucket of `id`. */
  bucket(id) {
    return holdoutBucket(this.salt, id);
  }

  /** Whether `id` is held out. */
  contains(id) {
    return this.bucket(id) < this.threshold;
  }
}
