//! Everything that can go wrong loading or scoring a model.

use std::path::PathBuf;
use std::time::Duration;

use fresco_abi::MetadataError;

/// A typed runtime error. Each variant names the model (by its metadata name once that
/// is known, by its origin — a path or `<bytes>` — before) and what was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model file or cache entry could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The bytes do not start with the WebAssembly magic number.
    #[error("{origin}: not a WebAssembly module (no `\\0asm` header)")]
    NotWasm {
        /// Where the bytes came from.
        origin: String,
    },

    /// The bytes start like WebAssembly but do not parse or validate as a core module.
    #[error("{origin}: invalid WebAssembly: {reason}")]
    InvalidWasm {
        /// Where the bytes came from.
        origin: String,
        /// The parser's explanation.
        reason: String,
    },

    /// The module imports something; ABI v1 models are import-free.
    #[error("{origin}: imports `{module}::{name}`, but fresco models must have no imports")]
    HasImports {
        /// Where the bytes came from.
        origin: String,
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },

    /// There is no `fresco.model` custom section.
    #[error("{origin}: no `fresco.model` metadata section")]
    MissingMetadata {
        /// Where the bytes came from.
        origin: String,
    },

    /// More than one `fresco.model` custom section.
    #[error("{origin}: {count} `fresco.model` metadata sections; exactly one is allowed")]
    DuplicateMetadata {
        /// Where the bytes came from.
        origin: String,
        /// How many were found.
        count: usize,
    },

    /// The metadata section is too large, malformed or invalid.
    #[error("{origin}: {source}")]
    Metadata {
        /// Where the bytes came from.
        origin: String,
        /// What is wrong with it.
        #[source]
        source: MetadataError,
    },

    /// The bytes are not a precompiled artifact (see [`Engine::precompile`](crate::Engine::precompile)).
    #[error("{origin}: not a precompiled fresco artifact: {reason}")]
    NotPrecompiled {
        /// Where the bytes came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },

    /// A precompiled artifact was made for another target or engine: it is refused,
    /// never run.
    #[error("{origin}: cannot run this precompiled artifact: {why}")]
    Incompatible {
        /// Where the bytes came from.
        origin: String,
        /// What differs.
        why: crate::Incompatibility,
    },

    /// wasmtime could not compile the module.
    #[error("model `{model}`: compilation failed: {reason}")]
    Compile {
        /// The model.
        model: String,
        /// The compiler's explanation.
        reason: String,
    },

    /// A required export is absent.
    #[error("model `{model}`: missing export `{export}`")]
    MissingExport {
        /// The model.
        model: String,
        /// The export's name.
        export: &'static str,
    },

    /// A required export has the wrong kind or signature.
    #[error("model `{model}`: export `{export}` should be {expected}, found {found}")]
    ExportType {
        /// The model.
        model: String,
        /// The export's name.
        export: &'static str,
        /// What ABI v1 requires.
        expected: &'static str,
        /// What the module declares.
        found: String,
    },

    /// `fresco_abi_version()` disagrees with the metadata's `abi` field.
    #[error("model `{model}`: metadata declares ABI {declared}, but fresco_abi_version() returns {exported}")]
    AbiMismatch {
        /// The model.
        model: String,
        /// The metadata's `abi`.
        declared: i32,
        /// What the export returned.
        exported: i32,
    },

    /// Creating an instance failed (memory over the cap at start, a trapping start function).
    #[error("model `{model}`: instantiation failed: {reason}")]
    Instantiate {
        /// The model.
        model: String,
        /// Why.
        reason: String,
    },

    /// The call ran past its deadline and was interrupted.
    #[error("model `{model}`: stopped after exceeding its {deadline:?} deadline")]
    DeadlineExceeded {
        /// The model.
        model: String,
        /// The configured deadline.
        deadline: Duration,
    },

    /// The model tried to grow its memory past the cap.
    #[error("model `{model}`: tried to grow linear memory to {requested} bytes, over the {limit}-byte limit")]
    MemoryLimit {
        /// The model.
        model: String,
        /// Size the model asked for.
        requested: usize,
        /// The configured cap.
        limit: usize,
    },

    /// The model overflowed its stack.
    #[error("model `{model}`: stack overflow")]
    StackOverflow {
        /// The model.
        model: String,
    },

    /// The model trapped (unreachable, out-of-bounds access, division by zero, ...).
    #[error("model `{model}`: trapped: {trap}")]
    Trap {
        /// The model.
        model: String,
        /// wasmtime's description of the trap.
        trap: String,
    },

    /// `fresco_predict` returned a non-zero status.
    #[error("model `{model}`: fresco_predict returned status {code} ({meaning})")]
    ModelStatus {
        /// The model.
        model: String,
        /// The status code.
        code: i32,
        /// The ABI's meaning of the code, or "model-defined".
        meaning: &'static str,
    },

    /// `fresco_alloc` returned a region outside linear memory.
    #[error("model `{model}`: fresco_alloc({bytes}) returned offset {offset}, outside its {memory}-byte memory")]
    BadAllocation {
        /// The model.
        model: String,
        /// Bytes requested.
        bytes: usize,
        /// Offset returned.
        offset: i64,
        /// Memory size at the time.
        memory: usize,
    },

    /// The input or output buffer does not match the model's shape.
    #[error("model `{model}`: {what} has {len} values, expected a multiple of {width} ({rows} rows × {width})")]
    Shape {
        /// The model.
        model: String,
        /// `input` or `output`.
        what: &'static str,
        /// Length given.
        len: usize,
        /// Values per row.
        width: usize,
        /// Rows implied by the input.
        rows: usize,
    },

    /// A batch too large to fit in the model's memory limit in one call.
    #[error("model `{model}`: batch of {rows} rows needs {bytes} bytes, over the {limit}-byte memory limit; split it")]
    BatchTooLarge {
        /// The model.
        model: String,
        /// Rows requested.
        rows: usize,
        /// Bytes the buffers would need.
        bytes: usize,
        /// The configured memory cap.
        limit: usize,
    },

    /// The engine could not be created (an invalid configuration).
    #[error("engine configuration rejected: {reason}")]
    Engine {
        /// Why.
        reason: String,
    },
}

/// Shorthand for `Result<T, fresco_runtime::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
