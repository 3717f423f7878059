// A browser host for fresco models (ABI v1, docs/design.md §4): the same `.wasm`
// file that wasmtime runs on the server, scored here with the browser's own
// WebAssembly engine. No imports, no server round trip.

/** A loaded model: its metadata and a scoring function. */
export class FrescoModel {
  /** Fetches, compiles and instantiates a model; refuses a module that breaks the ABI. */
  static async load(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const module = await WebAssembly.compile(await response.arrayBuffer());
    const sections = WebAssembly.Module.customSections(module, "fresco.model");
    if (sections.length !== 1) throw new Error(`${url}: expected one fresco.model section, found ${sections.length}`);
    const meta = JSON.parse(new TextDecoder().decode(sections[0]));
    const instance = await WebAssembly.instantiate(module, {});
    const abi = instance.exports.fresco_abi_version();
    if (abi !== 1 || meta.abi !== 1) throw new Error(`${url}: ABI ${abi} (metadata ${meta.abi}), this host speaks 1`);
    return new FrescoModel(instance.exports, meta);
  }

  constructor(exports, meta) {
    this.exports = exports;
    this.meta = meta;
    this.inputs = meta.inputs.map((i) => i.name);
    this.outputs = meta.outputs;
    this.capacity = 0;
  }

  /** Scores `rows` (an array of arrays of numbers, NaN = missing); returns a Float64Array
   * of rows × outputs values. */
  predict(rows) {
    const nIn = this.inputs.length;
    const nOut = this.outputs.length;
    this.reserve(rows.length);
    // The module may grow its memory on any call: take fresh views after each one.
    const input = new Float64Array(this.exports.memory.buffer, this.inPtr, rows.length * nIn);
    rows.forEach((row, r) => {
      if (row.length !== nIn) throw new Error(`row ${r}: ${row.length} values, the model has ${nIn} inputs`);
      input.set(row, r * nIn);
    });
    const status = this.exports.fresco_predict(this.inPtr, rows.length, this.outPtr);
    if (status !== 0) throw new Error(`model ${this.meta.name}: fresco_predict returned ${status}`);
    return new Float64Array(this.exports.memory.buffer, this.outPtr, rows.length * nOut).slice();
  }

  // Buffers grow geometrically, as in the Rust host, so scoring does not allocate per call.
  reserve(rows) {
    if (rows <= this.capacity) return;
    const wanted = Math.max(rows, this.capacity * 2, 16);
    this.inPtr = this.alloc(wanted * this.inputs.length * 8);
    this.outPtr = this.alloc(wanted * this.outputs.length * 8);
    this.capacity = wanted;
  }

  alloc(bytes) {
    const offset = this.exports.fresco_alloc(bytes) >>> 0;
    if (offset === 0 || offset + bytes > this.exports.memory.buffer.byteLength) {
      throw new Error(`model ${this.meta.name}: fresco_alloc(${bytes}) returned ${offset}`);
    }
    return offset;
  }
}

/** The bin of `value` under ascending `edges`: how many edges are at or below it, or
 * `edges.length + 1` for a missing value (NaN). The rule of `SegmentOffsets::bin`. */
export function segmentBin(edges, value) {
  if (Number.isNaN(value)) return edges.length + 1;
  let bin = 0;
  while (bin < edges.length && edges[bin] <= value) bin++;
  return bin;
}

// Each spec's cells by their bins ("2,3" → offsets), built on first use.
const cellsBySpec = new WeakMap();

/** The conformal offsets for a row: those of its segment when the segment has a cell
 * (Mondrian calibration), else the spec's own. */
function offsetsFor(spec, inputNames, inputs) {
  const own = [spec.lower_offset ?? 0, spec.upper_offset ?? 0];
  const segments = spec.segments;
  if (!segments) return own;
  const bins = segments.features.map((f) => {
    const i = inputNames.indexOf(f.input);
    if (i < 0) throw new Error(`the interval segments by input ${f.input}, which the model does not have`);
    if (i >= inputs.length) throw new Error(`${inputs.length} inputs given, the interval's segments read input #${i}`);
    return segmentBin(f.edges, inputs[i]);
  });
  let cells = cellsBySpec.get(segments);
  if (!cells) {
    cells = new Map(segments.cells.map((c) => [c.bins.join(","), [c.lower_offset, c.upper_offset]]));
    cellsBySpec.set(segments, cells);
  }
  return cells.get(bins.join(",")) ?? own;
}

/** The calibrated interval of one row (its inputs as the model reads them, and its
 * outputs): the arithmetic of the Rust SDK's `IntervalRule::apply`
 * (sdk/src/interval.rs), step for step, so both give the same bits. */
export function interval(meta, inputs, outputs) {
  const spec = meta.interval;
  if (!spec) throw new Error(`model ${meta.name} declares no interval`);
  const at = (name) => {
    const i = meta.outputs.indexOf(name);
    if (i < 0) throw new Error(`the interval names output ${name}, which the model does not have`);
    return outputs[i];
  };
  const [lowerOffset, upperOffset] = offsetsFor(spec, meta.inputs.map((i) => i.name), inputs);
  const a = at(spec.lower) - lowerOffset;
  const b = at(spec.upper) + upperOffset;
  const [low, high] = a <= b ? [a, b] : [b, a];
  if (!Number.isFinite(low) || !Number.isFinite(high)) throw new Error("the interval is not finite");
  let mid = spec.mid ? at(spec.mid) : low + (high - low) / 2;
  mid = Math.min(Math.max(mid, low), high);
  return { low, mid, high, coverage: spec.coverage };
}

/** "4–8 min": whole units, widened outward, negatives clamped at zero (as
 * `Interval::display` in Rust). */
export function renderRange({ low, high }, unit) {
  const lo = Math.floor(Math.max(low, 0));
  const hi = Math.ceil(Math.max(high, 0));
  return lo === hi ? `${lo} ${unit}` : `${lo}\u2013${hi} ${unit}`;
}
