//! onnxruntime through its C API, loaded from the library the Python wheel ships: the
//! onnxmltools conversion of the model, float32 inputs, one thread.
//!
//! The C API is a table of function pointers (`OrtApi`) whose order never changes once a
//! version ships; the indices below are those of version 1, which every later runtime
//! still serves.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;

use super::{Contender, Fail};

type Status = *mut c_void;

/// Positions in `OrtApi`.
mod index {
    pub const GET_ERROR_MESSAGE: usize = 2;
    pub const CREATE_ENV: usize = 3;
    pub const CREATE_SESSION: usize = 7;
    pub const RUN: usize = 9;
    pub const CREATE_SESSION_OPTIONS: usize = 10;
    pub const SET_INTRA_OP_NUM_THREADS: usize = 24;
    pub const SET_INTER_OP_NUM_THREADS: usize = 25;
    pub const SESSION_GET_INPUT_NAME: usize = 36;
    pub const SESSION_GET_OUTPUT_NAME: usize = 37;
    pub const CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE: usize = 49;
    pub const GET_TENSOR_MUTABLE_DATA: usize = 51;
    pub const CREATE_CPU_MEMORY_INFO: usize = 69;
    pub const ALLOCATOR_FREE: usize = 76;
    pub const GET_ALLOCATOR_WITH_DEFAULT_OPTIONS: usize = 78;
    pub const RELEASE_STATUS: usize = 93;
    pub const RELEASE_VALUE: usize = 96;
}

/// `OrtApiBase`, what `OrtGetApiBase` returns.
#[repr(C)]
struct ApiBase {
    get_api: unsafe extern "C" fn(u32) -> *const *const c_void,
    _get_version_string: unsafe extern "C" fn() -> *const c_char,
}

/// The API version asked for: only version-1 functions are called.
const API_VERSION: u32 = 1;
const LOGGING_LEVEL_ERROR: c_int = 3;
const ARENA_ALLOCATOR: c_int = 1;
const MEM_TYPE_DEFAULT: c_int = 0;
const ELEMENT_FLOAT: c_int = 1;

/// An onnxruntime session over the model, called through the C API.
pub struct OnnxRuntime {
    _lib: libloading::Library,
    api: *const *const c_void,
    _env: *mut c_void,
    session: *mut c_void,
    memory: *mut c_void,
    input: CString,
    output: CString,
    buffer: Vec<f32>,
}

impl OnnxRuntime {
    /// Opens `model` (ONNX) with the runtime library at `lib_path`.
    pub fn load(lib_path: &Path, model: &Path) -> Result<Self, Fail> {
        // SAFETY: the documented C API of onnxruntime, called with the argument types of
        // onnxruntime_c_api.h; every out-pointer is written before it is read.
        unsafe {
            let lib = libloading::Library::new(lib_path)?;
            let base: unsafe extern "C" fn() -> *const ApiBase = *lib.get(b"OrtGetApiBase\0")?;
            let api = ((*base()).get_api)(API_VERSION);
            if api.is_null() {
                return Err("onnxruntime does not serve API version 1".into());
            }
            let mut ort = OnnxRuntime {
                _lib: lib,
                api,
                _env: std::ptr::null_mut(),
                session: std::ptr::null_mut(),
                memory: std::ptr::null_mut(),
                input: CString::default(),
                output: CString::default(),
                buffer: Vec::new(),
            };
            let create_env: unsafe extern "C" fn(c_int, *const c_char, *mut *mut c_void) -> Status =
                ort.function(index::CREATE_ENV);
            let status = create_env(LOGGING_LEVEL_ERROR, c"peer-bench".as_ptr(), &mut ort._env);
            ort.check(status)?;
            let mut options = std::ptr::null_mut();
            let create_options: unsafe extern "C" fn(*mut *mut c_void) -> Status =
                ort.function(index::CREATE_SESSION_OPTIONS);
            ort.check(create_options(&mut options))?;
            for at in [index::SET_INTRA_OP_NUM_THREADS, index::SET_INTER_OP_NUM_THREADS] {
                let set_threads: unsafe extern "C" fn(*mut c_void, c_int) -> Status = ort.function(at);
                ort.check(set_threads(options, 1))?;
            }
            let path = CString::new(model.to_string_lossy().as_bytes())?;
            let create_session: unsafe extern "C" fn(
                *mut c_void,
                *const c_char,
                *mut c_void,
                *mut *mut c_void,
            ) -> Status = ort.function(index::CREATE_SESSION);
            let status = create_session(ort._env, path.as_ptr(), options, &mut ort.session);
            ort.check(status)?;
            let create_memory: unsafe extern "C" fn(c_int, c_int, *mut *mut c_void) -> Status =
                ort.function(index::CREATE_CPU_MEMORY_INFO);
            let status = create_memory(ARENA_ALLOCATOR, MEM_TYPE_DEFAULT, &mut ort.memory);
            ort.check(status)?;
            ort.input = ort.io_name(index::SESSION_GET_INPUT_NAME)?;
            ort.output = ort.io_name(index::SESSION_GET_OUTPUT_NAME)?;
            Ok(ort)
        }
    }

    /// The function at `at` in the API table, as type `F`.
    ///
    /// # Safety
    /// `F` must be the function's C signature.
    unsafe fn function<F: Copy>(&self, at: usize) -> F {
        // SAFETY: `api` points at the runtime's table, which holds more than `at`
        // entries; the caller names the entry's signature.
        unsafe { std::mem::transmute_copy(&*self.api.add(at)) }
    }

    /// `Ok` for a null status; the runtime's message otherwise.
    fn check(&self, status: Status) -> Result<(), Fail> {
        if status.is_null() {
            return Ok(());
        }
        // SAFETY: a non-null status from the runtime, read and then released once.
        unsafe {
            let message: unsafe extern "C" fn(Status) -> *const c_char = self.function(index::GET_ERROR_MESSAGE);
            let text = CStr::from_ptr(message(status)).to_string_lossy().into_owned();
            let release: unsafe extern "C" fn(Status) = self.function(index::RELEASE_STATUS);
            release(status);
            Err(format!("onnxruntime: {text}").into())
        }
    }

    /// The session's first input or output name.
    fn io_name(&self, at: usize) -> Result<CString, Fail> {
        // SAFETY: C API calls with their documented signatures; the name the runtime
        // allocates is copied, then freed with the allocator that made it.
        unsafe {
            let mut allocator = std::ptr::null_mut();
            let default_allocator: unsafe extern "C" fn(*mut *mut c_void) -> Status =
                self.function(index::GET_ALLOCATOR_WITH_DEFAULT_OPTIONS);
            self.check(default_allocator(&mut allocator))?;
            let mut name: *mut c_char = std::ptr::null_mut();
            let get_name: unsafe extern "C" fn(*mut c_void, usize, *mut c_void, *mut *mut c_char) -> Status =
                self.function(at);
            self.check(get_name(self.session, 0, allocator, &mut name))?;
            let owned = CStr::from_ptr(name).to_owned();
            let free: unsafe extern "C" fn(*mut c_void, *mut c_void) -> Status = self.function(index::ALLOCATOR_FREE);
            self.check(free(allocator, name.cast()))?;
            Ok(owned)
        }
    }

    /// Scores `rows` (row-major, `out.len()` rows) into `out`.
    fn score(&mut self, rows: &[f64], out: &mut [f64]) -> Result<(), Fail> {
        let n = out.len();
        let features = rows.len().checked_div(n).ok_or("no rows to score")?;
        self.buffer.clear();
        self.buffer.extend(rows.iter().map(|&v| v as f32));
        let shape = [i64::try_from(n)?, i64::try_from(features)?];
        // SAFETY: the tensor borrows `buffer` (n × features f32) for the duration of `Run`; the
        // output tensor holds n f32 values; both values are released here.
        unsafe {
            let create: unsafe extern "C" fn(
                *mut c_void,
                *mut c_void,
                usize,
                *const i64,
                usize,
                c_int,
                *mut *mut c_void,
            ) -> Status = self.function(index::CREATE_TENSOR_WITH_DATA_AS_ORT_VALUE);
            let mut input = std::ptr::null_mut();
            let status = create(
                self.memory,
                self.buffer.as_mut_ptr().cast(),
                self.buffer.len() * 4,
                shape.as_ptr(),
                2,
                ELEMENT_FLOAT,
                &mut input,
            );
            self.check(status)?;
            let run: unsafe extern "C" fn(
                *mut c_void,
                *const c_void,
                *const *const c_char,
                *const *const c_void,
                usize,
                *const *const c_char,
                usize,
                *mut *mut c_void,
            ) -> Status = self.function(index::RUN);
            let mut output = std::ptr::null_mut();
            let status = run(
                self.session,
                std::ptr::null(),
                &self.input.as_ptr(),
                &input.cast_const(),
                1,
                &self.output.as_ptr(),
                1,
                &mut output,
            );
            let release: unsafe extern "C" fn(*mut c_void) = self.function(index::RELEASE_VALUE);
            release(input);
            self.check(status)?;
            let data: unsafe extern "C" fn(*mut c_void, *mut *mut c_void) -> Status =
                self.function(index::GET_TENSOR_MUTABLE_DATA);
            let mut values: *mut c_void = std::ptr::null_mut();
            let got = self.check(data(output, &mut values));
            if got.is_ok() {
                let values = std::slice::from_raw_parts(values.cast::<f32>(), n);
                for (o, v) in out.iter_mut().zip(values) {
                    *o = f64::from(*v);
                }
            }
            release(output);
            got
        }
    }
}

impl Contender for OnnxRuntime {
    fn name(&self) -> &'static str {
        "onnxruntime-capi"
    }
    fn batch(&mut self, rows: &[f64], out: &mut [f64]) {
        if let Err(e) = self.score(rows, out) {
            panic!("{e}");
        }
    }
    fn one(&mut self, row: &[f64]) -> f64 {
        let mut out = [0.0];
        if let Err(e) = self.score(row, &mut out) {
            panic!("{e}");
        }
        out[0]
    }
}
