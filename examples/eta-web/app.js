// The ETA page: one text field per model input (built from the model's metadata),
// the calibrated range recomputed on every keystroke.
import { FrescoModel, interval, renderRange } from "./fresco.js";

const HELP = {
  distance_km: "riding distance, km",
  hour: "time of day, 0–24",
  day_of_week: "0 = Monday … 6 = Sunday",
  traffic: "congestion 0–1 (empty: no reading)",
  weather: "0 clear, 1 rain, 2 storm",
  prep_time_min: "restaurant's usual prep time, min",
  orders_last_30min: "restaurant's orders in the last 30 min",
};
const EXAMPLE = { distance_km: "2.4", hour: "19.5", day_of_week: "4", traffic: "0.3", weather: "1", prep_time_min: "12", orders_last_30min: "9" };

function bitsToHex(x) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  return view.getBigUint64(0).toString(16).padStart(16, "0");
}

function hexToFloat(hex) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt("0x" + hex));
  return view.getFloat64(0);
}

// A typed field: empty is a missing value; anything else must be a number.
function parseField(text) {
  const t = text.trim();
  if (t === "") return NaN;
  const x = Number(t);
  if (Number.isNaN(x)) throw new Error(`"${text}" is not a number`);
  return x;
}

async function main() {
  const status = document.getElementById("status");
  let model;
  try {
    model = await FrescoModel.load("eta.wasm");
  } catch (e) {
    status.textContent = `could not load the model: ${e.message}`;
    throw e;
  }
  const form = document.getElementById("inputs");
  for (const name of model.inputs) {
    const label = document.createElement("label");
    label.innerHTML = `<span class="name">${name}</span><input id="in-${name}" name="${name}" autocomplete="off"><span class="help">${HELP[name] ?? ""}</span>`;
    form.appendChild(label);
    label.querySelector("input").value = EXAMPLE[name] ?? "";
  }
  const range = document.getElementById("range");
  const detail = document.getElementById("detail");
  const update = () => {
    try {
      const row = model.inputs.map((name) => parseField(document.getElementById(`in-${name}`).value));
      const outputs = model.predict([row]);
      const iv = interval(model.meta, row, outputs);
      range.textContent = renderRange(iv, "min");
      detail.textContent = `${Math.round(iv.coverage * 100)} % range; median ${iv.mid.toFixed(1)} min (` +
        model.outputs.map((o, i) => `${o} ${outputs[i].toFixed(2)}`).join(", ") + ")";
    } catch (e) {
      range.textContent = "–";
      detail.textContent = e.message;
    }
  };
  form.addEventListener("input", update);
  update();
  status.textContent = `model ${model.meta.name} v${model.meta.version}, scored in this browser`;

  // For automated checks: score rows given as f64 bit patterns, answer bit patterns.
  window.frescoEta = {
    scoreBits(rows) {
      const out = model.predict(rows.map((r) => r.map(hexToFloat)));
      return Array.from(out, bitsToHex);
    },
    intervalBits(bits) {
      const row = bits.map(hexToFloat);
      const { low, mid, high } = interval(model.meta, row, model.predict([row]));
      return [low, mid, high].map(bitsToHex);
    },
    rangeOf(bits) {
      const row = bits.map(hexToFloat);
      return renderRange(interval(model.meta, row, model.predict([row])), "min");
    },
  };
  document.body.dataset.ready = "true";
}

main();
