// fresco for the web: score fresco model artifacts (ABI v1) in a browser or Node with
// the engine's own WebAssembly, applying every rule of the artifact as the Rust host
// does, and tell held-out entities apart. No dependencies.

export { FrescoError, HoldoutError, InputError, IntervalError, LoadError, ScoreError } from "./errors.js";
export { BUCKETS, Holdout, holdoutBucket, holdoutThreshold, murmur3_x86_32 } from "./holdout.js";
export { describe, toModelInput } from "./inputs.js";
export { IntervalRule, renderRange, segmentBin } from "./interval.js";
export { ABI_VERSION, checkMetadata } from "./metadata.js";
export { Model, Scores } from "./model.js";
