// Property tests of the parsers a model passes through (the module's binary, its
// exports' signatures, its metadata): a damaged artifact is refused with a LoadError,
// never another exception, never accepted half-read. Mutations are seeded: a failure
// names the seed and the case replays.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { LoadError, Model, checkMetadata } from "../src/index.js";

const eta = new Uint8Array(readFileSync(new URL("../../wasm-models/eta/model/eta.wasm", import.meta.url)));

// SplitMix32-style generator: the same draws on every engine.
function random(seed) {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) % n;
  };
}

function mutate(bytes, below) {
  const out = Uint8Array.from(bytes);
  switch (below(3)) {
    case 0: // a few bytes changed anywhere
      for (let k = 1 + below(4); k > 0; k--) out[below(out.length)] = below(256);
      return out;
    case 1: // cut short
      return out.subarray(0, below(out.length));
    default: // a byte changed in the first kilobyte (header, section sizes, types, exports)
      out[below(Math.min(1024, out.length))] = below(256);
      return out;
  }
}

test("a damaged module is loaded whole or refused with a LoadError", async () => {
  let refused = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const bytes = mutate(eta, random(seed));
    try {
      const model = await Model.fromBytes(bytes);
      assert.equal(model.inputs.length, 7, `seed ${seed}: loaded with other inputs`);
    } catch (e) {
      assert.ok(e instanceof LoadError, `seed ${seed}: ${e.name}: ${e.message}`);
      refused++;
    }
  }
  assert.ok(refused > 100, `only ${refused} of 300 damaged modules refused`);
});

test("damaged metadata is refused with a LoadError naming the field", () => {
  // The fields the rules read (the training statistics, most of the section, are not).
  const meta = JSON.parse(new TextDecoder().decode(WebAssembly.Module.customSections(new WebAssembly.Module(eta), "fresco.model")[0]));
  const { name, version, abi, kind, inputs, outputs, interval } = meta;
  const text = JSON.stringify({ name, version, abi, kind, inputs, outputs, interval });
  let parsed = 0;
  for (let seed = 1; seed <= 1000; seed++) {
    const below = random(seed);
    const chars = text.split("");
    for (let k = 1 + below(2); k > 0; k--) chars[below(chars.length)] = "0123456789-.,:[]{}\" \u00e9abcdefnrtu".charAt(below(30));
    let json;
    try {
      json = JSON.parse(chars.join(""));
    } catch {
      continue;
    }
    parsed++;
    try {
      checkMetadata(json, "<fuzz>");
    } catch (e) {
      assert.ok(e instanceof LoadError && /metadata|ABI/.test(e.message), `seed ${seed}: ${e.name}: ${e.message}`);
    }
  }
  assert.ok(parsed > 100, `only ${parsed} mutations still parsed as JSON`);
});

test("metadata with any field of another shape is refused with a LoadError", () => {
  const meta = JSON.parse(new TextDecoder().decode(WebAssembly.Module.customSections(new WebAssembly.Module(eta), "fresco.model")[0]));
  delete meta.training_stats;
  const values = [null, 0, -1, 1.5, 1e308, "", "x", [], {}, true, [null], { default: "1" }];
  // Every place in the document: [parent, key].
  const places = [];
  (function walk(node) {
    if (node === null || typeof node !== "object") return;
    for (const key of Object.keys(node)) {
      places.push([node, key]);
      walk(node[key]);
    }
  })(meta);
  let accepted = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const below = random(seed);
    const [parent, key] = places[below(places.length)];
    const before = parent[key];
    parent[key] = values[below(values.length)];
    try {
      checkMetadata(structuredClone(meta), "<fuzz>");
      accepted++;
    } catch (e) {
      assert.ok(e instanceof LoadError, `seed ${seed}: ${key} = ${JSON.stringify(parent[key])}: ${e.name}: ${e.message}`);
    } finally {
      parent[key] = before;
    }
  }
  assert.ok(accepted < 3000, "some shapes must be refused");
});
