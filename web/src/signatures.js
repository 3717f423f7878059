// The signatures of a module's exported functions, read from its binary: the
// JavaScript API says what a module exports but not with which types, and the ABI
// fixes them (docs/design.md §4). Only the sections needed are read; anything
// malformed is reported, never guessed.

const VAL_TYPES = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };

class Reader {
  constructor(bytes, at = 0, end = bytes.length) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
  }

  byte() {
    if (this.at >= this.end) throw new Error("unexpected end of section");
    return this.bytes[this.at++];
  }

  u32() {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) throw new Error("LEB128 value over 32 bits");
        return result;
      }
    }
    throw new Error("LEB128 value over 5 bytes");
  }

  name() {
    const len = this.u32();
    if (this.at + len > this.end) throw new Error("name past the end of its section");
    const text = new TextDecoder("utf-8", { fatal: true }).decode(this.bytes.subarray(this.at, this.at + len));
    this.at += len;
    return text;
  }

  valTypes() {
    const n = this.u32();
    const types = [];
    for (let i = 0; i < n; i++) {
      const code = this.byte();
      types.push(VAL_TYPES[code] ?? `0x${code.toString(16)}`);
    }
    return types;
  }
}

/**
 * `name → "(i32, i32) -> (i32)"` for every exported function of the module `bytes`
 * (already validated by the engine's compiler). Throws when a section is malformed.
 */
export function exportedSignatures(bytes) {
  const sections = new Reader(bytes, 8);
  const types = [];
  const functionTypes = [];
  const exports = new Map();
  while (sections.at < sections.end) {
    const id = sections.byte();
    const size = sections.u32();
    const start = sections.at;
    if (start + size > bytes.length) throw new Error(`section ${id} runs past the end of the module`);
    const r = new Reader(bytes, start, start + size);
    if (id === 1) {
      for (let n = r.u32(), i = 0; i < n; i++) {
        const form = r.byte();
        if (form !== 0x60) throw new Error(`type ${i} is not a function type (0x${form.toString(16)})`);
        types.push(`(${r.valTypes().join(", ")}) -> (${r.valTypes().join(", ")})`);
      }
    } else if (id === 2) {
      for (let n = r.u32(), i = 0; i < n; i++) {
        r.name();
        r.name();
        // Imported functions come first in the function index space.
        if (r.byte() === 0) functionTypes.push(r.u32());
        else break; // fresco models import nothing; the caller refuses imports anyway
      }
    } else if (id === 3) {
      for (let n = r.u32(), i = 0; i < n; i++) functionTypes.push(r.u32());
    } else if (id === 7) {
      for (let n = r.u32(), i = 0; i < n; i++) {
        const name = r.name();
        const kind = r.byte();
        const index = r.u32();
        if (kind === 0) exports.set(name, index);
      }
    }
    sections.at = start + size;
  }
  const signatures = new Map();
  for (const [name, index] of exports) {
    const type = types[functionTypes[index]];
    if (type === undefined) throw new Error(`export \`${name}\` names function ${index}, which has no type`);
    signatures.set(name, type);
  }
  return signatures;
}
