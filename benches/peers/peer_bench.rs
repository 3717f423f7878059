//! Side-by-side harness: fresco (WebAssembly and native) against LightGBM's C API,
//! lleaves' compiled object and onnxruntime's C API, all called in-process from compiled
//! code, one thread.
//!
//! `peer-bench DIR SIZE [lightgbm|xgboost]` reads `DIR/SIZE.model.txt` (or, for
//! XGBoost, `DIR/SIZE.xgb.json`), `DIR/X.f64` (row-major f64, 30 columns), and for
//! LightGBM `DIR/lightgbm_lib.txt`, `DIR/SIZE.lleaves.so`, `DIR/onnxruntime_lib.txt` and
//! `DIR/SIZE.onnx` (see `make_models.py`);
//! checks that every contender agrees with fresco, then prints one JSON line per
//! measurement: rows/s at batch 100,000 and median / p99 latency at batch 1. XGBoost's
//! own numbers come from `run.py` (`inplace_predict`).

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco_compiler::{Compiler, Format, Layout};

mod onnxruntime;
use fresco_runtime::{Engine, Limits, Model};

const N_FEATURES: usize = 30;
const BATCH: usize = 100_000;
const SINGLE_ROW_CALLS: usize = 50_000;
/// Timed batches per contender (the best counts).
const BATCH_ROUNDS: usize = 3;
/// Turns the single-row calls are split into.
const SINGLE_ROW_ROUNDS: usize = 10;

type Fail = Box<dyn std::error::Error>;

/// Something that scores rows.
trait Contender {
    fn name(&self) -> &'static str;
    /// Scores `rows.len() / 30` rows into `out` (one value per row).
    fn batch(&mut self, rows: &[f64], out: &mut [f64]);
    /// Scores one row.
    fn one(&mut self, row: &[f64]) -> f64;
}

struct FrescoWasm(Model);
impl Contender for FrescoWasm {
    fn name(&self) -> &'static str {
        "fresco-wasm"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        if let Err(e) = self.0.predict_into(rows, out) {
            panic!("fresco: {e}");
        }
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let mut out = [0.0];
        if let Err(e) = self.0.predict_row(row, &mut out) {
            panic!("fresco: {e}");
        }
        out[0]
    }
}

struct FrescoNative(fresco_trees::Ensemble, Vec<f64>);
impl Contender for FrescoNative {
    fn name(&self) -> &'static str {
        "fresco-native"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        for (row, o) in rows.chunks_exact(N_FEATURES).zip(out.chunks_exact_mut(1)) {
            self.0.predict_row_with(row, o, &mut self.1);
        }
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let mut out = [0.0];
        self.0.predict_row_with(row, &mut out, &mut self.1);
        out[0]
    }
}

type LgbCreate = unsafe extern "C" fn(*const c_char, *mut c_int, *mut *mut c_void) -> c_int;
type LgbFastInit =
    unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, c_int, i32, *const c_char, *mut *mut c_void) -> c_int;
type LgbFast = unsafe extern "C" fn(*mut c_void, *const c_void, *mut i64, *mut f64) -> c_int;
type LgbForMat = unsafe extern "C" fn(
    *mut c_void,
    *const c_void,
    c_int,
    i32,
    i32,
    c_int,
    c_int,
    c_int,
    c_int,
    *const c_char,
    *mut i64,
    *mut f64,
) -> c_int;

/// LightGBM through its C API: the single-row fast path and the batch matrix call.
struct LightGbm {
    _lib: libloading::Library,
    booster: *mut c_void,
    fast_config: *mut c_void,
    fast: LgbFast,
    for_mat: LgbForMat,
}

impl LightGbm {
    fn load(lib_path: &Path, model: &Path) -> Result<Self, Fail> {
        // SAFETY: loading LightGBM's own library and calling its documented C API with
        // the argument types of c_api.h.
        unsafe {
            let lib = libloading::Library::new(lib_path)?;
            let create: LgbCreate = *lib.get(b"LGBM_BoosterCreateFromModelfile\0")?;
            let init: LgbFastInit = *lib.get(b"LGBM_BoosterPredictForMatSingleRowFastInit\0")?;
            let fast: LgbFast = *lib.get(b"LGBM_BoosterPredictForMatSingleRowFast\0")?;
            let for_mat: LgbForMat = *lib.get(b"LGBM_BoosterPredictForMat\0")?;
            let path = CString::new(model.to_string_lossy().as_bytes())?;
            let (mut iterations, mut booster) = (0, std::ptr::null_mut());
            if create(path.as_ptr(), &mut iterations, &mut booster) != 0 {
                return Err("LGBM_BoosterCreateFromModelfile failed".into());
            }
            let params = CString::new("num_threads=1")?;
            let mut fast_config = std::ptr::null_mut();
            // predict_type 0 = normal, data_type 1 = float64
            if init(booster, 0, 0, -1, 1, N_FEATURES as i32, params.as_ptr(), &mut fast_config) != 0 {
                return Err("LGBM_BoosterPredictForMatSingleRowFastInit failed".into());
            }
            Ok(LightGbm { _lib: lib, booster, fast_config, fast, for_mat })
        }
    }
}

impl Contender for LightGbm {
    fn name(&self) -> &'static str {
        "lightgbm-capi"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        let params = c"num_threads=1";
        let mut len = 0i64;
        // SAFETY: row-major f64 matrix of `n` rows, `out` holds one value per row.
        let rc = unsafe {
            (self.for_mat)(
                self.booster,
                rows.as_ptr().cast(),
                1,
                (rows.len() / N_FEATURES) as i32,
                N_FEATURES as i32,
                1,
                0,
                0,
                -1,
                params.as_ptr(),
                &mut len,
                out.as_mut_ptr(),
            )
        };
        assert_eq!(rc, 0, "LGBM_BoosterPredictForMat failed");
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let (mut len, mut out) = (0i64, 0.0f64);
        // SAFETY: one row of N_FEATURES f64 values, one output.
        let rc = unsafe { (self.fast)(self.fast_config, row.as_ptr().cast(), &mut len, &mut out) };
        assert_eq!(rc, 0, "LGBM_BoosterPredictForMatSingleRowFast failed");
        out
    }
}

type ForestRoot = unsafe extern "C" fn(*const f64, *mut f64, c_int, c_int);

/// lleaves: the LLVM-compiled model as a shared object.
struct Lleaves {
    _lib: libloading::Library,
    root: ForestRoot,
}

impl Lleaves {
    fn load(path: &Path) -> Result<Self, Fail> {
        // SAFETY: lleaves' compiled entry point `forest_root(data, out, start, end)`.
        unsafe {
            let lib = libloading::Library::new(path)?;
            let root: ForestRoot = *lib.get(b"forest_root\0")?;
            Ok(Lleaves { _lib: lib, root })
        }
    }
}

impl Contender for Lleaves {
    fn name(&self) -> &'static str {
        "lleaves"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        // SAFETY: `rows` holds `n` rows of 30 features and `out` n values.
        unsafe { (self.root)(rows.as_ptr(), out.as_mut_ptr(), 0, (rows.len() / N_FEATURES) as c_int) }
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let mut out = 0.0;
        // SAFETY: one row, one output.
        unsafe { (self.root)(row.as_ptr(), &mut out, 0, 1) }
        out
    }
}

fn main() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, size, format) = match args.as_slice() {
        [_, dir, size] => (PathBuf::from(dir), size.clone(), Format::LightGbm),
        [_, dir, size, format] => (PathBuf::from(dir), size.clone(), format.parse::<Format>()?),
        _ => return Err("usage: peer-bench DIR SIZE [lightgbm|xgboost]".into()),
    };
    let model_path = match format {
        Format::LightGbm => dir.join(format!("{size}.model.txt")),
        Format::XgBoost => dir.join(format!("{size}.xgb.json")),
    };
    let bytes = std::fs::read(dir.join("X.f64"))?;
    let data: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
    let n_rows = data.len() / N_FEATURES;

    let started = Instant::now();
    let mut compiler = Compiler::new(size.clone(), "1").add_file(&model_path, Some(format))?;
    // FRESCO_LAYOUT=branches|tables overrides the size-based choice, for layout studies.
    match std::env::var("FRESCO_LAYOUT").as_deref() {
        Ok("branches") => compiler = compiler.layout(Layout::Branches),
        Ok("tables") => compiler = compiler.layout(Layout::Tables),
        _ => {}
    }
    let wasm = compiler.compile()?;
    let compile_s = started.elapsed().as_secs_f64();
    // A 100,000-row call on the largest model takes seconds: raise the 1 s default deadline.
    let canonical = std::env::var("FRESCO_NAN_CANON").map_or(true, |v| v != "0");
    let mut engine = Engine::builder()
        .limits(Limits::default().with_deadline(std::time::Duration::from_secs(300)))
        .nan_canonicalization(canonical);
    // FRESCO_CODE_CACHE=DIR keeps the compiled machine code (e.g. to read it with objdump).
    if let Ok(dir) = std::env::var("FRESCO_CODE_CACHE") {
        engine = engine.code_cache(dir);
    }
    let engine = engine.build()?;
    let started = Instant::now();
    let model = Model::from_bytes(&engine, &wasm)?;
    let load_s = started.elapsed().as_secs_f64();
    let ensemble = compiler.ensembles().next().ok_or("no ensemble")?.clone();
    println!(
        "{{\"size\":\"{size}\",\"format\":\"{}\",\"measure\":\"build\",\"compile_s\":{compile_s:.4},\"load_s\":{load_s:.4},\"wasm_bytes\":{}}}",
        format.name(),
        wasm.len()
    );

    let mut contenders: Vec<Box<dyn Contender>> =
        vec![Box::new(FrescoWasm(model)), Box::new(FrescoNative(ensemble, vec![0.0; 1]))];
    if format == Format::LightGbm {
        let lib = std::fs::read_to_string(dir.join("lightgbm_lib.txt"))?;
        contenders.push(Box::new(LightGbm::load(Path::new(lib.trim()), &model_path)?));
        let lleaves = dir.join(format!("{size}.lleaves.so"));
        if lleaves.exists() {
            contenders.push(Box::new(Lleaves::load(&lleaves)?));
        } else {
            eprintln!("{}: not built, lleaves left out", lleaves.display());
        }
        // The onnxmltools conversion, scored in float32 (so it agrees to about 1e-5).
        let onnx = dir.join(format!("{size}.onnx"));
        match std::fs::read_to_string(dir.join("onnxruntime_lib.txt")) {
            Ok(lib) if onnx.exists() => {
                contenders.push(Box::new(onnxruntime::OnnxRuntime::load(Path::new(lib.trim()), &onnx)?))
            }
            _ => eprintln!("{}: no ONNX model or onnxruntime library, onnxruntime left out", onnx.display()),
        }
    }

    // Agreement first: every contender against fresco-wasm on the first 2,000 rows.
    let check = &data[..2000 * N_FEATURES];
    let mut reference = vec![0.0; 2000];
    contenders[0].batch(check, &mut reference);
    for c in contenders.iter_mut().skip(1) {
        let mut got = vec![0.0; 2000];
        c.batch(check, &mut got);
        let err = got.iter().zip(&reference).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f64::max);
        println!(
            "{{\"size\":\"{size}\",\"format\":\"{}\",\"measure\":\"agreement\",\"contender\":\"{}\",\"max_rel_err\":{err:e}}}",
            format.name(),
            c.name()
        );
    }

    // FRESCO_CONTENDERS=NAME,NAME times only those (all are still checked for agreement).
    let only = std::env::var("FRESCO_CONTENDERS").ok();
    contenders.retain(|c| only.as_deref().is_none_or(|names| names.split(',').any(|n| n == c.name())));

    // Contenders take turns, round after round, so that a slow spell of this shared
    // machine hits all of them rather than whichever ran then.
    let batch = &data[..BATCH.min(n_rows) * N_FEATURES];
    let mut out = vec![0.0; batch.len() / N_FEATURES];
    let mut best = vec![f64::INFINITY; contenders.len()];
    for c in contenders.iter_mut() {
        c.batch(batch, &mut out); // warm-up
    }
    for _ in 0..BATCH_ROUNDS {
        for (c, best) in contenders.iter_mut().zip(&mut best) {
            let t = Instant::now();
            c.batch(batch, &mut out);
            *best = best.min(t.elapsed().as_secs_f64());
        }
    }
    let mut latencies = vec![Vec::with_capacity(SINGLE_ROW_CALLS); contenders.len()];
    let mut sinks = vec![0.0; contenders.len()];
    let per_round = SINGLE_ROW_CALLS / SINGLE_ROW_ROUNDS;
    for round in 0..SINGLE_ROW_ROUNDS {
        for ((c, lat), sink) in contenders.iter_mut().zip(&mut latencies).zip(&mut sinks) {
            for i in 0..per_round + 100 {
                let row = &data[((round * per_round + i) % n_rows) * N_FEATURES..][..N_FEATURES];
                let t = Instant::now();
                *sink += c.one(row);
                let ns = t.elapsed().as_nanos() as f64;
                if i >= 100 {
                    lat.push(ns);
                }
            }
        }
    }
    for ((c, lat), (best, sink)) in contenders.iter().zip(&mut latencies).zip(best.iter().zip(&sinks)) {
        let rows_per_s = out.len() as f64 / best;
        lat.sort_by(f64::total_cmp);
        let p50 = lat[lat.len() / 2];
        let p99 = lat[lat.len() * 99 / 100];
        println!(
            "{{\"size\":\"{size}\",\"format\":\"{}\",\"measure\":\"speed\",\"contender\":\"{}\",\"batch_rows_per_s\":{rows_per_s:.0},\"p50_ns\":{p50:.0},\"p99_ns\":{p99:.0},\"checksum\":{sink:.3}}}",
            format.name(),
            c.name()
        );
    }
    Ok(())
}
