// The package against the Rust host, bit for bit: every case written by
// `fresco_examples::web_cases` (oracle fixtures under each missing policy, the ETA
// model with its segmented interval, and modules that break the ABI). Runs in Node (`parity.test.js`) and in Chromium
// (`page.html`); `load(file)` returns a file's bytes from the cases directory.

import { InputError, LoadError, Model, ScoreError, renderRange } from "../src/index.js";

const view = new DataView(new ArrayBuffer(8));

/** The hex of an f64's bits. */
export function hex(x) {
  view.setFloat64(0, x);
  return view.getBigUint64(0).toString(16).padStart(16, "0");
}

/** The f64 with these bits. */
export function fromHex(bits) {
  view.setBigUint64(0, BigInt(`0x${bits}`));
  return view.getFloat64(0);
}

/** What scoring one row answered, in the form the Rust host's answers take. */
function answerOf(run) {
  try {
    const scores = run();
    const answer = { outputs: Array.from(scores.values, hex) };
    if (scores.model.interval) {
      try {
        const iv = scores.interval(0);
        answer.interval = { bounds: [iv.low, iv.mid, iv.high].map(hex), range: renderRange(iv, "min") };
      } catch (e) {
        answer.interval = { error: e.message };
      }
    }
    return answer;
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return e.kind === "missing" ? { missing: e.input } : e.kind === "type" ? { invalid: e.input } : { unexpected: e.message };
  }
}

// Key order aside, the same answer: outputs bit for bit, the same refusal, the same
// interval bounds and rendered range (or both failing).
function canonical(answer) {
  const interval = answer.interval && (answer.interval.error ? { error: true } : answer.interval);
  return JSON.stringify([answer.outputs, answer.missing, answer.invalid, answer.unexpected, interval && [interval.error, interval.bounds, interval.range]]);
}

function same(got, want) {
  return canonical(got) === canonical(want);
}

/**
 * Checks every case; returns `{ models, rows, failures }` (failures: strings, empty
 * when everything matched).
 */
export async function checkParity(load) {
  const { cases, hostile } = JSON.parse(new TextDecoder().decode(await load("cases.json")));
  const failures = [];
  let rows = 0;
  for (const c of cases) {
    const model = await Model.fromBytes(await load(c.model), { origin: c.model });
    const names = model.inputs;
    const fail = (r, path, got, want) => {
      if (failures.length < 20) failures.push(`${c.model} row ${r} (${path}): got ${JSON.stringify(got)}, Rust ${JSON.stringify(want)}`);
      else if (failures.length === 20) failures.push("…");
    };
    let firstMissing;
    c.rows.forEach((bits, r) => {
      const row = bits.map(fromHex);
      const raw = answerOf(() => model.predictMatrix(row, 1));
      if (!same(raw, c.raw[r])) fail(r, "raw", raw, c.raw[r]);
      // Objects keyed by input name: a missing value as NaN, null, or no key at all.
      const object = {};
      row.forEach((x, i) => {
        if (!Number.isNaN(x)) object[names[i]] = x;
        else if (i % 3 === 1) object[names[i]] = null;
        else if (i % 3 === 2) object[names[i]] = NaN;
      });
      const typed = answerOf(() => model.predict([object]));
      if (!same(typed, c.typed[r])) fail(r, "typed", typed, c.typed[r]);
      if (firstMissing === undefined && c.raw[r].missing) firstMissing = { row: r, input: c.raw[r].missing };
      rows++;
    });
    // The whole batch in one call: the same outputs, or the first row refused.
    const flat = c.rows.flat().map(fromHex);
    try {
      const scores = model.predictMatrix(flat, c.rows.length);
      if (firstMissing) fail(firstMissing.row, "batch", "scored", `missing ${firstMissing.input}`);
      const want = c.raw.flatMap((a) => a.outputs);
      const got = Array.from(scores.values, hex);
      const differ = got.findIndex((b, k) => b !== want[k]);
      if (got.length !== want.length || differ >= 0) fail(differ, "batch", got[differ], want[differ]);
    } catch (e) {
      if (!(e instanceof InputError) || !firstMissing || e.row !== firstMissing.row || e.input !== firstMissing.input) {
        fail(e.row, "batch", e.message, firstMissing);
      }
    }
  }
  // Modules that break the ABI: refused where the Rust host refuses them, at load or
  // when scoring, with a typed error.
  for (const h of hostile) {
    let got;
    try {
      const model = await Model.fromBytes(await load(h.model), { origin: h.model });
      try {
        got = { outputs: Array.from(model.predictMatrix([1, 2], 1).values, hex) };
      } catch (e) {
        got = e instanceof ScoreError ? { score: e.message } : { unexpected: `${e.name}: ${e.message}` };
      }
    } catch (e) {
      got = e instanceof LoadError ? { load: e.message } : { unexpected: `${e.name}: ${e.message}` };
    }
    const kind = (answer) => Object.keys(answer)[0];
    const agrees = kind(got) === kind(h.rust) && (kind(got) !== "outputs" || JSON.stringify(got) === JSON.stringify(h.rust));
    if (!agrees) failures.push(`${h.model}: ${JSON.stringify(got)}, Rust ${JSON.stringify(h.rust)}`);
  }
  return { models: cases.length + hostile.length, rows, failures };
}
