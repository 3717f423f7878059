use std::fs;
use std::path::{Path, PathBuf};

use fresco_abi::ModelMetadata;

use super::manifest::{self, InvalidName, MANIFEST, Manifest, ManifestError};
use crate::error::Refusal;
use crate::model::ModelSource;

/// The kind of artifact a version directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArtifactKind {
    /// A WebAssembly module (ABI v1), `model.wasm`.
    Wasm,
    /// An ONNX graph, `model.onnx`, with its `metadata.json`.
    Onnx,
    /// A LightGBM text model, `model.txt`.
    LightGbm,
    /// An XGBoost JSON model, `model.json`.
    XgBoost,
}

impl ArtifactKind {
    const ALL: [(ArtifactKind, &'static str); 4] = [
        (ArtifactKind::Wasm, "model.wasm"),
        (ArtifactKind::Onnx, "model.onnx"),
        (ArtifactKind::LightGbm, "model.txt"),
        (ArtifactKind::XgBoost, "model.json"),
    ];

    /// The Cargo feature that loads this kind (WebAssembly: `client`, which the registry
    /// needs anyway).
    fn feature(self) -> &'static str {
        match self {
            ArtifactKind::Wasm => "client",
            ArtifactKind::Onnx => "onnx",
            ArtifactKind::LightGbm | ArtifactKind::XgBoost => "trees",
        }
    }

    /// The artifact's file name inside a version directory.
    pub fn file_name(self) -> &'static str {
        Self::ALL.iter().find(|(k, _)| *k == self).map_or("model.wasm", |(_, f)| f)
    }
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArtifactKind::Wasm => "wasm",
            ArtifactKind::Onnx => "onnx",
            ArtifactKind::LightGbm => "lightgbm",
            ArtifactKind::XgBoost => "xgboost",
        })
    }
}

/// One stored version of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// The version, as named by its directory.
    pub version: String,
    /// Its artifact.
    pub kind: ArtifactKind,
    /// The artifact file.
    pub path: PathBuf,
}

/// What went wrong reading or changing a registry. Each names the path or the model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A model or version name that is not a plain directory name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// No such model in the registry.
    #[error("the registry at {root} has no model `{model}`")]
    UnknownModel {
        /// The registry root.
        root: PathBuf,
        /// The model asked for.
        model: String,
    },
    /// No such version of the model.
    #[error("model `{model}` has no version `{version}` in the registry")]
    UnknownVersion {
        /// The model.
        model: String,
        /// The version asked for.
        version: String,
    },
    /// A version directory with no artifact, or with more than one.
    #[error("{dir}: {reason}")]
    Artifact {
        /// The version directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest that is not valid JSON of the documented form.
    #[error("{path}: not a valid manifest: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ManifestError,
    },
    /// The model has never been deployed (no manifest).
    #[error("model `{model}` has no manifest yet: deploy a version first")]
    NotDeployed {
        /// The model.
        model: String,
    },
    /// Rollback with no previous version recorded.
    #[error("model `{model}` has no previous version to roll back to")]
    NoPrevious {
        /// The model.
        model: String,
    },
    /// A tree model file that does not compile.
    #[cfg(feature = "trees")]
    #[error("{path}: {source}")]
    Compile {
        /// The artifact.
        path: PathBuf,
        /// Why.
        source: fresco_compiler::CompileError,
    },
    /// An ONNX model that does not load.
    #[cfg(feature = "onnx")]
    #[error("{path}: {source}")]
    Onnx {
        /// The artifact.
        path: PathBuf,
        /// Why.
        source: crate::OnnxError,
    },
    /// An artifact refused at publish, before a version number was taken: it does not
    /// load, declares another model or version, or fails to score a plain row.
    #[error("`{model}` version `{version}` was not published: {reason}")]
    Refused {
        /// The model.
        model: String,
        /// The version it was to be.
        version: String,
        /// Why (boxed: it is large and rare).
        #[source]
        reason: Box<crate::error::Refusal>,
    },
    /// ONNX metadata missing for an ONNX model, or given for another kind.
    #[error("`{model}` version `{version}`: {reason}")]
    Metadata {
        /// The model.
        model: String,
        /// The version.
        version: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An artifact this build cannot load (its Cargo feature is off).
    #[error("{path}: {kind} models need fresco's `{feature}` feature")]
    Unsupported {
        /// The artifact.
        path: PathBuf,
        /// Its kind.
        kind: ArtifactKind,
        /// The feature that loads it.
        feature: &'static str,
    },
}

/// A registry rooted at a directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.to_owned(), source }
}

fn check_name(what: &'static str, name: &str) -> Result<(), RegistryError> {
    Ok(manifest::check_name(what, name)?)
}

fn already_exists(dir: PathBuf) -> RegistryError {
    RegistryError::Artifact { dir, reason: "this version already exists; versions are immutable".into() }
}

/// Orders versions numerically where both are numbers ("9" < "10"), else as text.
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Loads `bytes` as a Client would load `version` of `model` from the registry, and
/// checks it ([`Registry::publish`]).
fn check_artifact(
    model: &str,
    version: &str,
    kind: ArtifactKind,
    bytes: &[u8],
    onnx_metadata: Option<&ModelMetadata>,
) -> Result<(), RegistryError> {
    let refused = |reason| RegistryError::Refused {
        model: model.to_owned(),
        version: version.to_owned(),
        reason: Box::new(reason),
    };
    let metadata_error =
        |reason| RegistryError::Metadata { model: model.to_owned(), version: version.to_owned(), reason };
    if onnx_metadata.is_some() && kind != ArtifactKind::Onnx {
        return Err(metadata_error("metadata is given with ONNX models only (the others carry their own)"));
    }
    let load_error = |e: crate::ModelError| refused(Refusal::Load(Box::new(e)));
    let source = match kind {
        ArtifactKind::Wasm => ModelSource::WasmBytes(bytes.to_vec()),
        #[cfg(feature = "trees")]
        ArtifactKind::LightGbm | ArtifactKind::XgBoost => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| refused(Refusal::NotText { kind: kind.to_string(), at: e.valid_up_to() }))?;
            let format = if kind == ArtifactKind::LightGbm {
                fresco_compiler::Format::LightGbm
            } else {
                fresco_compiler::Format::XgBoost
            };
            let compiler = fresco_compiler::Compiler::new(model, version)
                .add_source(text, format)
                .map_err(|e| load_error(e.into()))?;
            ModelSource::Trees(Box::new(compiler))
        }
        #[cfg(feature = "onnx")]
        ArtifactKind::Onnx => {
            let mut meta = onnx_metadata
                .cloned()
                .ok_or_else(|| metadata_error("an ONNX model is published with its metadata (inputs and outputs)"))?;
            meta.name = model.to_owned();
            meta.version = version.to_owned();
            ModelSource::Onnx(crate::OnnxModel::from_bytes(bytes, meta).map_err(|e| load_error(e.into()))?)
        }
        #[allow(unreachable_patterns)]
        kind => {
            return Err(RegistryError::Unsupported {
                path: PathBuf::from(kind.file_name()),
                kind,
                feature: kind.feature(),
            });
        }
    };
    let engine = fresco_runtime::Engine::new().map_err(|e| load_error(e.into()))?;
    crate::client::check_artifact(&engine, source, model, version).map_err(refused)
}

impl Registry {
    /// Opens (creating if needed) the registry at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(Registry { root })
    }

    /// The registry's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, model: &str) -> Result<PathBuf, RegistryError> {
        check_name("model", model)?;
        Ok(self.root.join(model))
    }

    /// The models in the registry, sorted.
    pub fn models(&self) -> Result<Vec<String>, RegistryError> {
        let mut models = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let entry = entry.map_err(io_err(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && check_name("model", &name).is_ok() {
                models.push(name);
            }
        }
        models.sort();
        Ok(models)
    }

    /// The stored versions of `model`, oldest first (numeric versions in numeric order).
    pub fn versions(&self, model: &str) -> Result<Vec<VersionEntry>, RegistryError> {
        let dir = self.model_dir(model)?;
        if !dir.is_dir() {
            return Err(RegistryError::UnknownModel { root: self.root.clone(), model: model.to_owned() });
        }
        let mut versions = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let version = entry.file_name().to_string_lossy().into_owned();
            // Hidden entries are versions being published (see `publish`).
            if entry.path().is_dir() && check_name("version", &version).is_ok() {
                versions.push(self.entry(model, &version)?);
            }
        }
        versions.sort_by(|a, b| version_order(&a.version, &b.version));
        Ok(versions)
    }

    /// The stored version `version` of `model`.
    pub fn version(&self, model: &str, version: &str) -> Result<VersionEntry, RegistryError> {
        check_name("version", version)?;
        let dir = self.model_dir(model)?.join(version);
        if !dir.is_dir() {
            return Err(RegistryError::UnknownVersion { model: model.to_owned(), version: version.to_owned() });
        }
        self.entry(model, version)
    }

    fn entry(&self, model: &str, version: &str) -> Result<VersionEntry, RegistryError> {
        let dir = self.root.join(model).join(version);
        let found: Vec<_> = ArtifactKind::ALL.iter().filter(|(_, file)| dir.join(file).is_file()).collect();
        match found.as_slice() {
            [(kind, file)] => Ok(VersionEntry { version: version.to_owned(), kind: *kind, path: dir.join(file) }),
            [] => Err(RegistryError::Artifact {
                dir,
                reason: "no model.wasm, model.onnx, model.txt (LightGBM) or model.json (XGBoost)".into(),
            }),
            several => Err(RegistryError::Artifact {
                dir,
                reason: format!(
                    "{} artifacts ({}); a version holds exactly one",
                    several.len(),
                    several.iter().map(|(_, f)| *f).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }

    /// The model's manifest.
    pub fn manifest(&self, model: &str) -> Result<Manifest, RegistryError> {
        let path = self.model_dir(model)?.join(MANIFEST);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if self.root.join(model).is_dir() {
                    RegistryError::NotDeployed { model: model.to_owned() }
                } else {
                    RegistryError::UnknownModel { root: self.root.clone(), model: model.to_owned() }
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let manifest = Manifest::from_json(&bytes).map_err(|source| RegistryError::Manifest { path, source })?;
        Ok(manifest)
    }

    /// Makes `version` the serving version of `model` (the one serving now becomes the
    /// previous one). Only the manifest changes: Clients watching the registry load and
    /// validate the version and swap to it; a Client refuses a version that fails.
    pub fn deploy(&self, model: &str, version: &str) -> Result<Manifest, RegistryError> {
        self.version(model, version)?;
        let previous = match self.manifest(model) {
            Ok(m) if m.serving == version => m.previous,
            Ok(m) => Some(m.serving),
            Err(RegistryError::NotDeployed { .. }) => None,
            Err(e) => return Err(e),
        };
        let manifest = Manifest { serving: version.to_owned(), previous };
        self.write_manifest(model, &manifest)?;
        Ok(manifest)
    }

    /// Serves the previous version again (and records the one rolled back from as the
    /// previous one, so a second rollback undoes the first).
    pub fn rollback(&self, model: &str) -> Result<Manifest, RegistryError> {
        let current = self.manifest(model)?;
        let previous = current.previous.ok_or_else(|| RegistryError::NoPrevious { model: model.to_owned() })?;
        self.version(model, &previous)?;
        let manifest = Manifest { serving: previous, previous: Some(current.serving) };
        self.write_manifest(model, &manifest)?;
        Ok(manifest)
    }

    fn write_manifest(&self, model: &str, manifest: &Manifest) -> Result<(), RegistryError> {
        let dir = self.model_dir(model)?;
        let path = dir.join(MANIFEST);
        crate::atomic_file::write_whole(&path, &manifest.to_json()).map_err(io_err(&path))
    }

    /// Stores `bytes` as the artifact of a new version (refusing to overwrite one).
    ///
    /// The artifact is loaded and checked first, as a Client would load it: it must
    /// load (a tree model compiles, an ONNX graph fits its metadata), a `.wasm` must
    /// declare this model and version, and it must score a plain row (each input's
    /// default, else 0) with finite outputs. A refused artifact takes no version number.
    /// The version appears whole: it is written under a hidden name and renamed.
    ///
    /// ```
    /// use fresco::registry::{ArtifactKind, Registry, RegistryError};
    ///
    /// let root = tempfile::tempdir()?;
    /// let registry = Registry::open(root.path())?;
    /// let refused = registry.publish("linear", "1", ArtifactKind::LightGbm, b"not a booster", None);
    /// assert!(matches!(refused, Err(RegistryError::Refused { .. })));
    /// // A module declaring version 1 cannot be published as version 2.
    /// let mislabelled = registry.publish_wasm("linear", "2", &fresco_test_models::linear_version("1"));
    /// assert!(mislabelled.unwrap_err().to_string().contains("declares version `1`"));
    /// assert!(registry.models()?.is_empty(), "nothing was stored");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(
        &self,
        model: &str,
        version: &str,
        kind: ArtifactKind,
        bytes: &[u8],
        onnx_metadata: Option<&ModelMetadata>,
    ) -> Result<VersionEntry, RegistryError> {
        check_name("version", version)?;
        let model_dir = self.model_dir(model)?;
        let dir = model_dir.join(version);
        if dir.exists() {
            return Err(already_exists(dir));
        }
        check_artifact(model, version, kind, bytes, onnx_metadata)?;
        let staging = model_dir.join(format!(".{version}.{}.staging", crate::atomic_file::unique_suffix()));
        let publish = || {
            fs::create_dir_all(&staging).map_err(io_err(&staging))?;
            let artifact = staging.join(kind.file_name());
            fs::write(&artifact, bytes).map_err(io_err(&artifact))?;
            if let Some(meta) = onnx_metadata {
                let path = staging.join("metadata.json");
                let json = serde_json::to_vec_pretty(meta)
                    .map_err(|e| RegistryError::Artifact { dir: staging.clone(), reason: e.to_string() })?;
                fs::write(&path, json).map_err(io_err(&path))?;
            }
            // Two publishers of one version may both have passed the check above: the
            // rename of the second fails (the directory is there and not empty).
            fs::rename(&staging, &dir)
                .map_err(|e| if dir.exists() { already_exists(dir.clone()) } else { io_err(&dir)(e) })
        };
        if let Err(e) = publish() {
            // Nothing half-written stays behind.
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        self.entry(model, version)
    }

    /// [`publish`](Self::publish) for a WebAssembly module.
    pub fn publish_wasm(&self, model: &str, version: &str, wasm: &[u8]) -> Result<VersionEntry, RegistryError> {
        self.publish(model, version, ArtifactKind::Wasm, wasm, None)
    }

    /// Where to load `version` of `model` from. Tree files are compiled here; a `.wasm`
    /// is read when the Client loads it (and its declared name and version checked).
    pub fn source(&self, model: &str, version: &str) -> Result<ModelSource, RegistryError> {
        let entry = self.version(model, version)?;
        let path = entry.path.clone();
        match entry.kind {
            ArtifactKind::Wasm => {
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                Ok(ModelSource::WasmBytes(bytes))
            }
            #[cfg(feature = "trees")]
            ArtifactKind::LightGbm | ArtifactKind::XgBoost => {
                ModelSource::trees_file(&path, model, version).map_err(|source| RegistryError::Compile { path, source })
            }
            #[cfg(feature = "onnx")]
            ArtifactKind::Onnx => {
                let meta_path = path.with_file_name("metadata.json");
                let bytes = fs::read(&meta_path).map_err(io_err(&meta_path))?;
                let mut meta: ModelMetadata = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Artifact {
                    dir: meta_path.clone(),
                    reason: format!("metadata.json is not valid model metadata: {e}"),
                })?;
                meta.name = model.to_owned();
                meta.version = version.to_owned();
                crate::OnnxModel::from_file(&path, meta)
                    .map(ModelSource::Onnx)
                    .map_err(|source| RegistryError::Onnx { path, source })
            }
            #[allow(unreachable_patterns)]
            kind => Err(RegistryError::Unsupported { path, kind, feature: kind.feature() }),
        }
    }
}
