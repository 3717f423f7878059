// The calibrated interval of one row (docs/design.md §4), with the f64 operations of
// the Rust SDK's `IntervalRule::apply` in the same order, so both hosts give the same
// bits.

import { IntervalError } from "./errors.js";

/**
 * The bin of `value` under ascending `edges`: how many edges are at or below it, or
 * `edges.length + 1` for a missing value (NaN).
 */
export function segmentBin(edges, value) {
  if (Number.isNaN(value)) return edges.length + 1;
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A model's interval rule, resolved once against its input and output names. */
export class IntervalRule {
  /** The rule `meta` declares, or `undefined` when it declares no interval. */
  static forModel(meta) {
    return meta.interval ? new IntervalRule(meta) : undefined;
  }

  constructor(meta) {
    const spec = meta.interval;
    const output = (name) => meta.outputs.indexOf(name);
    this.coverage = spec.coverage;
    this.lower = output(spec.lower);
    this.upper = output(spec.upper);
    this.mid = spec.mid === undefined || spec.mid === null ? -1 : output(spec.mid);
    this.offsets = [spec.lower_offset ?? 0, spec.upper_offset ?? 0];
    const segments = spec.segments;
    if (segments) {
      const names = meta.inputs.map((i) => i.name);
      this.features = segments.features.map((f) => [names.indexOf(f.input), f.edges]);
      this.cells = new Map(segments.cells.map((c) => [c.bins.join(","), [c.lower_offset, c.upper_offset]]));
    }
  }

  /** Whether the offsets depend on the row's segment. */
  get isSegmented() {
    return this.features !== undefined;
  }

  /**
   * The interval of one row: `inputs` as the model read them (after the missing
   * policy) and its `outputs`. Returns `{ low, mid, high, coverage }`.
   */
  apply(inputs, outputs) {
    let [lowerOffset, upperOffset] = this.offsets;
    if (this.features) {
      const bins = this.features.map(([i, edges]) => segmentBin(edges, inputs[i]));
      const cell = this.cells.get(bins.join(","));
      if (cell) [lowerOffset, upperOffset] = cell;
    }
    const a = outputs[this.lower] - lowerOffset;
    const b = outputs[this.upper] + upperOffset;
    const [low, high] = a <= b ? [a, b] : [b, a];
    if (!Number.isFinite(low)) throw new IntervalError(`the interval's low is not finite: ${low}`);
    if (!Number.isFinite(high)) throw new IntervalError(`the interval's high is not finite: ${high}`);
    let mid = this.mid >= 0 ? outputs[this.mid] : low + (high - low) / 2;
    if (!Number.isFinite(mid)) throw new IntervalError(`the interval's mid is not finite: ${mid}`);
    // f64::clamp's comparisons, not Math.min/max, which would turn -0 into 0.
    if (mid < low) mid = low;
    if (mid > high) mid = high;
    return { low, mid, high, coverage: this.coverage };
  }
}

/**
 * "4–8 min": whole units, widened outward, negatives clamped at zero (as
 * `Interval::display` in Rust).
 */
export function renderRange({ low, high }, unit) {
  const lo = Math.floor(Math.max(low, 0));
  const hi = Math.ceil(Math.max(high, 0));
  return lo === hi ? `${lo} ${unit}` : `${lo}\u2013${hi} ${unit}`;
}
