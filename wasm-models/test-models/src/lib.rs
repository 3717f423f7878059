//! Hand-written fresco model modules for tests, documentation and benchmarks.
//!
//! Each function returns the bytes of a complete module. [`linear`] is a well-behaved
//! two-input model (`y = 2·a + 3·b + 1`); [`hostile`] holds modules that break each rule
//! of ABI v1 in one way, so that hosts can prove they stop and report every one.

pub mod synthetic;

/// WAT for a module with a bump allocator; `{predict}` is the body of `fresco_predict`
/// (params `$in`, `$n`, `$out`, local `$r`), `{abi}` what `fresco_abi_version` returns,
/// and `{extra}` more module fields.
const TEMPLATE: &str = r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "fresco_abi_version") (result i32) (i32.const {abi}))
  (func $alloc (export "fresco_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap
      (i32.add (global.get $heap) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
        (br $grow)))
    (local.get $p))
  (func $predict (export "fresco_predict") (param $in i32) (param $n i32) (param $out i32) (result i32)
    (local $r i32)
    {predict})
  {extra}
)"#;

/// `y = 2·a + 3·b + 1` for each row.
const LINEAR_BODY: &str = r#"
    (block $end
      (loop $rows
        (br_if $end (i32.ge_s (local.get $r) (local.get $n)))
        (f64.store
          (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 3)))
          (f64.add
            (f64.add
              (f64.mul (f64.const 2) (f64.load (i32.add (local.get $in) (i32.shl (local.get $r) (i32.const 4)))))
              (f64.mul (f64.const 3) (f64.load offset=8 (i32.add (local.get $in) (i32.shl (local.get $r) (i32.const 4))))))
            (f64.const 1)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))
    (i32.const 0)"#;

/// Metadata for a model named `name` with inputs `a`, `b` and output `y`.
pub fn metadata_json(name: &str) -> String {
    format!(
        r#"{{"name":"{name}","version":"1","abi":1,"kind":"custom","inputs":[{{"name":"a","type":"f64","missing":"nan"}},{{"name":"b","type":"f64","missing":"nan"}}],"outputs":["y"],"source":{{"format":"wat","sha256":null}}}}"#
    )
}

/// Assembles the template with the given parts, without a metadata section.
pub fn assemble(abi: i32, predict: &str, extra: &str) -> Vec<u8> {
    assemble_from(TEMPLATE, abi, predict, extra)
}

/// Like [`assemble`], on a variant of the template.
fn assemble_from(template: &str, abi: i32, predict: &str, extra: &str) -> Vec<u8> {
    let text = template.replace("{abi}", &abi.to_string()).replace("{predict}", predict).replace("{extra}", extra);
    match wat::parse_str(&text) {
        Ok(bytes) => bytes,
        Err(e) => panic!("test model WAT does not assemble: {e}"),
    }
}

/// Appends a custom section to a module (custom sections may appear anywhere).
pub fn with_section(mut wasm: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    use wasm_encoder::{CustomSection, Encode, Section};
    let section = CustomSection { name: name.into(), data: data.into() };
    wasm.push(section.id());
    section.encode(&mut wasm);
    wasm
}

/// Appends a `fresco.model` section holding `json`.
pub fn with_metadata(wasm: Vec<u8>, json: &str) -> Vec<u8> {
    with_section(wasm, "fresco.model", json.as_bytes())
}

/// The well-behaved model: inputs `a`, `b`; output `y = 2·a + 3·b + 1`.
pub fn linear() -> Vec<u8> {
    linear_with_metadata(&metadata_json("linear"))
}

/// The linear model declaring version `version` (for registries and rollouts).
pub fn linear_version(version: &str) -> Vec<u8> {
    linear_with_metadata(&metadata_json("linear").replace(r#""version":"1""#, &format!(r#""version":"{version}""#)))
}

/// The linear model's code (`y = 2·a + 3·b + 1`) under metadata of the caller's choosing
/// (two inputs, one output), e.g. to declare missing-value policies or input types.
pub fn linear_with_metadata(json: &str) -> Vec<u8> {
    with_metadata(assemble(1, LINEAR_BODY, ""), json)
}

/// Modules that each break one rule. All declare inputs `a`, `b` and output `y`.
pub mod hostile {
    use super::*;

    fn model(name: &str, abi: i32, predict: &str, extra: &str) -> Vec<u8> {
        with_metadata(assemble(abi, predict, extra), &metadata_json(name))
    }

    /// `fresco_predict` never returns.
    pub fn infinite_loop() -> Vec<u8> {
        model("infinite-loop", 1, "(loop $forever (br $forever)) (i32.const 0)", "")
    }

    /// `fresco_predict` grows memory one page at a time until refused.
    pub fn memory_bomb() -> Vec<u8> {
        model(
            "memory-bomb",
            1,
            "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (i32.const 0)",
            "",
        )
    }

    /// `fresco_predict` executes `unreachable`.
    pub fn trap() -> Vec<u8> {
        model("trap", 1, "(unreachable)", "")
    }

    /// `fresco_predict` recurses without end.
    pub fn stack_overflow() -> Vec<u8> {
        model("stack-overflow", 1, "(call $predict (local.get $in) (local.get $n) (local.get $out))", "")
    }

    /// `fresco_predict` recurses 2,000 calls deep, then returns: it fits the default
    /// stack limit, not a small one.
    pub fn deep_recursion() -> Vec<u8> {
        model(
            "deep-recursion",
            1,
            "(call $descend (i32.const 2000)) (i32.const 0)",
            "(func $descend (param $depth i32)
               (if (local.get $depth)
                 (then (call $descend (i32.sub (local.get $depth) (i32.const 1))))))",
        )
    }

    /// `fresco_predict` returns status 7.
    pub fn nonzero_status() -> Vec<u8> {
        model("nonzero-status", 1, "(i32.const 7)", "")
    }

    /// `fresco_alloc` returns an offset past the end of memory.
    pub fn bad_alloc() -> Vec<u8> {
        let template = TEMPLATE.replace("(local.get $p))", "(drop (local.get $p)) (i32.const -16))");
        with_metadata(assemble_from(&template, 1, "(i32.const 0)", ""), &metadata_json("bad-alloc"))
    }

    /// No `fresco_predict` export.
    pub fn missing_export() -> Vec<u8> {
        let wasm = assemble(1, "(i32.const 0)", "");
        // Rename the export so that it no longer matches.
        let renamed = replace_bytes(&wasm, b"fresco_predict", b"fresco_predicx");
        with_metadata(renamed, &metadata_json("missing-export"))
    }

    /// `fresco_predict` takes f64 parameters.
    pub fn mistyped_export() -> Vec<u8> {
        let template = TEMPLATE.replace(
            "(param $in i32) (param $n i32) (param $out i32) (result i32)",
            "(param $in f64) (param $n i32) (param $out i32) (result i32)",
        );
        with_metadata(assemble_from(&template, 1, "(i32.const 0)", ""), &metadata_json("mistyped-export"))
    }

    /// `fresco_abi_version()` returns 2 while the metadata declares 1.
    pub fn wrong_abi_version() -> Vec<u8> {
        model("wrong-abi", 2, "(i32.const 0)", "")
    }

    /// Metadata declaring ABI 2.
    pub fn metadata_abi_2() -> Vec<u8> {
        let json = metadata_json("abi-2").replace("\"abi\":1", "\"abi\":2");
        with_metadata(assemble(1, "(i32.const 0)", ""), &json)
    }

    /// No metadata section at all.
    pub fn metadata_missing() -> Vec<u8> {
        assemble(1, LINEAR_BODY, "")
    }

    /// A metadata section that is not JSON.
    pub fn metadata_malformed() -> Vec<u8> {
        with_metadata(assemble(1, LINEAR_BODY, ""), "{\"name\": \"malformed\", ")
    }

    /// A metadata section larger than the 16 MiB cap.
    pub fn metadata_oversized() -> Vec<u8> {
        let mut json = metadata_json("oversized");
        json.push_str(&" ".repeat(16 * 1024 * 1024 + 1));
        with_metadata(assemble(1, LINEAR_BODY, ""), &json)
    }

    /// Metadata declaring no outputs, which the exports cannot satisfy.
    pub fn metadata_without_outputs() -> Vec<u8> {
        let json = metadata_json("no-outputs").replace("\"outputs\":[\"y\"]", "\"outputs\":[]");
        with_metadata(assemble(1, LINEAR_BODY, ""), &json)
    }

    /// Two `fresco.model` sections.
    pub fn metadata_twice() -> Vec<u8> {
        with_metadata(linear(), &metadata_json("twice"))
    }

    /// Imports a host function.
    pub fn with_import() -> Vec<u8> {
        let template = TEMPLATE.replace("(module", "(module (import \"env\" \"now\" (func $now (result i64)))");
        with_metadata(assemble_from(&template, 1, LINEAR_BODY, ""), &metadata_json("imports"))
    }

    /// Memory starts at 1 GiB, over any sensible cap.
    pub fn huge_initial_memory() -> Vec<u8> {
        let template = TEMPLATE.replace("(memory (export \"memory\") 1)", "(memory (export \"memory\") 16384)");
        with_metadata(assemble_from(&template, 1, "(i32.const 0)", ""), &metadata_json("huge-memory"))
    }

    /// Bytes that are not WebAssembly.
    pub fn not_wasm() -> Vec<u8> {
        b"PK\x03\x04 this is a zip file, not a model".to_vec()
    }

    /// A valid header followed by garbage.
    pub fn truncated() -> Vec<u8> {
        let mut wasm = linear();
        wasm.truncate(wasm.len() / 2);
        wasm
    }

    fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = haystack.to_vec();
        if let Some(pos) = haystack.windows(from.len()).position(|w| w == from) {
            out[pos..pos + to.len()].copy_from_slice(to);
        }
        out
    }
}

/// Oracle fixtures: models trained by LightGBM and XGBoost with their own predictions,
/// written by `wasm-models/oracle/make_fixtures.py`.
pub mod oracle {
    use std::path::{Path, PathBuf};

    /// One fixture case.
    #[derive(Debug, serde::Deserialize)]
    pub struct Case {
        /// Case name, e.g. `lgb_binary`.
        pub name: String,
        /// `lightgbm` or `xgboost`.
        pub library: String,
        /// Model file name, beside the case file.
        pub model: String,
        /// Rows to score; `None` is a missing value.
        pub inputs: Vec<Vec<Option<f64>>>,
        /// The library's predictions, one row per input row.
        pub expected: Vec<Vec<Option<f64>>>,
        /// The kind of error compiling must give, for models fresco refuses.
        #[serde(default)]
        pub expect_error: Option<String>,
        /// Where the case was read from.
        #[serde(skip)]
        pub dir: PathBuf,
    }

    impl Case {
        /// The model file's contents.
        pub fn model_text(&self) -> String {
            std::fs::read_to_string(self.dir.join(&self.model))
                .unwrap_or_else(|e| panic!("{}: {e}", self.dir.join(&self.model).display()))
        }

        /// Inputs as a row-major vector with NaN for missing values.
        pub fn input_rows(&self) -> Vec<f64> {
            self.inputs.iter().flatten().map(|v| v.unwrap_or(f64::NAN)).collect()
        }

        /// Expected outputs, row-major, NaN for missing.
        pub fn expected_rows(&self) -> Vec<f64> {
            self.expected.iter().flatten().map(|v| v.unwrap_or(f64::NAN)).collect()
        }
    }

    /// The fixture directory: `$FRESCO_ORACLE_DIR` when set (CI regenerates fixtures
    /// there with a fresh seed), else the committed set.
    pub fn dir() -> PathBuf {
        match std::env::var_os("FRESCO_ORACLE_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../oracle/fixtures"),
        }
    }

    /// Every case in [`dir`], sorted by name. Panics if there are none: an empty oracle
    /// must fail, not pass.
    pub fn cases() -> Vec<Case> {
        let dir = dir();
        let mut cases: Vec<Case> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("oracle fixtures at {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".case.json"))
            .map(|e| {
                let text =
                    std::fs::read_to_string(e.path()).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
                let mut case: Case =
                    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
                case.dir = dir.clone();
                case
            })
            .collect();
        assert!(!cases.is_empty(), "no oracle cases in {}", dir.display());
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        cases
    }

    /// Below this magnitude an expected value is compared absolutely: a relative error
    /// against (nearly) zero says nothing.
    pub const ABSOLUTE_FLOOR: f64 = 1e-12;

    /// Largest relative error `|got − want| / max(|want|, ABSOLUTE_FLOOR)` between
    /// `got` and `want`: relative everywhere but within 1e-12 of zero. NaN must match
    /// NaN, and infinities must be equal.
    pub fn max_relative_error(got: &[f64], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len(), "output lengths differ");
        got.iter()
            .zip(want)
            .map(|(&g, &w)| {
                if g.is_nan() || w.is_nan() {
                    if g.is_nan() && w.is_nan() { 0.0 } else { f64::INFINITY }
                } else if g == w {
                    0.0
                } else {
                    (g - w).abs() / w.abs().max(ABSOLUTE_FLOOR)
                }
            })
            .fold(0.0, f64::max)
    }
}

/// The Chromium binary for browser tests: `FRESCO_CHROMIUM`, else `chromium`,
/// `chromium-browser` or `google-chrome` on `PATH`.
///
/// # Panics
///
/// When there is none: browser tests fail, they do not skip.
pub fn chromium() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("FRESCO_CHROMIUM") {
        return std::path::PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("no Chromium found: install Debian's `chromium` package or set FRESCO_CHROMIUM");
}
