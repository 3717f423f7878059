// A model artifact (ABI v1, docs/design.md §4) run by the JavaScript engine's own
// WebAssembly: the same `.wasm` file that wasmtime runs in a service.

import { InputError, IntervalError, LoadError, ScoreError } from "./errors.js";
import { applyMissingPolicy, convert } from "./inputs.js";
import { IntervalRule } from "./interval.js";
import { ABI_VERSION, readMetadata } from "./metadata.js";
import { exportedSignatures } from "./signatures.js";

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
// The ABI's exported functions (docs/design.md §4).
const SIGNATURES = {
  fresco_abi_version: "() -> (i32)",
  fresco_alloc: "(i32) -> (i32)",
  fresco_predict: "(i32, i32, i32) -> (i32)",
};
// Offsets and sizes travel as i32 across the ABI.
const MAX_BYTES = 2 ** 31 - 1;

/** A loaded, checked model, ready to score. */
export class Model {
  /** Loads a model from its bytes (an ArrayBuffer or a typed array). */
  static async fromBytes(bytes, { origin = "<bytes>" } = {}) {
    const view = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes);
    if (view.length < 8 || MAGIC.some((b, i) => view[i] !== b)) {
      throw new LoadError(origin, "not-wasm", "not a WebAssembly module (no `\\0asm` header)");
    }
    let module;
    try {
      module = await WebAssembly.compile(view);
    } catch (cause) {
      throw new LoadError(origin, "invalid-wasm", `invalid WebAssembly: ${cause.message}`, { cause });
    }
    // The types of the exports, which the JavaScript API does not show, checked before
    // anything of the module runs.
    let signatures;
    try {
      signatures = exportedSignatures(view);
    } catch (cause) {
      throw new LoadError(origin, "invalid-wasm", `unreadable module: ${cause.message}`, { cause });
    }
    for (const [name, wanted] of Object.entries(SIGNATURES)) {
      const found = signatures.get(name);
      if (found !== undefined && found !== wanted) {
        throw new LoadError(origin, "exports", `export \`${name}\` should be ${wanted}, found ${found}`);
      }
    }
    return Model.fromModule(module, { origin });
  }

  /** Fetches a model; `fetch` defaults to the global one. */
  static async fromUrl(url, { fetch = globalThis.fetch } = {}) {
    let response;
    try {
      response = await fetch(url);
    } catch (cause) {
      throw new LoadError(String(url), "fetch", `could not fetch: ${cause.message}`, { cause });
    }
    if (!response.ok) throw new LoadError(String(url), "fetch", `HTTP ${response.status}`);
    return Model.fromBytes(await response.arrayBuffer(), { origin: String(url) });
  }

  /**
   * Checks and instantiates a compiled `WebAssembly.Module`. The JavaScript API does
   * not show the exports' types, so only their arity is checked here; `fromBytes` and
   * `fromUrl` also check the types.
   */
  static async fromModule(module, { origin = "<module>" } = {}) {
    const imports = WebAssembly.Module.imports(module);
    if (imports.length > 0) {
      const { module: from, name } = imports[0];
      throw new LoadError(origin, "imports", `imports \`${from}::${name}\`, but fresco models must have no imports`);
    }
    const meta = readMetadata(module, origin);
    const label = `${meta.name}@${meta.version}`;
    const kinds = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
    const wanted = { memory: "memory", fresco_abi_version: "function", fresco_alloc: "function", fresco_predict: "function" };
    for (const [name, kind] of Object.entries(wanted)) {
      if (kinds.get(name) !== kind) {
        throw new LoadError(label, "exports", `must export ${kind} \`${name}\`${kinds.has(name) ? ` (it is a ${kinds.get(name)})` : ""}`);
      }
    }
    let instance;
    try {
      instance = await WebAssembly.instantiate(module, {});
    } catch (cause) {
      throw new LoadError(label, "invalid-wasm", `could not instantiate: ${cause.message}`, { cause });
    }
    const exports = instance.exports;
    const arity = { fresco_abi_version: 0, fresco_alloc: 1, fresco_predict: 3 };
    for (const [name, n] of Object.entries(arity)) {
      if (exports[name].length !== n) {
        throw new LoadError(label, "exports", `\`${name}\` takes ${exports[name].length} parameters, the ABI says ${n}`);
      }
    }
    let abi;
    try {
      abi = exports.fresco_abi_version();
    } catch (cause) {
      throw new LoadError(label, "abi", `fresco_abi_version trapped: ${cause.message}`, { cause });
    }
    if (abi !== ABI_VERSION || abi !== meta.abi) {
      throw new LoadError(label, "abi", `exports ABI ${abi}, its metadata declares ${meta.abi}; this host speaks ${ABI_VERSION}`);
    }
    return new Model(module, exports, meta);
  }

  /** Use the static loaders; this constructor trusts its arguments. */
  constructor(module, exports, meta) {
    this.module = module;
    this.exports = exports;
    /** The metadata, as declared by the artifact (missing policies normalised). */
    this.metadata = meta;
    this.interval = IntervalRule.forModel(meta);
    this.inputIndex = new Map(meta.inputs.map((input, i) => [input.name, i]));
    this.capacity = 0;
    this.inPtr = 0;
    this.outPtr = 0;
  }

  /** The model's name. */
  get name() {
    return this.metadata.name;
  }

  /** The model's version. */
  get version() {
    return this.metadata.version;
  }

  /** Input names, in the model's order. */
  get inputs() {
    return this.metadata.inputs.map((i) => i.name);
  }

  /** Output names, in the model's order. */
  get outputs() {
    return this.metadata.outputs;
  }

  /**
   * Scores rows given as objects keyed by input name. A value may be a number, a
   * bigint, a boolean, a category name (for an input that declares its categories),
   * or null / undefined / NaN for a missing value; an input absent from the object is
   * missing. Each value is checked against its input's type, then each input's missing
   * policy applies.
   */
  predict(rows) {
    if (!Array.isArray(rows)) throw new InputError({ model: this.name, kind: "shape", reason: "rows must be an array of objects" });
    const n = this.metadata.inputs.length;
    const matrix = new Float64Array(rows.length * n);
    rows.forEach((row, r) => {
      if (row === null || typeof row !== "object") {
        throw new InputError({ model: this.name, row: r, kind: "shape", reason: "is not an object keyed by input name" });
      }
      let known = 0;
      for (let i = 0; i < n; i++) {
        const name = this.metadata.inputs[i].name;
        if (Object.hasOwn(row, name)) known++;
        matrix[r * n + i] = convert(this.metadata, i, row[name], r);
      }
      if (known !== Object.keys(row).length) {
        throw this.unknownInput(Object.keys(row).find((key) => !this.inputIndex.has(key)), r);
      }
    });
    return this.score(matrix, rows.length);
  }

  /**
   * Scores rows given as columns: an object of arrays (or typed arrays) keyed by input
   * name, all of one length. A column absent from the object is missing in every row.
   */
  predictColumns(columns) {
    const names = Object.keys(columns);
    for (const name of names) {
      if (!this.inputIndex.has(name)) throw this.unknownInput(name);
    }
    const length = names.length === 0 ? 0 : columns[names[0]].length;
    for (const name of names) {
      if (columns[name].length !== length) {
        throw new InputError({ model: this.name, input: name, kind: "shape", reason: `has ${columns[name].length} values, \`${names[0]}\` has ${length}` });
      }
    }
    const n = this.metadata.inputs.length;
    const matrix = new Float64Array(length * n).fill(NaN);
    for (const name of names) {
      const i = this.inputIndex.get(name);
      const column = columns[name];
      for (let r = 0; r < length; r++) matrix[r * n + i] = convert(this.metadata, i, column[r], r);
    }
    return this.score(matrix, length);
  }

  /**
   * Scores `nRows` rows given row-major as f64 in the model's input order (NaN is a
   * missing value), as the Rust host's `Model::predict` with the missing policy applied.
   * The array is copied, never changed.
   */
  predictMatrix(values, nRows = values.length / this.metadata.inputs.length) {
    const n = this.metadata.inputs.length;
    if (!Number.isInteger(nRows) || nRows < 0 || nRows * n !== values.length) {
      throw new InputError({ model: this.name, kind: "shape", reason: `${values.length} values are not ${nRows} rows of ${n} inputs` });
    }
    return this.score(Float64Array.from(values), nRows);
  }

  unknownInput(input, row) {
    return new InputError({ model: this.name, input, row, kind: "unknown", reason: "is not an input of this model" });
  }

  // Applies the missing policy to `matrix` (owned) and runs the module.
  score(matrix, nRows) {
    applyMissingPolicy(this.metadata, matrix);
    const nOut = this.metadata.outputs.length;
    const outputs = new Float64Array(nRows * nOut);
    if (nRows > 0) {
      this.reserve(nRows);
      // The module may grow its memory on any call: views are taken after each one, as
      // bytes, since the ABI does not promise 8-byte aligned offsets.
      new Uint8Array(this.exports.memory.buffer, this.inPtr, matrix.byteLength).set(new Uint8Array(matrix.buffer));
      let status;
      try {
        status = this.exports.fresco_predict(this.inPtr, nRows, this.outPtr);
      } catch (cause) {
        this.discardInstance();
        throw new ScoreError(this.name, `trapped: ${cause.message}`, { cause });
      }
      if (status !== 0) throw new ScoreError(this.name, `fresco_predict returned status ${status}`, { status });
      new Uint8Array(outputs.buffer).set(new Uint8Array(this.exports.memory.buffer, this.outPtr, outputs.byteLength));
      // Which NaN a computation made differs by CPU and engine: hand out the one
      // canonical NaN, as every host does (design.md, "Hosts").
      for (let i = 0; i < outputs.length; i++) {
        if (outputs[i] !== outputs[i]) outputs[i] = NaN;
      }
    }
    return new Scores(this, matrix, outputs, nRows);
  }

  // A trap may leave the instance's state inconsistent: as the Rust host does, the next
  // call gets a fresh instance (synchronous instantiation of an already compiled module).
  discardInstance() {
    this.capacity = 0;
    try {
      this.exports = new WebAssembly.Instance(this.module, {}).exports;
    } catch {
      // Kept as it was; its buffers are allocated afresh.
    }
  }

  // Buffers grow geometrically, as in the Rust host, so scoring does not allocate per call.
  reserve(rows) {
    if (rows <= this.capacity) return;
    const wanted = Math.max(rows, this.capacity * 2, 16);
    this.inPtr = this.alloc(wanted * this.metadata.inputs.length * 8);
    this.outPtr = this.alloc(wanted * this.metadata.outputs.length * 8);
    this.capacity = wanted;
  }

  alloc(bytes) {
    if (bytes > MAX_BYTES) throw new ScoreError(this.name, `a batch of ${bytes} bytes does not fit the ABI's 32-bit offsets`);
    let offset;
    try {
      offset = this.exports.fresco_alloc(bytes) >>> 0;
    } catch (cause) {
      throw new ScoreError(this.name, `fresco_alloc(${bytes}) trapped: ${cause.message}`, { cause });
    }
    if (offset === 0 || offset + bytes > this.exports.memory.buffer.byteLength) {
      throw new ScoreError(this.name, `fresco_alloc(${bytes}) returned ${offset}, outside its memory`);
    }
    return offset;
  }
}

/** The outputs of one batch, with the inputs the model read (after missing policies). */
export class Scores {
  constructor(model, inputs, values, length) {
    this.model = model;
    /** Row-major inputs as scored, rows × inputs. */
    this.inputs = inputs;
    /** Row-major outputs, rows × outputs. */
    this.values = values;
    /** Number of rows. */
    this.length = length;
  }

  /** Output names. */
  get outputs() {
    return this.model.outputs;
  }

  /** Output `output` (a name or an index) of row `row`. */
  get(row, output) {
    const j = typeof output === "number" ? output : this.model.outputs.indexOf(output);
    if (!(row >= 0 && row < this.length) || !(j >= 0 && j < this.model.outputs.length)) {
      throw new RangeError(`no output ${output} in row ${row} of ${this.length}`);
    }
    return this.values[row * this.model.outputs.length + j];
  }

  /** Row `row` as an object keyed by output name. */
  row(row) {
    return Object.fromEntries(this.model.outputs.map((name, j) => [name, this.get(row, j)]));
  }

  /**
   * The calibrated interval of row `row`, `{ low, mid, high, coverage }`, by the
   * model's interval rule (segments included).
   */
  interval(row) {
    const rule = this.model.interval;
    if (!rule) throw new IntervalError(`model \`${this.model.name}\` declares no interval`);
    const nIn = this.model.metadata.inputs.length;
    const nOut = this.model.outputs.length;
    this.get(row, 0);
    return rule.apply(this.inputs.subarray(row * nIn, (row + 1) * nIn), this.values.subarray(row * nOut, (row + 1) * nOut));
  }
}
