// The `fresco.model` metadata section (docs/design.md §4), read and checked with the
// rules of the Rust host (`fresco_abi::ModelMetadata::validate`), so that a module one
// host refuses is refused by the other.

import { LoadError } from "./errors.js";

/** The ABI this host speaks. */
export const ABI_VERSION = 1;
/** The largest metadata section accepted, as in the Rust host. */
export const MAX_METADATA_BYTES = 16 * 1024 * 1024;
const MAX_SEGMENT_FEATURES = 8;
const MAX_SEGMENT_CELLS = 65536;
const INPUT_TYPES = new Set(["f64", "f32", "i64", "bool", "categorical"]);

/**
 * Reads the metadata of a compiled `WebAssembly.Module`: exactly one `fresco.model`
 * section of valid UTF-8 JSON that passes every check. Missing policies come back as
 * `{ kind: "nan" }`, `{ kind: "default", value }` or `{ kind: "error" }`.
 */
export function readMetadata(module, origin) {
  const sections = WebAssembly.Module.customSections(module, "fresco.model");
  if (sections.length === 0) throw new LoadError(origin, "metadata", "no `fresco.model` metadata section");
  if (sections.length > 1) {
    throw new LoadError(origin, "metadata", `${sections.length} \`fresco.model\` metadata sections; exactly one is allowed`);
  }
  if (sections[0].byteLength > MAX_METADATA_BYTES) {
    throw new LoadError(origin, "metadata", `metadata section of ${sections[0].byteLength} bytes, more than ${MAX_METADATA_BYTES}`);
  }
  let json;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(sections[0]));
  } catch (cause) {
    throw new LoadError(origin, "metadata", `metadata is not UTF-8 JSON: ${cause.message}`, { cause });
  }
  return checkMetadata(json, origin);
}

/** Checks parsed metadata and returns it with its missing policies normalised. */
export function checkMetadata(json, origin) {
  const bad = (field, reason) => new LoadError(origin, "metadata", `invalid metadata: ${field}: ${reason}`);
  if (!isObject(json)) throw bad("metadata", "not a JSON object");
  if (json.abi !== ABI_VERSION) {
    throw new LoadError(origin, "abi", `metadata declares ABI ${json.abi}, this host speaks ${ABI_VERSION}`);
  }
  if (typeof json.name !== "string" || json.name.trim() === "") throw bad("name", "must not be empty");
  if (typeof json.version !== "string") throw bad("version", "must be a string");
  if (json.kind !== undefined && typeof json.kind !== "string") throw bad("kind", "must be a string");
  if (!Array.isArray(json.inputs)) throw bad("inputs", "must be a list");
  if (!Array.isArray(json.outputs) || json.outputs.some((o) => typeof o !== "string")) {
    throw bad("outputs", "must be a list of names");
  }
  if (json.outputs.length === 0) throw bad("outputs", "a model must declare at least one output");
  const inputs = json.inputs.map((input, i) => checkInput(input, i, bad));
  const dupInput = firstDuplicate(inputs.map((i) => i.name));
  if (dupInput !== undefined) throw bad("inputs", `input \`${dupInput}\` is declared twice`);
  const dupOutput = firstDuplicate(json.outputs);
  if (dupOutput !== undefined) throw bad("outputs", `output \`${dupOutput}\` is declared twice`);
  const meta = { ...json, inputs };
  if (json.interval !== undefined && json.interval !== null) checkInterval(json.interval, meta, bad);
  return meta;
}

function checkInput(input, i, bad) {
  if (!isObject(input)) throw bad("inputs", `input #${i} is not an object`);
  const { name, type } = input;
  if (typeof name !== "string" || name === "") throw bad("inputs", "an input has an empty name");
  if (!INPUT_TYPES.has(type)) throw bad("inputs", `input \`${name}\` has unknown type ${JSON.stringify(type)}`);
  const missing = missingPolicy(input.missing ?? "nan");
  if (missing === undefined) throw bad("inputs", `input \`${name}\` has an unknown missing policy ${JSON.stringify(input.missing)}`);
  if (missing.kind === "default" && !Number.isFinite(missing.value)) {
    throw bad("inputs", `input \`${name}\` has a non-finite default`);
  }
  const categories = input.categories ?? undefined;
  if (categories !== undefined && (!Array.isArray(categories) || categories.some((c) => typeof c !== "string"))) {
    throw bad("inputs", `input \`${name}\`: categories must be a list of names`);
  }
  return { name, type, missing, categories };
}

// serde's form of `MissingPolicy`: "nan", {"default": x} or "error".
function missingPolicy(policy) {
  if (policy === "nan" || policy === "error") return { kind: policy };
  if (policy !== null && typeof policy === "object" && Object.keys(policy).length === 1 && "default" in policy) {
    return typeof policy.default === "number" ? { kind: "default", value: policy.default } : undefined;
  }
  return undefined;
}

const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);

function checkInterval(spec, meta, bad) {
  const fail = (reason) => bad("interval", reason);
  if (!isObject(spec)) throw fail("not an object");
  if (typeof spec.lower !== "string" || typeof spec.upper !== "string") throw fail("`lower` and `upper` must name outputs");
  if (spec.mid !== undefined && spec.mid !== null && typeof spec.mid !== "string") throw fail("`mid` must name an output");
  if (typeof spec.coverage !== "number" || !(spec.coverage > 0 && spec.coverage < 1)) {
    throw fail(`coverage ${spec.coverage} is not in (0, 1)`);
  }
  for (const key of ["lower_offset", "upper_offset"]) {
    if (spec[key] !== undefined && !Number.isFinite(spec[key])) throw fail(`${key} must be finite`);
  }
  for (const name of [spec.lower, spec.mid, spec.upper]) {
    if (name === undefined || name === null) continue;
    if (!meta.outputs.includes(name)) throw fail(`names output \`${name}\`, which the model does not declare`);
  }
  const segments = spec.segments;
  if (segments === undefined || segments === null) return;
  if (!isObject(segments)) throw fail("`segments` is not an object");
  const { features, cells } = segments;
  if (!Array.isArray(features) || features.length === 0 || features.length > MAX_SEGMENT_FEATURES) {
    throw fail(`segments need 1 to ${MAX_SEGMENT_FEATURES} features`);
  }
  if (!Array.isArray(cells) || cells.length > MAX_SEGMENT_CELLS) throw fail(`at most ${MAX_SEGMENT_CELLS} segment cells`);
  for (const f of features) {
    if (!isObject(f) || typeof f.input !== "string") throw fail("a segment feature must name its input");
    const edges = f.edges;
    if (!Array.isArray(edges) || edges.some((e) => !Number.isFinite(e)) || edges.some((e, k) => k > 0 && edges[k - 1] >= e)) {
      throw fail(`segment input \`${f.input}\`: edges must be finite and strictly ascending`);
    }
    if (!meta.inputs.some((i) => i.name === f.input)) {
      throw fail(`segments by input \`${f.input}\`, which the model does not declare`);
    }
  }
  const dup = firstDuplicate(features.map((f) => f.input));
  if (dup !== undefined) throw fail(`segment input \`${dup}\` is declared twice`);
  const seen = new Set();
  for (const cell of cells) {
    if (!isObject(cell)) throw fail("a segment cell is not an object");
    if (!Array.isArray(cell.bins) || cell.bins.length !== features.length) {
      throw fail(`segment ${JSON.stringify(cell.bins)} must name ${features.length} bins, one per feature`);
    }
    cell.bins.forEach((bin, k) => {
      if (!Number.isInteger(bin) || bin < 0 || bin > features[k].edges.length + 1) {
        throw fail(`segment ${JSON.stringify(cell.bins)}: input \`${features[k].input}\` has bins 0..=${features[k].edges.length + 1}`);
      }
    });
    if (!Number.isFinite(cell.lower_offset) || !Number.isFinite(cell.upper_offset)) {
      throw fail(`segment ${JSON.stringify(cell.bins)}: offsets must be finite`);
    }
    if (typeof cell.count !== "number" || typeof segments.min_count !== "number") {
      throw fail(`segment ${JSON.stringify(cell.bins)}: \`count\` and the segments' \`min_count\` must be numbers`);
    }
    if (!(cell.count >= segments.min_count)) {
      throw fail(`segment ${JSON.stringify(cell.bins)} was calibrated on ${cell.count} rows, fewer than min_count ${segments.min_count}`);
    }
    const key = cell.bins.join(",");
    if (seen.has(key)) throw fail(`segment ${JSON.stringify(cell.bins)} is declared twice`);
    seen.add(key);
  }
}

function firstDuplicate(names) {
  const seen = new Set();
  for (const name of names) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}
