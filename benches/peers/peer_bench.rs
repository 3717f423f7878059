//! Side-by-side harness: fresco (WebAssembly and native) against LightGBM's C API,
//! lleaves' compiled object and onnxruntime's C API, all called in-process from compiled
//! code, one thread.
//!
//! Two ways to name what to compare (`peer-bench --help` prints both):
//!
//! - `peer-bench DIR SIZE [lightgbm|xgboost] [OPTIONS]`: the layout `make_models.py`
//!   writes, `DIR/SIZE.model.txt` (XGBoost: `DIR/SIZE.xgb.json`), `DIR/X.f64`,
//!   `DIR/SIZE.lleaves.so`, `DIR/SIZE.onnx` and the peers' libraries named in
//!   `DIR/{lightgbm,xgboost,onnxruntime}_lib.txt`;
//! - `peer-bench --model FILE --data FILE [OPTIONS]`: any LightGBM text or XGBoost JSON
//!   model and any data, with each peer given by its own option.
//!
//! The data is row-major little-endian f64 (`--features N` columns, 30 by default) or,
//! for a `.csv` file, numbers with an optional header row (empty or `nan` is missing;
//! the column count is read from the file). Every contender is first checked against
//! fresco, then each prints one JSON line per measurement: rows/s at batch 100,000 and
//! median / p99 latency at batch 1. A peer whose file or library is not there is left
//! out with a line on stderr.

use std::ffi::{CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco_compiler::{Compiler, Format, Layout};

mod onnxruntime;
use fresco_runtime::{Engine, Limits, Model};

/// Columns of a raw f64 data file unless `--features` says otherwise.
const DEFAULT_FEATURES: usize = 30;
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
    /// Scores `out.len()` rows (row-major in `rows`) into `out`, one value per row.
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

struct FrescoNative(fresco_trees::Ensemble, Vec<f64>, usize);
impl Contender for FrescoNative {
    fn name(&self) -> &'static str {
        "fresco-native"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        for (row, o) in rows.chunks_exact(self.2).zip(out.chunks_exact_mut(1)) {
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
    features: i32,
}

impl LightGbm {
    fn load(lib_path: &Path, model: &Path, features: usize) -> Result<Self, Fail> {
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
            if init(booster, 0, 0, -1, 1, i32::try_from(features)?, params.as_ptr(), &mut fast_config) != 0 {
                return Err("LGBM_BoosterPredictForMatSingleRowFastInit failed".into());
            }
            Ok(LightGbm { _lib: lib, booster, fast_config, fast, for_mat, features: i32::try_from(features)? })
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
                i32::try_from(out.len()).unwrap_or(i32::MAX),
                self.features,
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
        // SAFETY: one row of `features` f64 values, one output.
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
        // SAFETY: `rows` holds `out.len()` rows of the model's features.
        unsafe { (self.root)(rows.as_ptr(), out.as_mut_ptr(), 0, c_int::try_from(out.len()).unwrap_or(c_int::MAX)) }
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let mut out = 0.0;
        // SAFETY: one row, one output.
        unsafe { (self.root)(row.as_ptr(), &mut out, 0, 1) }
        out
    }
}

type XgbCreate = unsafe extern "C" fn(*const *mut c_void, u64, *mut *mut c_void) -> c_int;
type XgbLoad = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type XgbSetParam = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> c_int;
type XgbPredictDense = unsafe extern "C" fn(
    *mut c_void,
    *const c_char,
    *const c_char,
    *mut c_void,
    *mut *const u64,
    *mut u64,
    *mut *const f32,
) -> c_int;
type XgbLastError = unsafe extern "C" fn() -> *const c_char;

/// XGBoost through its C API: `XGBoosterPredictFromDense`, the call behind Python's
/// `inplace_predict`, on the rows in place (an array-interface description of them, no
/// DMatrix). XGBoost predicts in float32.
struct XgBoost {
    _lib: libloading::Library,
    booster: *mut c_void,
    predict: XgbPredictDense,
    last_error: XgbLastError,
    features: usize,
    /// The array-interface JSON of the rows, rebuilt per call (their address changes).
    interface: String,
    config: CString,
}

impl XgBoost {
    fn load(lib_path: &Path, model: &Path, features: usize) -> Result<Self, Fail> {
        // SAFETY: XGBoost's documented C API (c_api.h) with its argument types; the
        // booster outlives every call made through it.
        unsafe {
            let lib = libloading::Library::new(lib_path)?;
            let create: XgbCreate = *lib.get(b"XGBoosterCreate\0")?;
            let load: XgbLoad = *lib.get(b"XGBoosterLoadModel\0")?;
            let set_param: XgbSetParam = *lib.get(b"XGBoosterSetParam\0")?;
            let predict: XgbPredictDense = *lib.get(b"XGBoosterPredictFromDense\0")?;
            let last_error: XgbLastError = *lib.get(b"XGBGetLastError\0")?;
            let mut booster = std::ptr::null_mut();
            let fail = |what: &str| -> Fail {
                let detail = std::ffi::CStr::from_ptr(last_error()).to_string_lossy().into_owned();
                format!("{what} failed: {detail}").into()
            };
            if create(std::ptr::null(), 0, &mut booster) != 0 {
                return Err(fail("XGBoosterCreate"));
            }
            let path = CString::new(model.to_string_lossy().as_bytes())?;
            if load(booster, path.as_ptr()) != 0 {
                return Err(fail("XGBoosterLoadModel"));
            }
            if set_param(booster, c"nthread".as_ptr(), c"1".as_ptr()) != 0 {
                return Err(fail("XGBoosterSetParam(nthread)"));
            }
            // What Python's inplace_predict passes: normal prediction, every tree, NaN missing.
            let config = CString::new(
                r#"{"type":0,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false,"missing":NaN,"cache_id":0}"#,
            )?;
            Ok(XgBoost { _lib: lib, booster, predict, last_error, features, interface: String::new(), config })
        }
    }

    fn score(&mut self, rows: &[f64], out: &mut [f64]) {
        use std::fmt::Write as _;
        self.interface.clear();
        let _ = write!(
            self.interface,
            r#"{{"data":[{},true],"shape":[{},{}],"typestr":"<f8","version":3}}"#,
            rows.as_ptr() as usize,
            out.len(),
            self.features
        );
        self.interface.push('\0');
        let (mut shape, mut dims, mut result) = (std::ptr::null(), 0u64, std::ptr::null());
        // SAFETY: the interface describes `rows` (out.len() × features f64, read only
        // during the call); XGBoost's result buffer holds one f32 per row and stays valid
        // until the next call on this booster, so it is copied out at once.
        unsafe {
            let rc = (self.predict)(
                self.booster,
                self.interface.as_ptr().cast(),
                self.config.as_ptr(),
                std::ptr::null_mut(),
                &mut shape,
                &mut dims,
                &mut result,
            );
            if rc != 0 {
                let detail = std::ffi::CStr::from_ptr((self.last_error)()).to_string_lossy();
                panic!("XGBoosterPredictFromDense failed: {detail}");
            }
            let n = out.len();
            for (o, v) in out.iter_mut().zip(std::slice::from_raw_parts(result, n)) {
                *o = f64::from(*v);
            }
        }
    }
}

impl Contender for XgBoost {
    fn name(&self) -> &'static str {
        "xgboost-capi"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        self.score(rows, out);
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let mut out = [0.0];
        self.score(row, &mut out);
        out[0]
    }
}

const USAGE: &str = "usage:
  peer-bench DIR SIZE [lightgbm|xgboost] [OPTIONS]   models and data as make_models.py lays them out
  peer-bench --model FILE --data FILE [OPTIONS]       any model, any data
options:
  --format lightgbm|xgboost   the model's format (default: lightgbm)
  --data FILE                 rows: raw little-endian f64 (row-major) or .csv
  --features N                columns of a raw f64 file (default 30; a .csv says its own)
  --lightgbm-lib FILE         lib_lightgbm.so (LightGBM models)
  --xgboost-lib FILE          libxgboost.so (XGBoost models)
  --onnxruntime-lib FILE      libonnxruntime.so, with --onnx
  --onnx FILE                 the model converted to ONNX
  --lleaves FILE              lleaves' compiled model as a shared object";

/// What to compare: the model, its rows, and where each peer is.
#[derive(Debug, Default)]
struct Setup {
    label: String,
    model: Option<PathBuf>,
    format: Option<Format>,
    data: Option<PathBuf>,
    features: Option<usize>,
    lightgbm_lib: Option<PathBuf>,
    xgboost_lib: Option<PathBuf>,
    onnxruntime_lib: Option<PathBuf>,
    onnx: Option<PathBuf>,
    lleaves: Option<PathBuf>,
}

impl Setup {
    fn from_args(args: &[String]) -> Result<Setup, Fail> {
        let mut setup = Setup::default();
        let mut positional = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(USAGE.into());
            }
            let Some(flag) = arg.strip_prefix("--") else {
                positional.push(arg.clone());
                continue;
            };
            let value = args.next().ok_or_else(|| format!("--{flag} needs a value\n{USAGE}"))?;
            let path = Some(PathBuf::from(value));
            match flag {
                "model" => setup.model = path,
                "format" => setup.format = Some(value.parse::<Format>()?),
                "data" => setup.data = path,
                "features" => {
                    let n: usize = value.parse().map_err(|e| format!("--features {value}: {e}"))?;
                    if n == 0 {
                        return Err("--features must be at least 1".into());
                    }
                    setup.features = Some(n);
                }
                "lightgbm-lib" => setup.lightgbm_lib = path,
                "xgboost-lib" => setup.xgboost_lib = path,
                "onnxruntime-lib" => setup.onnxruntime_lib = path,
                "onnx" => setup.onnx = path,
                "lleaves" => setup.lleaves = path,
                _ => return Err(format!("unknown option --{flag}\n{USAGE}").into()),
            }
        }
        match positional.as_slice() {
            [] => {}
            [dir, size] | [dir, size, _] => {
                if let [_, _, format] = positional.as_slice() {
                    setup.format = Some(format.parse::<Format>()?);
                }
                setup.fill_from_dir(Path::new(dir), size);
            }
            _ => return Err(format!("unexpected arguments {positional:?}\n{USAGE}").into()),
        }
        if setup.model.is_none() || setup.data.is_none() {
            return Err(format!("a model and data are needed\n{USAGE}").into());
        }
        Ok(setup)
    }

    /// The `make_models.py` layout, for whatever the options did not name.
    fn fill_from_dir(&mut self, dir: &Path, size: &str) {
        let lib = |name: &str| std::fs::read_to_string(dir.join(name)).ok().map(|s| PathBuf::from(s.trim()));
        let model = match self.format.unwrap_or(Format::LightGbm) {
            Format::LightGbm => dir.join(format!("{size}.model.txt")),
            Format::XgBoost => dir.join(format!("{size}.xgb.json")),
        };
        self.label = size.to_owned();
        self.model.get_or_insert(model);
        self.data.get_or_insert(dir.join("X.f64"));
        if self.lightgbm_lib.is_none() {
            self.lightgbm_lib = lib("lightgbm_lib.txt");
        }
        if self.xgboost_lib.is_none() {
            self.xgboost_lib = lib("xgboost_lib.txt");
        }
        if self.onnxruntime_lib.is_none() {
            self.onnxruntime_lib = lib("onnxruntime_lib.txt");
        }
        self.onnx.get_or_insert(dir.join(format!("{size}.onnx")));
        self.lleaves.get_or_insert(dir.join(format!("{size}.lleaves.so")));
    }
}

/// Reads the rows: a `.csv` file (its column count), or raw little-endian f64 with
/// `features` columns. Returns the values row-major and the column count.
fn read_rows(path: &Path, features: Option<usize>) -> Result<(Vec<f64>, usize), Fail> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (data, columns) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))?;
        let mut data = Vec::new();
        let mut columns = None;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let parsed: Result<Vec<f64>, _> = cells
                .iter()
                .map(|c| match *c {
                    "" => Ok(f64::NAN),
                    c if c.eq_ignore_ascii_case("nan") => Ok(f64::NAN),
                    c => c.parse::<f64>().map_err(|e| format!("{c:?}: {e}")),
                })
                .collect();
            match (parsed, i) {
                (Ok(values), _) => {
                    if *columns.get_or_insert(values.len()) != values.len() {
                        return Err(format!("{}: line {} has {} cells", path.display(), i + 1, values.len()).into());
                    }
                    data.extend(values);
                }
                (Err(_), 0) => {} // a header row
                (Err(e), _) => return Err(format!("{}: line {}: {e}", path.display(), i + 1).into()),
            }
        }
        (data, columns.unwrap_or(0))
    } else {
        if bytes.len() % 8 != 0 {
            return Err(format!("{}: {} bytes is not a whole number of f64", path.display(), bytes.len()).into());
        }
        let data = bytes.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        (data.collect(), features.unwrap_or(DEFAULT_FEATURES))
    };
    if let Some(n) = features
        && n != columns
    {
        return Err(format!("{}: --features {n}, but the file has {columns} columns", path.display()).into());
    }
    if columns == 0 || data.is_empty() || data.len() % columns != 0 {
        return Err(format!("{}: {} values do not make rows of {columns} features", path.display(), data.len()).into());
    }
    Ok((data, columns))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-bench: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Fail> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = Setup::from_args(&args)?;
    let (Some(model_path), Some(data_path)) = (setup.model.as_deref(), setup.data.as_deref()) else {
        return Err(USAGE.into());
    };
    let format = setup.format.unwrap_or(Format::LightGbm);
    let size = if setup.label.is_empty() {
        model_path.file_stem().map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
    } else {
        setup.label.clone()
    };
    let (data, features) = read_rows(data_path, setup.features)?;
    let n_rows = data.len() / features;

    let started = Instant::now();
    let mut compiler = Compiler::new(size.clone(), "1").add_file(model_path, Some(format))?;
    // FRESCO_LAYOUT=branches|tables overrides the size-based choice, for layout studies.
    match std::env::var("FRESCO_LAYOUT").as_deref() {
        Ok("branches") => compiler = compiler.layout(Layout::Branches),
        Ok("tables") => compiler = compiler.layout(Layout::Tables),
        _ => {}
    }
    let wasm = compiler.compile()?;
    let compile_s = started.elapsed().as_secs_f64();
    // A 100,000-row call on the largest model takes seconds: raise the 1 s default deadline.
    // FRESCO_NAN_CANON=1: canonicalise every float operation's NaN (the engine's option).
    let canonical = std::env::var("FRESCO_NAN_CANON").is_ok_and(|v| v == "1");
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

    if ensemble.n_features() != features {
        return Err(format!("the model reads {} features, the data has {features}", ensemble.n_features()).into());
    }
    let mut contenders: Vec<Box<dyn Contender>> =
        vec![Box::new(FrescoWasm(model)), Box::new(FrescoNative(ensemble, vec![0.0; 1], features))];
    let present = |path: &Option<PathBuf>, what: &str| match path {
        Some(p) if p.exists() => Some(p.clone()),
        Some(p) => {
            eprintln!("{}: not there, {what} left out", p.display());
            None
        }
        None => {
            eprintln!("{what} not given, left out");
            None
        }
    };
    match format {
        Format::LightGbm => {
            if let Some(lib) = present(&setup.lightgbm_lib, "LightGBM") {
                contenders.push(Box::new(LightGbm::load(&lib, model_path, features)?));
            }
            if let Some(so) = present(&setup.lleaves, "lleaves") {
                contenders.push(Box::new(Lleaves::load(&so)?));
            }
            // The onnxmltools conversion, scored in float32 (so it agrees to about 1e-5).
            if let (Some(lib), Some(onnx)) =
                (present(&setup.onnxruntime_lib, "onnxruntime"), present(&setup.onnx, "the ONNX model"))
            {
                contenders.push(Box::new(onnxruntime::OnnxRuntime::load(&lib, &onnx)?));
            }
        }
        Format::XgBoost => {
            if let Some(lib) = present(&setup.xgboost_lib, "XGBoost") {
                contenders.push(Box::new(XgBoost::load(&lib, model_path, features)?));
            }
        }
    }

    // Agreement first: every contender against fresco-wasm on the first 2,000 rows.
    let check_rows = n_rows.min(2000);
    let check = &data[..check_rows * features];
    let mut reference = vec![0.0; check_rows];
    contenders[0].batch(check, &mut reference);
    for c in contenders.iter_mut().skip(1) {
        let mut got = vec![0.0; check_rows];
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
    let batch = &data[..BATCH.min(n_rows) * features];
    let mut out = vec![0.0; batch.len() / features];
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
                let row = &data[((round * per_round + i) % n_rows) * features..][..features];
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
