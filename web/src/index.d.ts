// Types of @fresco-ml/web: score fresco model artifacts (ABI v1) in a browser or Node.

/** The base class of every error this package throws. */
export class FrescoError extends Error {}

/** Why a model could not be loaded. */
export type LoadErrorKind = "fetch" | "not-wasm" | "invalid-wasm" | "imports" | "metadata" | "exports" | "abi";

/** A model could not be loaded; `origin` is its URL or `<bytes>`. */
export class LoadError extends FrescoError {
  readonly origin: string;
  readonly kind: LoadErrorKind;
}

/** Why a row could not become the model's inputs. */
export type InputErrorKind = "missing" | "type" | "unknown" | "shape";

/** A row could not become the model's inputs; `input` and `row` say where. */
export class InputError extends FrescoError {
  readonly model: string;
  readonly input: string | undefined;
  readonly row: number | undefined;
  readonly kind: InputErrorKind;
}

/** The model trapped or returned a non-zero status while scoring. */
export class ScoreError extends FrescoError {
  readonly model: string;
  readonly status: number | undefined;
}

/** The interval rule could not be applied. */
export class IntervalError extends FrescoError {}

/** A holdout fraction outside [0, 1]. */
export class HoldoutError extends FrescoError {}

export type InputType = "f64" | "f32" | "i64" | "bool" | "categorical";

export type MissingPolicy = { kind: "nan" } | { kind: "default"; value: number } | { kind: "error" };

export interface InputSpec {
  name: string;
  type: InputType;
  missing: MissingPolicy;
  /** Category names in code order, for an input trained from a category column. */
  categories?: string[];
}

export interface SegmentFeature {
  input: string;
  edges: number[];
}

export interface SegmentCell {
  bins: number[];
  count: number;
  lower_offset: number;
  upper_offset: number;
}

export interface IntervalSpec {
  coverage: number;
  lower: string;
  mid?: string | null;
  upper: string;
  lower_offset?: number;
  upper_offset?: number;
  segments?: { features: SegmentFeature[]; min_count: number; cells: SegmentCell[] } | null;
}

/** The `fresco.model` metadata (docs/design.md §4), missing policies normalised. */
export interface Metadata {
  name: string;
  version: string;
  abi: 1;
  kind: string;
  inputs: InputSpec[];
  outputs: string[];
  source?: { format: string; sha256: string | null };
  interval?: IntervalSpec | null;
  training_stats?: unknown;
}

/** A calibrated range: `[low, high]` holds the outcome with probability `coverage`. */
export interface Interval {
  low: number;
  mid: number;
  high: number;
  coverage: number;
}

/** A value for one input; null, undefined and NaN are missing. */
export type InputValue = number | bigint | boolean | string | null | undefined;

/** One row keyed by input name; an absent input is missing. */
export type Row = Record<string, InputValue>;

/** Columns keyed by input name, all of one length. */
export type Columns = Record<string, ArrayLike<InputValue>>;

/** A loaded, checked model. */
export class Model {
  /** Loads a model from its bytes. */
  static fromBytes(bytes: ArrayBuffer | ArrayBufferView, options?: { origin?: string }): Promise<Model>;
  /** Fetches and loads a model. */
  static fromUrl(url: string | URL, options?: { fetch?: typeof fetch }): Promise<Model>;
  /** Checks and instantiates a compiled module. */
  static fromModule(module: WebAssembly.Module, options?: { origin?: string }): Promise<Model>;

  readonly metadata: Metadata;
  readonly interval: IntervalRule | undefined;
  readonly name: string;
  readonly version: string;
  /** Input names, in the model's order. */
  readonly inputs: string[];
  /** Output names, in the model's order. */
  readonly outputs: string[];

  /** Scores rows given as objects keyed by input name, each value checked against its input's type. */
  predict(rows: Row[]): Scores;
  /** Scores rows given as columns keyed by input name. */
  predictColumns(columns: Columns): Scores;
  /** Scores rows given row-major as f64 in the model's input order (NaN is missing). */
  predictMatrix(values: ArrayLike<number>, nRows?: number): Scores;
}

/** The outputs of one batch. */
export class Scores {
  readonly model: Model;
  /** Row-major inputs as scored (after missing policies). */
  readonly inputs: Float64Array;
  /** Row-major outputs. */
  readonly values: Float64Array;
  readonly length: number;
  readonly outputs: string[];
  get(row: number, output: string | number): number;
  row(row: number): Record<string, number>;
  interval(row: number): Interval;
}

/** A model's interval rule. */
export class IntervalRule {
  static forModel(meta: Metadata): IntervalRule | undefined;
  readonly coverage: number;
  readonly isSegmented: boolean;
  apply(inputs: ArrayLike<number>, outputs: ArrayLike<number>): Interval;
}

/** The bin of `value` under ascending `edges` (NaN: `edges.length + 1`). */
export function segmentBin(edges: ArrayLike<number>, value: number): number;

/** "4–8 min": whole units, widened outward, negatives clamped at zero. */
export function renderRange(interval: { low: number; high: number }, unit: string): string;

/** The f64 an input receives for `value` (NaN when missing), or undefined when its type refuses it. */
export function toModelInput(value: InputValue, spec: InputSpec): number | undefined;

/** Describes a value for an error message. */
export function describe(value: unknown): string;

/** Checks parsed metadata; throws a LoadError naming what is wrong. */
export function checkMetadata(json: unknown, origin: string): Metadata;

export const ABI_VERSION: 1;
export const BUCKETS: 10000;

/** MurmurHash3 x86 32-bit, unsigned. */
export function murmur3_x86_32(bytes: Uint8Array, seed?: number): number;
/** The bucket (0..9999) of entity `id` under `salt`. */
export function holdoutBucket(salt: string, id: string): number;
/** `floor(fraction × 10000 + 0.5)`. */
export function holdoutThreshold(fraction: number): number;

/** A named holdout (docs/design.md §5). */
export class Holdout {
  constructor(name: string, salt: string, fraction: number);
  readonly name: string;
  readonly salt: string;
  readonly fraction: number;
  readonly threshold: number;
  bucket(id: string): number;
  contains(id: string): boolean;
}
