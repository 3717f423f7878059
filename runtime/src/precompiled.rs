//! Precompiled artifacts: a model compiled ahead of time, for devices that should not
//! compile at start-up (phones, small edge nodes) or may not make executable memory at
//! all (a [`Target::Pulley`](crate::Target::Pulley) artifact is bytecode for the interpreter).
//!
//! The file is `FRESCOPC`, a little-endian `u32` format version (1), a `u32` header
//! length, the header (JSON: target triple, the engine's compatibility key, the SHA-256
//! of the `.wasm` it was made from, and the model's metadata, since wasmtime's
//! compiled form keeps no custom sections), then wasmtime's serialized module. A loader
//! checks the target and the compatibility key before wasmtime looks at the code, so an
//! artifact for another CPU or another engine build is refused with a typed error
//! ([`Incompatibility`]), never run.

use fresco_abi::ModelMetadata;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::error::{Error, Result};

/// The first bytes of every precompiled artifact.
pub const MAGIC: &[u8; 8] = b"FRESCOPC";
/// The envelope's format version.
const FORMAT: u32 = 1;
/// Headers are metadata plus a few fields; anything larger is not ours.
const MAX_HEADER_BYTES: usize = fresco_abi::MAX_METADATA_BYTES + 4096;

/// Why a precompiled artifact cannot run on an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incompatibility {
    /// It was made for another target: another CPU, or Pulley for a native engine
    /// (or the reverse).
    Target {
        /// The artifact's target triple.
        artifact: String,
        /// The engine's.
        engine: String,
    },
    /// It was made by another engine build or configuration (wasmtime version,
    /// compiler settings, CPU features): the compatibility keys differ.
    Engine {
        /// The artifact's compatibility key.
        artifact: String,
        /// The engine's.
        engine: String,
    },
    /// wasmtime refused the compiled code itself.
    Refused {
        /// wasmtime's reason.
        reason: String,
    },
}

impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incompatibility::Target { artifact, engine } => {
                write!(f, "it was compiled for {artifact}, this engine runs {engine}")
            }
            Incompatibility::Engine { artifact, engine } => write!(
                f,
                "it was compiled by another engine build or configuration (compatibility key {artifact}, this \
                 engine's {engine}); compile it again with this version"
            ),
            Incompatibility::Refused { reason } => write!(f, "wasmtime refused its code: {reason}"),
        }
    }
}

/// What a precompiled artifact's header says, read without touching its code: which
/// target it was made for and the model it holds. A device that ships several
/// artifacts picks the one for its engine with it; `fresco inspect` prints it.
///
/// ```
/// use fresco_runtime::{Engine, PrecompiledInfo, Target};
///
/// let engine = Engine::builder().target(Target::Pulley).build()?;
/// let artifact = engine.precompile(&fresco_test_models::linear())?;
/// let info = PrecompiledInfo::read(&artifact)?;
/// assert_eq!(info.target, "pulley64");
/// assert_eq!(info.target.parse::<Target>()?, Target::Pulley);
/// assert_eq!(info.metadata.name, "linear");
/// # Ok::<(), fresco_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PrecompiledInfo {
    /// The target triple its code is for (`pulley64`, `x86_64-unknown-linux-gnu`).
    pub target: String,
    /// The compatibility key of the engine that made it.
    pub compatibility: String,
    /// SHA-256 of the `.wasm` it was compiled from.
    pub module_sha256: [u8; 32],
    /// The model's metadata.
    pub metadata: ModelMetadata,
    /// Bytes of compiled code.
    pub code_bytes: usize,
}

impl PrecompiledInfo {
    /// Reads an artifact's header ([`Error::NotPrecompiled`] when it is not one). Safe:
    /// nothing of its code is looked at, let alone run.
    pub fn read(bytes: &[u8]) -> Result<Self> {
        let a = parse(bytes, "<precompiled>")?;
        Ok(PrecompiledInfo {
            target: a.target,
            compatibility: a.compatibility,
            module_sha256: a.module_sha256,
            metadata: a.metadata,
            code_bytes: a.code.len(),
        })
    }
}

/// The parts of an artifact.
pub(crate) struct Artifact<'a> {
    pub(crate) target: String,
    pub(crate) compatibility: String,
    pub(crate) module_sha256: [u8; 32],
    pub(crate) metadata: ModelMetadata,
    pub(crate) code: &'a [u8],
}

/// Compiles `wasm` (checked as [`Model::from_bytes`](crate::Model::from_bytes) checks
/// it) for `engine`'s target into an artifact.
pub(crate) fn precompile(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>> {
    let metadata = crate::validate::read_metadata(wasm, "<bytes>")?;
    let label = format!("{}@{}", metadata.name, metadata.version);
    let inner = &engine.inner;
    let code = inner
        .wasmtime
        .precompile_module(wasm)
        .map_err(|e| Error::Compile { model: label.clone(), reason: format!("{e:#}") })?;
    let header = json!({
        "target": inner.target.triple(),
        "compatibility": crate::cache::compatibility_key(&inner.wasmtime),
        "module_sha256": hex::encode(Sha256::digest(wasm)),
        "metadata": metadata,
    });
    let header =
        serde_json::to_vec(&header).map_err(|e| Error::Compile { model: label.clone(), reason: e.to_string() })?;
    let header_len = u32::try_from(header.len())
        .map_err(|_| Error::Compile { model: label, reason: format!("a header of {} bytes", header.len()) })?;
    let mut out = Vec::with_capacity(16 + header.len() + code.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&code);
    Ok(out)
}

/// Whether `bytes` start like a precompiled artifact.
pub fn is_precompiled(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Splits an artifact into its parts, or says why it is not one.
pub(crate) fn parse<'a>(bytes: &'a [u8], origin: &str) -> Result<Artifact<'a>> {
    let not = |reason: String| Error::NotPrecompiled { origin: origin.to_owned(), reason };
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| not("it does not start with `FRESCOPC`".into()))?;
    let (format, rest) = split_u32(rest).ok_or_else(|| not("it ends inside its envelope".into()))?;
    if format != FORMAT {
        return Err(not(format!("envelope format {format}; this version reads {FORMAT}")));
    }
    let (len, rest) = split_u32(rest).ok_or_else(|| not("it ends inside its envelope".into()))?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_HEADER_BYTES || len > rest.len() {
        return Err(not(format!("a header of {len} bytes in {} remaining", rest.len())));
    }
    let (header, code) = rest.split_at(len);
    let header: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| not(format!("its header is not JSON: {e}")))?;
    let field = |name: &str| {
        header
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| not(format!("no `{name}` in its header")))
    };
    let sha = field("module_sha256")?;
    let mut module_sha256 = [0u8; 32];
    hex::decode_to_slice(&sha, &mut module_sha256).map_err(|e| not(format!("module_sha256 {sha:?}: {e}")))?;
    let metadata: ModelMetadata = header
        .get("metadata")
        .cloned()
        .ok_or_else(|| not("no `metadata` in its header".into()))
        .and_then(|m| serde_json::from_value(m).map_err(|e| not(format!("its metadata: {e}"))))?;
    metadata.validate().map_err(|source| Error::Metadata { origin: origin.to_owned(), source })?;
    Ok(Artifact { target: field("target")?, compatibility: field("compatibility")?, module_sha256, metadata, code })
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}

/// Checks `artifact` against `engine` before any of its code is looked at.
pub(crate) fn check(engine: &Engine, artifact: &Artifact<'_>, origin: &str) -> Result<()> {
    let inner = &engine.inner;
    let incompatible = |why| Error::Incompatible { origin: origin.to_owned(), why };
    let target = inner.target.triple();
    if artifact.target != target {
        return Err(incompatible(Incompatibility::Target { artifact: artifact.target.clone(), engine: target }));
    }
    let key = crate::cache::compatibility_key(&inner.wasmtime);
    if artifact.compatibility != key {
        return Err(incompatible(Incompatibility::Engine { artifact: artifact.compatibility.clone(), engine: key }));
    }
    if !matches!(wasmtime::Engine::detect_precompiled(artifact.code), Some(wasmtime::Precompiled::Module)) {
        return Err(incompatible(Incompatibility::Refused { reason: "not a precompiled core module".into() }));
    }
    Ok(())
}
