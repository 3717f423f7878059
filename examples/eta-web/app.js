// The ETA page: a customer picks a restaurant and describes the trip; the restaurant's
// server-side features come from the feature snapshot (`features.json`, written by the
// main job, what an app's backend would send), and the model is scored right here by
// the fresco web package.
import { Holdout, InputError, Model, renderRange } from "./fresco-web/index.js";

// The request-time inputs a person types, with a hint each.
const HELP = {
  distance_km: "riding distance, km",
  hour: "time of day, 0–24",
  day_of_week: "0 = Monday … 6 = Sunday",
  traffic: "congestion 0–1 (empty: no reading)",
  weather: "0 clear, 1 rain, 2 storm",
};
const EXAMPLE = { distance_km: "2.4", hour: "19.5", day_of_week: "4", traffic: "0.3", weather: "1" };
// The main job's holdout (`examples/eta.rs`): held-out customers see the generic promise.
const HOLDOUT = new Holdout("eta-ranges", "eta-2026", 0.05);
const GENERIC_RANGE = "30–45 min";

// A typed field: empty is a missing value; anything else must be a number.
function parseField(name, text) {
  const t = text.trim();
  if (t === "") return null;
  const x = Number(t);
  if (Number.isNaN(x)) throw new Error(`${name}: "${text}" is not a number`);
  return x;
}

async function main() {
  const status = document.getElementById("status");
  let model;
  let snapshot;
  try {
    [model, snapshot] = await Promise.all([
      Model.fromUrl("eta.wasm"),
      fetch("features.json").then((r) => (r.ok ? r.json() : Promise.reject(new Error(`features.json: HTTP ${r.status}`)))),
    ]);
  } catch (e) {
    status.textContent = `could not load the page: ${e.message}`;
    throw e;
  }
  const stored = snapshot.features.filter((f) => model.inputs.includes(f));
  const typed = model.inputs.filter((name) => !stored.includes(name));

  const restaurant = document.getElementById("restaurant");
  for (const id of Object.keys(snapshot.entities)) restaurant.add(new Option(id, id));
  const form = document.getElementById("inputs");
  for (const name of typed) {
    const label = document.createElement("label");
    label.innerHTML = `<span class="name">${name}</span><input id="in-${name}" name="${name}" autocomplete="off"><span class="help">${HELP[name] ?? ""}</span>`;
    form.appendChild(label);
    label.querySelector("input").value = EXAMPLE[name] ?? "";
  }
  const when = new Date(snapshot.at_secs * 1000).toISOString().replace("T", " ").slice(0, 16);
  const range = document.getElementById("range");
  const detail = document.getElementById("detail");
  const features = document.getElementById("features");
  const update = () => {
    const entity = snapshot.entities[restaurant.value] ?? {};
    features.textContent =
      `${restaurant.value}: ` + stored.map((f) => `${f} ${entity[f] ?? "missing"}`).join(", ") + ` (snapshot of ${when} UTC)`;
    try {
      const row = { ...Object.fromEntries(stored.map((f) => [f, entity[f]])) };
      for (const name of typed) row[name] = parseField(name, document.getElementById(`in-${name}`).value);
      const scores = model.predict([row]);
      const iv = scores.interval(0);
      const customer = document.getElementById("customer").value.trim();
      if (customer !== "" && HOLDOUT.contains(customer)) {
        range.textContent = GENERIC_RANGE;
        detail.textContent = `customer ${customer} is in the ${HOLDOUT.fraction * 100} % holdout: the generic promise, not the model's range`;
        return;
      }
      range.textContent = renderRange(iv, "min");
      detail.textContent =
        `${Math.round(iv.coverage * 100)} % of deliveries arrive within this range; median ${iv.mid.toFixed(1)} min (` +
        model.outputs.map((o) => `${o} ${scores.get(0, o).toFixed(2)}`).join(", ") +
        ")";
    } catch (e) {
      range.textContent = "–";
      detail.textContent = e instanceof InputError ? `${e.input}: ${e.message}` : e.message;
    }
  };
  form.addEventListener("input", update);
  restaurant.addEventListener("change", update);
  update();
  status.textContent = `model ${model.name} v${model.version}, scored in this browser; features of ${restaurant.options.length} restaurants`;
  document.body.dataset.ready = "true";
}

main();
