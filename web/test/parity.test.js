// The package against the Rust host on every oracle fixture (see parity.js). The cases
// come from `FRESCO_WEB_CASES` when it names a directory, else they are written first
// with `cargo run -p fresco-examples --example web_cases` (the repository's toolchain).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { checkParity } from "./parity.js";

function casesDir() {
  if (process.env.FRESCO_WEB_CASES) return process.env.FRESCO_WEB_CASES;
  const dir = mkdtempSync(join(tmpdir(), "fresco-web-cases-"));
  const root = fileURLToPath(new URL("../..", import.meta.url));
  execFileSync("cargo", ["run", "--quiet", "--locked", "-p", "fresco-examples", "--example", "web_cases", "--", dir], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
  });
  return dir;
}

test("every oracle fixture, each missing policy and the ETA intervals equal the Rust host bit for bit", async () => {
  const dir = casesDir();
  const { models, rows, failures } = await checkParity(async (file) => readFileSync(join(dir, file)));
  assert.ok(models >= 100, `only ${models} models in the cases`);
  assert.ok(rows >= 10000, `only ${rows} rows in the cases`);
  assert.deepEqual(failures, []);
  console.log(`${models} models, ${rows} rows: equal to the Rust host`);
});
