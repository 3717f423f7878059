//! `fresco registry`: list, publish, deploy and roll back model versions.

use std::io::Write;

use clap::Subcommand;
use fresco::registry::{ArtifactKind, Registry, RegistryError};
use fresco::{Client, MemorySink, ModelConfig};

use crate::{CliError, read_file};

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Every model (or one) with its versions; `*` marks the serving version, `-` the
    /// previous one.
    List {
        /// Only this model.
        model: Option<String>,
    },
    /// Store a model file as a new version: `.wasm`, `.onnx` (with --metadata),
    /// LightGBM `.txt` or XGBoost `.json`. The file is loaded first as a Client would
    /// load it (it compiles or loads, a module declares MODEL and VERSION, it scores a
    /// plain row); a refused file takes no version number.
    Publish {
        /// The model.
        model: String,
        /// The new version (versions are immutable).
        version: String,
        /// The artifact.
        file: std::path::PathBuf,
        /// For ONNX: the model's metadata JSON (inputs, outputs).
        #[arg(long)]
        metadata: Option<std::path::PathBuf>,
    },
    /// Serve VERSION: it is loaded and validated exactly as a Client would (loads, keeps
    /// the serving version's outputs, needs no input callers do not send, scores a smoke
    /// row) before the manifest changes. Clients watching the registry follow.
    Deploy {
        /// The model.
        model: String,
        /// The version to serve.
        version: String,
    },
    /// Serve the previous version again.
    Rollback {
        /// The model.
        model: String,
    },
}

pub fn run(root: &str, action: Action) -> Result<(), CliError> {
    let registry = Registry::at(root)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |source| CliError::Io { path: "<stdout>".into(), source };
    match action {
        Action::List { model } => {
            let models = match model {
                Some(m) => vec![m],
                None => registry.models()?,
            };
            writeln!(out, "model\tversion\tkind\tstate").map_err(io)?;
            // Every model is listed; an unreadable manifest is reported after the list
            // (and fails the command) rather than shown as "nothing serves".
            let mut unreadable = None;
            for model in models {
                let manifest = match registry.manifest(&model) {
                    Ok(manifest) => Some(manifest),
                    Err(RegistryError::NotDeployed { .. }) => None,
                    Err(e @ RegistryError::UnknownModel { .. }) => return Err(e.into()),
                    Err(e) => {
                        unreadable.get_or_insert(e);
                        None
                    }
                };
                for entry in registry.versions(&model)? {
                    let state = match &manifest {
                        Some(m) if m.serving == entry.version => "serving",
                        Some(m) if m.previous.as_deref() == Some(entry.version.as_str()) => "previous",
                        _ => "",
                    };
                    writeln!(out, "{model}\t{}\t{}\t{state}", entry.version, entry.kind).map_err(io)?;
                }
            }
            if let Some(e) = unreadable {
                return Err(e.into());
            }
        }
        Action::Publish { model, version, file, metadata } => {
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("wasm") => ArtifactKind::Wasm,
                Some("onnx") => ArtifactKind::Onnx,
                Some("txt") => ArtifactKind::LightGbm,
                Some("json") => ArtifactKind::XgBoost,
                _ => return Err(CliError::UnknownArtifact { path: file.display().to_string() }),
            };
            let meta = match (&metadata, kind) {
                (Some(path), ArtifactKind::Onnx) => Some(
                    serde_json::from_slice(&read_file(path)?)
                        .map_err(|source| CliError::Json { path: path.display().to_string(), source })?,
                ),
                (None, ArtifactKind::Onnx) => return Err(CliError::OnnxMetadata),
                _ => None,
            };
            let entry = registry.publish(&model, &version, kind, &read_file(&file)?, meta.as_ref())?;
            writeln!(out, "published {model} {version} ({}) at {}", entry.kind, entry.path.display()).map_err(io)?;
        }
        Action::Deploy { model, version } => {
            let from = match registry.manifest(&model) {
                Ok(manifest) => {
                    // Validate against the serving version, as a running Client will.
                    let client = Client::builder()
                        .model(ModelConfig::from_registry(&registry, &model))
                        .log_to(MemorySink::new())
                        .build()?;
                    client.deploy(&model, &version)?;
                    manifest.serving
                }
                Err(RegistryError::NotDeployed { .. }) => {
                    // The first version: it must load and be the model and version its
                    // directory names (what a Client checks when it starts from it).
                    let source = registry.source(&model, &version)?;
                    let client = Client::builder().model(ModelConfig::new(source)).log_to(MemorySink::new()).build()?;
                    let declared = client.models().first().map(|m| (*m).to_owned()).unwrap_or_default();
                    let declared_version = client.serving_version(&declared)?;
                    if declared != model || declared_version != version {
                        return Err(CliError::Mislabelled { model, version, declared, declared_version });
                    }
                    "nothing".into()
                }
                Err(e) => return Err(e.into()),
            };
            registry.deploy(&model, &version)?;
            writeln!(out, "{model}: serving {version} (was {from})").map_err(io)?;
        }
        Action::Rollback { model } => {
            let manifest = registry.rollback(&model)?;
            let from = manifest.previous.unwrap_or_default();
            writeln!(out, "{model}: serving {} (was {from})", manifest.serving).map_err(io)?;
        }
    }
    Ok(())
}
