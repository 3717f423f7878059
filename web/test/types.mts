// Compiled by `npm run typecheck` (tsc --strict), never run: the types in
// src/index.d.ts must describe the API as a TypeScript user calls it.
import {
  type Columns,
  Holdout,
  InputError,
  type Interval,
  LoadError,
  type Metadata,
  Model,
  type Row,
  ScoreError,
  holdoutBucket,
  renderRange,
} from "../src/index.js";

export async function usage(bytes: Uint8Array, url: string): Promise<string[]> {
  const model: Model = await Model.fromBytes(bytes, { origin: "eta.wasm" });
  const remote: Model = await Model.fromUrl(new URL(url), { fetch });
  const meta: Metadata = model.metadata;
  const policies = meta.inputs.map((i) => (i.missing.kind === "default" ? i.missing.value : i.missing.kind));
  const row: Row = { distance_km: 2.4, weather: "rain", traffic: null, hour: 19n };
  const columns: Columns = { distance_km: new Float64Array([1, 2]), traffic: [0.1, undefined] };
  const out: string[] = [remote.name, ...policies.map(String)];
  try {
    const scores = model.predict([row]);
    const q50: number = scores.get(0, "q50");
    const byName: Record<string, number> = scores.row(0);
    const range: Interval = scores.interval(0);
    const matrix: Float64Array = model.predictMatrix(new Float64Array(14), 2).values;
    const fromColumns: number = model.predictColumns(columns).length;
    out.push(`${q50} ${byName.q10} ${renderRange(range, "min")} ${matrix.length} ${fromColumns}`);
  } catch (e) {
    if (e instanceof InputError) out.push(`${e.kind} ${e.input ?? "-"} ${e.row ?? "-"}`);
    else if (e instanceof ScoreError) out.push(`${e.model} ${e.status ?? "trap"}`);
    else if (e instanceof LoadError) out.push(`${e.kind} ${e.origin}`);
    else throw e;
  }
  const holdout = new Holdout("eta-ranges", "eta-2026", 0.05);
  out.push(`${holdout.contains("u-1")} ${holdout.threshold} ${holdoutBucket("salt", "u-1")}`);
  return out;
}
