// How a value given by a caller becomes the f64 a model input receives: the rules of
// the Rust SDK (`fresco::Value::to_model_input`, then each input's missing policy),
// plus category names for inputs that declare them (as LightGBM and the Python
// package read a pandas category column).

import { InputError } from "./errors.js";

const MAX_EXACT_F64_INT = 2 ** 53;
const MAX_EXACT_F32_INT = 2 ** 24;
const TYPE_NAMES = {
  f64: "f64",
  f32: "f32",
  i64: "i64",
  bool: "bool",
  categorical: "a category code (non-negative integer)",
};

/** Describes a value for an error message: `the string "x"`, `the float 2.5`. */
export function describe(value) {
  switch (typeof value) {
    case "string":
      return value.length > 64 ? `the string ${JSON.stringify(value.slice(0, 64))}…` : `the string ${JSON.stringify(value)}`;
    case "number":
      return `the float ${value}`;
    case "bigint":
      return `the integer ${value}`;
    case "boolean":
      return `the boolean ${value}`;
    default:
      return value === null ? "null" : `a value of type ${typeof value}`;
  }
}

function exactInteger(x) {
  return Number.isFinite(x) && Number.isInteger(x) && Math.abs(x) <= MAX_EXACT_F64_INT;
}

/**
 * The f64 that input `spec` receives for `value`, NaN when missing; `undefined` when
 * the input's type does not admit the value (the caller reports it).
 */
export function toModelInput(value, spec) {
  if (value === null || value === undefined) return NaN;
  const ty = spec.type;
  switch (typeof value) {
    case "number":
      if (Number.isNaN(value)) return NaN;
      if (ty === "f64" || ty === "f32") return value;
      if (ty === "i64") return exactInteger(value) ? value : undefined;
      if (ty === "categorical") return exactInteger(value) && value >= 0 ? value : undefined;
      return value === 0 || value === 1 ? value : undefined;
    case "bigint": {
      const limit = BigInt(ty === "f32" ? MAX_EXACT_F32_INT : MAX_EXACT_F64_INT);
      if (ty === "bool") return value === 0n || value === 1n ? Number(value) : undefined;
      if (ty === "categorical") return value >= 0n && value <= limit ? Number(value) : undefined;
      return value >= -limit && value <= limit ? Number(value) : undefined;
    }
    case "boolean":
      return ty === "categorical" ? undefined : value ? 1 : 0;
    case "string": {
      // A name is a category only for an input that lists its categories; a name not
      // listed is missing, as in LightGBM.
      if (ty !== "categorical" || spec.categories === undefined) return undefined;
      const code = spec.categories.indexOf(value);
      return code < 0 ? NaN : code;
    }
    default:
      return undefined;
  }
}

/** Converts `value` for input `i` of `meta`, or throws the `type` InputError. */
export function convert(meta, i, value, row) {
  const spec = meta.inputs[i];
  const x = toModelInput(value, spec);
  if (x === undefined) {
    throw new InputError({
      model: meta.name,
      input: spec.name,
      row,
      kind: "type",
      reason: `expected ${TYPE_NAMES[spec.type]}, got ${describe(value)}`,
    });
  }
  return x;
}

/**
 * Applies each input's missing policy to row-major `rows` in place: `nan` passes NaN,
 * `default` substitutes its value, `error` throws the `missing` InputError naming the
 * first such row.
 */
export function applyMissingPolicy(meta, rows) {
  const inputs = meta.inputs;
  const n = inputs.length;
  for (let r = 0, at = 0; at < rows.length; r++) {
    for (let i = 0; i < n; i++, at++) {
      if (!Number.isNaN(rows[at])) continue;
      const missing = inputs[i].missing;
      if (missing.kind === "default") rows[at] = missing.value;
      else if (missing.kind === "error") {
        throw new InputError({ model: meta.name, input: inputs[i].name, row: r, kind: "missing", reason: "is missing and the model requires it" });
      }
    }
  }
}
