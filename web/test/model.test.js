// Loading, checking and scoring the shipped ETA model, the typed errors, and the
// conversion rules of each input type.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { InputError, IntervalRule, LoadError, Model, renderRange, segmentBin, toModelInput } from "../src/index.js";

const etaBytes = readFileSync(new URL("../../wasm-models/eta/model/eta.wasm", import.meta.url));
const order = { distance_km: 2.4, hour: 19.5, day_of_week: 4, traffic: 0.3, weather: 1, prep_time_min: 12, orders_last_30min: 9 };

// A custom section: id 0, size, name, bytes (LEB128 lengths).
function customSection(name, text) {
  const leb = (n) => {
    const out = [];
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n !== 0) byte |= 0x80;
      out.push(byte);
    } while (n !== 0);
    return out;
  };
  const nameBytes = [...new TextEncoder().encode(name)];
  const body = [...leb(nameBytes.length), ...nameBytes, ...new TextEncoder().encode(text)];
  return Uint8Array.from([0, ...leb(body.length), ...body]);
}

const emptyModule = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const concat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));

test("the ETA model loads with its metadata and interval rule", async () => {
  const model = await Model.fromBytes(etaBytes);
  assert.equal(model.name, "eta");
  assert.deepEqual(model.inputs, Object.keys(order));
  assert.deepEqual(model.outputs, ["q10", "q50", "q90"]);
  assert.ok(model.interval.isSegmented);
  const scores = model.predict([order]);
  const iv = scores.interval(0);
  assert.ok(iv.low < iv.mid && iv.mid < iv.high, JSON.stringify(iv));
  assert.equal(iv.coverage, 0.8);
  assert.match(renderRange(iv, "min"), /^\d+–\d+ min$/);
});

test("objects, columns and a row-major matrix score alike", async () => {
  const model = await Model.fromBytes(etaBytes);
  const rows = [order, { ...order, traffic: null, distance_km: 7.5 }, { ...order, weather: 2 }];
  const byObjects = model.predict(rows);
  const columns = Object.fromEntries(model.inputs.map((name) => [name, rows.map((r) => r[name])]));
  const byColumns = model.predictColumns(columns);
  const matrix = rows.flatMap((r) => model.inputs.map((name) => r[name] ?? NaN));
  const byMatrix = model.predictMatrix(matrix);
  assert.deepEqual(Array.from(byColumns.values), Array.from(byObjects.values));
  assert.deepEqual(Array.from(byMatrix.values), Array.from(byObjects.values));
  assert.equal(byObjects.length, 3);
  assert.equal(byObjects.get(1, "q50"), byObjects.row(1).q50);
});

test("bad values are InputErrors naming the input and the row", async () => {
  const model = await Model.fromBytes(etaBytes);
  const cases = [
    [{ ...order, distance_km: "far" }, "type", "distance_km", /expected f64, got the string "far"/],
    [{ ...order, weather: 1.5 }, "type", "weather", /expected a category code/],
    [{ ...order, weather: true }, "type", "weather", /the boolean true/],
    [{ ...order, surge: 2 }, "unknown", "surge", /not an input/],
  ];
  for (const [row, kind, input, message] of cases) {
    assert.throws(
      () => model.predict([order, row]),
      (e) => e instanceof InputError && e.kind === kind && e.input === input && e.row === 1 && message.test(e.message),
      `${kind} ${input}`,
    );
  }
  assert.throws(() => model.predictMatrix([1, 2, 3]), (e) => e instanceof InputError && e.kind === "shape");
  assert.throws(
    () => model.predictColumns({ hour: [1, 2], traffic: [0.1] }),
    (e) => e instanceof InputError && e.kind === "shape" && e.input === "traffic",
  );
});

test("each input type admits only what the Rust host admits", () => {
  const spec = (type, categories) => ({ name: "x", type, missing: { kind: "nan" }, categories });
  assert.equal(toModelInput(7, spec("i64")), 7);
  assert.equal(toModelInput(2.5, spec("i64")), undefined);
  assert.equal(toModelInput(2 ** 53 + 2, spec("f64")), 2 ** 53 + 2);
  assert.equal(toModelInput(2n ** 53n + 1n, spec("f64")), undefined);
  assert.equal(toModelInput(2n ** 24n + 1n, spec("f32")), undefined);
  assert.equal(toModelInput(-3n, spec("i64")), -3);
  assert.equal(toModelInput(true, spec("bool")), 1);
  assert.equal(toModelInput(2, spec("bool")), undefined);
  assert.equal(toModelInput(-1, spec("categorical")), undefined);
  assert.equal(toModelInput(Infinity, spec("i64")), undefined);
  assert.ok(Number.isNaN(toModelInput(null, spec("i64"))));
  assert.equal(toModelInput("rain", spec("f64")), undefined);
  // Category names, for an input that lists them: an unlisted name is missing.
  const weather = spec("categorical", ["clear", "rain", "storm"]);
  assert.equal(toModelInput("rain", weather), 1);
  assert.ok(Number.isNaN(toModelInput("hail", weather)));
  assert.equal(toModelInput(2, weather), 2);
  assert.equal(toModelInput("rain", spec("categorical")), undefined);
});

test("a module that breaks the ABI is a LoadError of the right kind", async () => {
  const meta = (fields) => JSON.stringify({ name: "m", version: "1", abi: 1, kind: "custom", inputs: [], outputs: ["y"], ...fields });
  const cases = [
    [Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), "not-wasm"],
    [etaBytes.subarray(0, 100), "invalid-wasm"],
    [emptyModule, "metadata"],
    [concat(etaBytes, customSection("fresco.model", meta({}))), "metadata"],
    [concat(emptyModule, customSection("fresco.model", "{not json")), "metadata"],
    [concat(emptyModule, customSection("fresco.model", meta({ abi: 2 }))), "abi"],
    [concat(emptyModule, customSection("fresco.model", meta({ outputs: [] }))), "metadata"],
    [concat(emptyModule, customSection("fresco.model", meta({ inputs: [{ name: "a", type: "f64", missing: { default: null } }] }))), "metadata"],
    [concat(emptyModule, customSection("fresco.model", meta({}))), "exports"],
  ];
  for (const [bytes, kind] of cases) {
    await assert.rejects(Model.fromBytes(bytes), (e) => e instanceof LoadError && e.kind === kind, kind);
  }
});

test("segment bins follow the edges, NaN in its own bin", () => {
  assert.deepEqual([-1, 0.3, 0.5, 0.6, 9, NaN].map((x) => segmentBin([0.3, 0.6], x)), [0, 1, 1, 2, 2, 3]);
  assert.equal(IntervalRule.forModel({ inputs: [], outputs: ["y"] }), undefined);
});
