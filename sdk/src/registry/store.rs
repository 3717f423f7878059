use std::path::PathBuf;

use fresco_abi::ModelMetadata;

use super::manifest::{self, InvalidName, MANIFEST, Manifest, ManifestError};
use super::storage::Storage;
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
    #[error("the registry at {location} has no model `{model}`")]
    UnknownModel {
        /// The registry's directory or URL.
        location: String,
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
    /// Another deploy or rollback changed the manifest between this one's read and its
    /// write; this one wrote nothing.
    #[error(
        "model `{model}`: another deploy changed the manifest while this one ran (it now serves `{serving}`); nothing was written: check it and run again"
    )]
    ManifestChanged {
        /// The model.
        model: String,
        /// What the manifest names now.
        serving: String,
    },
    /// The object store answered with an error or could not be reached.
    #[cfg(feature = "object-store")]
    #[error(transparent)]
    Store(Box<crate::bucket::BucketError>),
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

/// A LightGBM or XGBoost text model as a source of `version` of `model`.
#[cfg(feature = "trees")]
fn compile_trees(
    model: &str,
    version: &str,
    kind: ArtifactKind,
    text: &str,
) -> Result<ModelSource, fresco_compiler::CompileError> {
    let format = if kind == ArtifactKind::LightGbm {
        fresco_compiler::Format::LightGbm
    } else {
        fresco_compiler::Format::XgBoost
    };
    let compiler = fresco_compiler::Compiler::new(model, version).add_source(text, format)?;
    Ok(ModelSource::Trees(Box::new(compiler)))
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
            compile_trees(model, version, kind, text).map_err(|e| load_error(e.into()))?
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

/// A model registry: in a local directory, or under an object-store prefix shared by a
/// fleet (feature `object-store`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    storage: Storage,
}

const METADATA: &str = "metadata.json";

impl Registry {
    /// Opens (creating if needed) the registry in the directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| RegistryError::Io { path: root.clone(), source })?;
        Ok(Registry { storage: Storage::Local(root) })
    }

    /// Opens the registry under an object-store prefix (`s3://bucket/registry`,
    /// `gs://...`, `az://...`, `file:///dir`), credentials and endpoint from the
    /// environment ([`Bucket::open`](crate::bucket::Bucket::open)). Every replica of a
    /// fleet opens the same one; [`deploy`](Self::deploy) and
    /// [`rollback`](Self::rollback) change its manifest with a conditional write, so
    /// two deployers racing never overwrite each other: one wins, the other gets
    /// [`RegistryError::ManifestChanged`].
    #[cfg(feature = "object-store")]
    pub fn open_url(url: &str) -> Result<Self, RegistryError> {
        let bucket = crate::bucket::Bucket::open(url).map_err(|e| RegistryError::Store(Box::new(e)))?;
        Ok(Registry { storage: Storage::Bucket(bucket) })
    }

    /// [`open_url`](Self::open_url) for a URL (`scheme://...`), else [`open`](Self::open).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let registry = fresco::registry::Registry::at(&dir.path().display().to_string())?;
    /// assert!(registry.models()?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn at(location: &str) -> Result<Self, RegistryError> {
        #[cfg(feature = "object-store")]
        if crate::bucket::is_url(location) {
            return Self::open_url(location);
        }
        Self::open(location)
    }

    /// Where the registry is: its directory or URL.
    pub fn location(&self) -> String {
        self.storage.location("").display().to_string()
    }

    /// The models in the registry, sorted.
    pub fn models(&self) -> Result<Vec<String>, RegistryError> {
        let mut models: Vec<String> = self
            .storage
            .list("")?
            .iter()
            .filter_map(|key| key.split_once('/').map(|(model, _)| model.to_owned()))
            .filter(|model| check_name("model", model).is_ok())
            .collect();
        models.dedup();
        Ok(models)
    }

    fn model_keys(&self, model: &str) -> Result<Vec<String>, RegistryError> {
        check_name("model", model)?;
        self.storage.list(&format!("{model}/"))
    }

    /// The stored versions of `model`, oldest first (numeric versions in numeric order).
    /// A version appears once its artifact is stored whole.
    pub fn versions(&self, model: &str) -> Result<Vec<VersionEntry>, RegistryError> {
        let keys = self.model_keys(model)?;
        if keys.is_empty() {
            return Err(RegistryError::UnknownModel { location: self.location(), model: model.to_owned() });
        }
        let mut names: Vec<&str> = keys
            .iter()
            .filter_map(|key| {
                let mut parts = key.split('/').skip(1);
                let (version, file) = (parts.next()?, parts.next()?);
                let artifact = ArtifactKind::ALL.iter().any(|(_, name)| *name == file);
                (artifact && parts.next().is_none() && check_name("version", version).is_ok()).then_some(version)
            })
            .collect();
        names.dedup();
        let mut versions =
            names.into_iter().map(|version| self.entry(model, version, &keys)).collect::<Result<Vec<_>, _>>()?;
        versions.sort_by(|a, b| version_order(&a.version, &b.version));
        Ok(versions)
    }

    /// The stored version `version` of `model`.
    pub fn version(&self, model: &str, version: &str) -> Result<VersionEntry, RegistryError> {
        check_name("version", version)?;
        check_name("model", model)?;
        let keys = self.storage.list(&format!("{model}/{version}/"))?;
        if keys.is_empty() {
            return Err(RegistryError::UnknownVersion { model: model.to_owned(), version: version.to_owned() });
        }
        self.entry(model, version, &keys)
    }

    /// The entry of `version` among `keys` (the model's or the version's).
    fn entry(&self, model: &str, version: &str, keys: &[String]) -> Result<VersionEntry, RegistryError> {
        let dir = format!("{model}/{version}/");
        let found: Vec<_> =
            ArtifactKind::ALL.iter().filter(|(_, file)| keys.iter().any(|k| *k == format!("{dir}{file}"))).collect();
        match found.as_slice() {
            [(kind, file)] => Ok(VersionEntry {
                version: version.to_owned(),
                kind: *kind,
                path: self.storage.location(&format!("{dir}{file}")),
            }),
            [] => Err(RegistryError::Artifact {
                dir: self.storage.location(&dir),
                reason: "no model.wasm, model.onnx, model.txt (LightGBM) or model.json (XGBoost)".into(),
            }),
            several => Err(RegistryError::Artifact {
                dir: self.storage.location(&dir),
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
        self.read_manifest(model).map(|(manifest, _)| manifest)
    }

    /// The manifest and the tag a conditional replace of it checks.
    fn read_manifest(&self, model: &str) -> Result<(Manifest, Option<String>), RegistryError> {
        check_name("model", model)?;
        let key = format!("{model}/{MANIFEST}");
        let Some(read) = self.storage.read(&key)? else {
            return Err(if self.model_keys(model)?.is_empty() {
                RegistryError::UnknownModel { location: self.location(), model: model.to_owned() }
            } else {
                RegistryError::NotDeployed { model: model.to_owned() }
            });
        };
        let manifest = Manifest::from_json(&read.bytes)
            .map_err(|source| RegistryError::Manifest { path: self.storage.location(&key), source })?;
        Ok((manifest, read.tag))
    }

    /// Makes `version` the serving version of `model` (the one serving now becomes the
    /// previous one). Only the manifest changes: Clients watching the registry load and
    /// validate the version and swap to it; a Client refuses a version that fails.
    ///
    /// The manifest is replaced only if no one changed it since it was read here; if
    /// someone did, nothing is written and the answer is
    /// [`RegistryError::ManifestChanged`].
    pub fn deploy(&self, model: &str, version: &str) -> Result<Manifest, RegistryError> {
        self.version(model, version)?;
        let (previous, tag) = match self.read_manifest(model) {
            Ok((m, tag)) if m.serving == version => (m.previous, tag),
            Ok((m, tag)) => (Some(m.serving), tag),
            Err(RegistryError::NotDeployed { .. }) => (None, None),
            Err(e) => return Err(e),
        };
        let manifest = Manifest { serving: version.to_owned(), previous };
        self.write_manifest(model, &manifest, tag)?;
        Ok(manifest)
    }

    /// Serves the previous version again (and records the one rolled back from as the
    /// previous one, so a second rollback undoes the first). Replaced as
    /// [`deploy`](Self::deploy) replaces it.
    pub fn rollback(&self, model: &str) -> Result<Manifest, RegistryError> {
        let (current, tag) = self.read_manifest(model)?;
        let previous = current.previous.ok_or_else(|| RegistryError::NoPrevious { model: model.to_owned() })?;
        self.version(model, &previous)?;
        let manifest = Manifest { serving: previous, previous: Some(current.serving) };
        self.write_manifest(model, &manifest, tag)?;
        Ok(manifest)
    }

    fn write_manifest(&self, model: &str, manifest: &Manifest, read: Option<String>) -> Result<(), RegistryError> {
        let key = format!("{model}/{MANIFEST}");
        if self.storage.replace(&key, &manifest.to_json(), read.as_deref())? {
            return Ok(());
        }
        let serving = self.manifest(model).map_or_else(|e| format!("? ({e})"), |m| m.serving);
        Err(RegistryError::ManifestChanged { model: model.to_owned(), serving })
    }

    /// Stores `bytes` as the artifact of a new version (refusing to overwrite one).
    ///
    /// The artifact is loaded and checked first, as a Client would load it: it must
    /// load (a tree model compiles, an ONNX graph fits its metadata), a `.wasm` must
    /// declare this model and version, and it must score a plain row (each input's
    /// default, else 0) with finite outputs. A refused artifact takes no version number.
    /// The version appears whole: its artifact is written under a hidden name, then
    /// given its name only if no other publisher took it first (an object store's
    /// create-if-absent).
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
        check_name("model", model)?;
        let dir = format!("{model}/{version}/");
        let exists = || already_exists(self.storage.location(&dir));
        let is_artifact = |key: &String| ArtifactKind::ALL.iter().any(|(_, file)| *key == format!("{dir}{file}"));
        if self.storage.list(&dir)?.iter().any(is_artifact) {
            return Err(exists());
        }
        check_artifact(model, version, kind, bytes, onnx_metadata)?;
        if let Some(meta) = onnx_metadata {
            let json = serde_json::to_vec_pretty(meta)
                .map_err(|e| RegistryError::Artifact { dir: self.storage.location(&dir), reason: e.to_string() })?;
            let key = format!("{dir}{METADATA}");
            // Left by a publish that stopped before its artifact: fine if it is the same.
            if !self.storage.create(&key, &json)? && self.storage.read(&key)?.is_none_or(|r| r.bytes != json) {
                return Err(exists());
            }
        }
        // The artifact's name is the commit point: the first publisher to take it wins.
        if !self.storage.create(&format!("{dir}{}", kind.file_name()), bytes)? {
            return Err(exists());
        }
        self.version(model, version)
    }

    /// [`publish`](Self::publish) for a WebAssembly module.
    pub fn publish_wasm(&self, model: &str, version: &str, wasm: &[u8]) -> Result<VersionEntry, RegistryError> {
        self.publish(model, version, ArtifactKind::Wasm, wasm, None)
    }

    /// Where to load `version` of `model` from. Tree files are compiled here; a `.wasm`
    /// is read when the Client loads it (and its declared name and version checked).
    pub fn source(&self, model: &str, version: &str) -> Result<ModelSource, RegistryError> {
        let entry = self.version(model, version)?;
        let key = format!("{model}/{version}/{}", entry.kind.file_name());
        let read = |key: &str| {
            self.storage.read(key)?.map(|r| r.bytes).ok_or_else(|| RegistryError::Artifact {
                dir: self.storage.location(key),
                reason: "it disappeared while being read".into(),
            })
        };
        let path = entry.path.clone();
        match entry.kind {
            ArtifactKind::Wasm => Ok(ModelSource::WasmBytes(read(&key)?)),
            #[cfg(feature = "trees")]
            ArtifactKind::LightGbm | ArtifactKind::XgBoost => {
                let bytes = read(&key)?;
                let text = std::str::from_utf8(&bytes).map_err(|e| RegistryError::Artifact {
                    dir: path.clone(),
                    reason: format!("not a {} model: byte {} is not UTF-8 text", entry.kind, e.valid_up_to()),
                })?;
                compile_trees(model, version, entry.kind, text)
                    .map_err(|source| RegistryError::Compile { path, source })
            }
            #[cfg(feature = "onnx")]
            ArtifactKind::Onnx => {
                let meta_key = format!("{model}/{version}/{METADATA}");
                let mut meta: ModelMetadata =
                    serde_json::from_slice(&read(&meta_key)?).map_err(|e| RegistryError::Artifact {
                        dir: self.storage.location(&meta_key),
                        reason: format!("metadata.json is not valid model metadata: {e}"),
                    })?;
                meta.name = model.to_owned();
                meta.version = version.to_owned();
                crate::OnnxModel::from_bytes(&read(&key)?, meta)
                    .map(ModelSource::Onnx)
                    .map_err(|source| RegistryError::Onnx { path, source })
            }
            #[allow(unreachable_patterns)]
            kind => Err(RegistryError::Unsupported { path, kind, feature: kind.feature() }),
        }
    }
}
