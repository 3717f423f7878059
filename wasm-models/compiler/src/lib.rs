//! Compiles gradient-boosted tree models to fresco model modules.
//!
//! A LightGBM text model or an XGBoost JSON model goes in; one import-free WebAssembly
//! module implementing ABI v1 comes out, with `fresco.model` metadata naming the inputs
//! after the model's features and the outputs after its objective, and recording the
//! source format and SHA-256. Predictions equal the training library's: the module
//! follows the library's comparison, missing-value, categorical, precision and transform
//! rules exactly (see `fresco-trees`).
//!
//! Several boosters over the same inputs — say quantile models for q10, q50 and q90 —
//! pack into one module with one output each.
//!
//! ```
//! use fresco_compiler::{Compiler, Format};
//!
//! let q50 = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
//!     max_feature_idx=0\nobjective=quantile\nfeature_names=distance_km\nfeature_infos=[0:9]\n\n\
//!     Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=2.5\ndecision_type=2\n\
//!     left_child=-1\nright_child=-2\nleaf_value=6 11\nshrinkage=1\n\nend of trees\n\n\
//!     parameters:\n[alpha: 0.5]\nend of parameters\n";
//! let wasm = Compiler::new("eta", "1").add_source(q50, Format::LightGbm)?.compile()?;
//!
//! let engine = fresco_runtime::Engine::new().unwrap();
//! let model = fresco_runtime::Model::from_bytes(&engine, &wasm).unwrap();
//! assert_eq!(model.metadata().outputs, ["q50"]);
//! assert_eq!(model.predict(&[1.0, 4.0]).unwrap(), [6.0, 11.0]);
//! # Ok::<(), fresco_compiler::CompileError>(())
//! ```

mod branches;
mod codegen;
pub mod layout;
mod ranks;
mod splits;

pub use codegen::{BRANCHES_MAX_NODES, Layout};

use std::path::Path;

use fresco_abi::{
    InputSpec, InputType, IntervalSpec, MissingPolicy, ModelKind, ModelMetadata, SourceInfo, StatsKind, TrainingStats,
};
use fresco_trees::{Ensemble, FeatureKind, ParseError};
use sha2::{Digest, Sha256};

pub use fresco_trees;

/// Model file formats the compiler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LightGBM text (`Booster.save_model("model.txt")`).
    LightGbm,
    /// XGBoost JSON (`Booster.save_model("model.json")`).
    XgBoost,
}

impl Format {
    /// Guesses the format from the file's first bytes: `{` is XGBoost JSON, `tree` is
    /// LightGBM text.
    ///
    /// ```
    /// use fresco_compiler::Format;
    /// assert_eq!(Format::detect("tree\nversion=v4\n"), Some(Format::LightGbm));
    /// assert_eq!(Format::detect("  {\"learner\": {}}"), Some(Format::XgBoost));
    /// assert_eq!(Format::detect("PK\x03\x04"), None);
    /// ```
    pub fn detect(text: &str) -> Option<Format> {
        let start = text.trim_start();
        if start.starts_with('{') {
            Some(Format::XgBoost)
        } else if start.starts_with("tree") {
            Some(Format::LightGbm)
        } else {
            None
        }
    }

    /// `lightgbm` or `xgboost`.
    pub fn name(self) -> &'static str {
        match self {
            Format::LightGbm => "lightgbm",
            Format::XgBoost => "xgboost",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "lightgbm" | "lgb" | "lgbm" => Ok(Format::LightGbm),
            "xgboost" | "xgb" => Ok(Format::XgBoost),
            other => Err(format!("unknown model format `{other}` (expected lightgbm or xgboost)")),
        }
    }
}

/// Why compilation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// A model file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A model's format could not be recognised.
    #[error("{origin}: not a LightGBM text model or an XGBoost JSON model; pass the format explicitly")]
    UnknownFormat {
        /// The file or `<source>`.
        origin: String,
    },
    /// A model file was refused by its parser.
    #[error("{origin}: {source}")]
    Parse {
        /// The file or `<source>`.
        origin: String,
        /// Why.
        #[source]
        source: ParseError,
    },
    /// Packed models disagree about their inputs or name the same output twice.
    #[error("model {index} ({origin}) cannot be packed: {reason}")]
    Packing {
        /// Position of the offending model.
        index: usize,
        /// The file or `<source>`.
        origin: String,
        /// What differs.
        reason: String,
    },
    /// Nothing to compile.
    #[error("no models to compile")]
    Empty,
    /// The metadata given is invalid.
    #[error(transparent)]
    Metadata(#[from] fresco_abi::MetadataError),
    /// Training data could not be profiled.
    #[error("training data: {reason}")]
    TrainingData {
        /// What was wrong.
        reason: String,
    },
    /// The model is too large for a 32-bit WebAssembly memory.
    #[error("cannot generate the module: {0}")]
    TooLarge(String),
    /// A missing-value policy names an input the model does not have.
    #[error("a missing-value policy names input `{input}`, which the model does not have")]
    UnknownInput {
        /// The name given.
        input: String,
    },
}

#[derive(Clone)]
struct Part {
    ensemble: Ensemble,
    origin: String,
    sha256: [u8; 32],
}

/// Progress of a compilation, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Trees laid out so far.
    pub trees_done: usize,
    /// Trees in all.
    pub trees_total: usize,
}

/// Builds one module from one or more tree models.
#[derive(Clone)]
pub struct Compiler {
    name: String,
    version: String,
    parts: Vec<Part>,
    training_stats: Option<TrainingStats>,
    interval: Option<IntervalSpec>,
    layout: Option<Layout>,
    /// Missing-value policies by input name; inputs not named pass NaN to the trees.
    missing: Vec<(String, MissingPolicy)>,
}

impl Compiler {
    /// A compiler for a model called `name`, version `version`.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Compiler {
            name: name.into(),
            version: version.into(),
            parts: Vec::new(),
            training_stats: None,
            interval: None,
            layout: None,
            missing: Vec::new(),
        }
    }

    /// Adds a model file; `format` is detected when `None`.
    pub fn add_file(mut self, path: impl AsRef<Path>, format: Option<Format>) -> Result<Self, CompileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| CompileError::Io { path: origin.clone(), source })?;
        self.push(&text, format, origin)?;
        Ok(self)
    }

    /// Adds a model from its text.
    pub fn add_source(mut self, text: &str, format: Format) -> Result<Self, CompileError> {
        self.push(text, Some(format), "<source>".into())?;
        Ok(self)
    }

    /// Adds an ensemble built in code or parsed elsewhere. It is checked as the parsers'
    /// output is ([`Ensemble::validate`]): every backend relies on those invariants.
    pub fn add_ensemble(mut self, ensemble: Ensemble) -> Result<Self, CompileError> {
        let origin = "<ensemble>".to_string();
        ensemble.validate().map_err(|source| CompileError::Parse { origin: origin.clone(), source })?;
        self.parts.push(Part { ensemble, origin, sha256: [0; 32] });
        Ok(self)
    }

    /// Renames the outputs of the most recently added model.
    pub fn rename_outputs(mut self, names: Vec<String>) -> Result<Self, CompileError> {
        let index = self.parts.len().saturating_sub(1);
        let part = self.parts.last_mut().ok_or(CompileError::Empty)?;
        if names.len() != part.ensemble.outputs.len() {
            return Err(CompileError::Packing {
                index,
                origin: part.origin.clone(),
                reason: format!("{} names for {} outputs", names.len(), part.ensemble.outputs.len()),
            });
        }
        part.ensemble.outputs = names;
        Ok(self)
    }

    /// Training-time distributions to record in the metadata, for drift monitoring.
    pub fn training_stats(mut self, stats: TrainingStats) -> Self {
        self.training_stats = Some(stats);
        self
    }

    /// Profiles training data and records it as the metadata's `training_stats`: every
    /// input, and every output as this module will score it (the native evaluator, which
    /// the module reproduces bit for bit). `rows` is row-major, the inputs in the
    /// model's order, NaN for missing; `bins` quantile bins per numeric column.
    ///
    /// Refused: rows that are not whole rows of the model's inputs, and `bins` outside
    /// 1 to [`fresco_drift::MAX_BINS`].
    ///
    /// ```
    /// use fresco_compiler::{Compiler, Format};
    ///
    /// # let q50 = "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n\
    /// #     max_feature_idx=0\nobjective=quantile\nfeature_names=distance_km\nfeature_infos=[0:9]\n\n\
    /// #     Tree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=2.5\ndecision_type=2\n\
    /// #     left_child=-1\nright_child=-2\nleaf_value=6 11\nshrinkage=1\n\nend of trees\n\n\
    /// #     parameters:\n[alpha: 0.5]\nend of parameters\n";
    /// // One input, `distance_km`: 0.0, 0.5, ..., 4.5, and one missing value.
    /// let mut rows: Vec<f64> = (0..10).map(|i| f64::from(i) / 2.0).collect();
    /// rows.push(f64::NAN);
    /// let compiler = Compiler::new("eta", "1").add_source(q50, Format::LightGbm)?.training_data(&rows, 4)?;
    /// let stats = compiler.metadata()?.training_stats.unwrap();
    /// let distance = &stats.inputs["distance_km"];
    /// assert_eq!((distance.count, distance.min, distance.max), (11, Some(0.0), Some(4.5)));
    /// // The output as the model scores it: 6 below 2.5 km, 11 above (and for missing).
    /// assert_eq!(stats.outputs["q50"].categories.len(), 2);
    /// # Ok::<(), fresco_compiler::CompileError>(())
    /// ```
    pub fn training_data(mut self, rows: &[f64], bins: usize) -> Result<Self, CompileError> {
        if !(1..=fresco_drift::MAX_BINS).contains(&bins) {
            return Err(CompileError::TrainingData {
                reason: format!("{bins} bins; the statistics take 1 to {}", fresco_drift::MAX_BINS),
            });
        }
        let meta = self.metadata()?;
        let n_in = meta.inputs.len();
        if n_in == 0 || rows.is_empty() || !rows.len().is_multiple_of(n_in) {
            return Err(CompileError::TrainingData {
                reason: format!("{} values are not whole rows of {n_in} inputs", rows.len()),
            });
        }
        let n_rows = rows.len() / n_in;
        let _span = tracing::info_span!("fresco.compile.profile", model = %self.name, rows = n_rows).entered();
        let mut stats = TrainingStats::default();
        let mut column = vec![0.0; n_rows];
        for (i, input) in meta.inputs.iter().enumerate() {
            for (v, row) in column.iter_mut().zip(rows.chunks_exact(n_in)) {
                *v = row[i];
            }
            let kind = match input.ty {
                InputType::Categorical | InputType::Bool => StatsKind::Categorical,
                _ => StatsKind::Numeric,
            };
            stats.inputs.insert(input.name.clone(), fresco_drift::profile(&column, kind, bins));
        }
        for part in &self.parts {
            let scores = part.ensemble.predict(rows);
            let n_out = part.ensemble.n_outputs();
            for (j, name) in part.ensemble.outputs.iter().enumerate() {
                for (v, out) in column.iter_mut().zip(scores.chunks_exact(n_out)) {
                    *v = out[j];
                }
                stats.outputs.insert(name.clone(), fresco_drift::profile(&column, StatsKind::Numeric, bins));
            }
        }
        self.training_stats = Some(stats);
        Ok(self)
    }

    /// Forces a code layout instead of choosing by model size ([`Layout::for_size`]).
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = Some(layout);
        self
    }

    /// Declares what a host does when `input` is missing (every input passes NaN to the
    /// trees unless told otherwise): substitute a default, or refuse the row. The
    /// policy is recorded in the metadata, so every host (Rust, Python, the browser)
    /// applies it.
    ///
    /// ```
    /// use fresco_abi::MissingPolicy;
    /// use fresco_compiler::{Compiler, Format};
    ///
    /// # let text = fresco_test_models::oracle::cases().into_iter().find(|c| c.name == "lgb_regression").unwrap().model_text();
    /// let compiler = Compiler::new("eta", "1")
    ///     .add_source(&text, Format::LightGbm)?
    ///     .missing("Column_0", MissingPolicy::Default(0.0))
    ///     .missing("Column_1", MissingPolicy::Error);
    /// let meta = compiler.metadata()?;
    /// assert_eq!(meta.inputs[1].missing, MissingPolicy::Error);
    /// assert!(compiler.missing("no_such_input", MissingPolicy::Error).metadata().is_err());
    /// # Ok::<(), fresco_compiler::CompileError>(())
    /// ```
    pub fn missing(mut self, input: impl Into<String>, policy: MissingPolicy) -> Self {
        let input = input.into();
        self.missing.retain(|(name, _)| *name != input);
        self.missing.push((input, policy));
        self
    }

    /// A calibrated interval over the outputs, recorded in the metadata.
    pub fn interval(mut self, interval: IntervalSpec) -> Self {
        self.interval = Some(interval);
        self
    }

    fn push(&mut self, text: &str, format: Option<Format>, origin: String) -> Result<(), CompileError> {
        let format = match format.or_else(|| Format::detect(text)) {
            Some(f) => f,
            None => return Err(CompileError::UnknownFormat { origin }),
        };
        let _span = tracing::info_span!("fresco.compile.parse", origin = %origin, format = format.name()).entered();
        let ensemble = match format {
            Format::LightGbm => fresco_trees::lightgbm::parse(text),
            Format::XgBoost => fresco_trees::xgboost::parse(text),
        }
        .map_err(|source| CompileError::Parse { origin: origin.clone(), source })?;
        self.parts.push(Part { ensemble, origin, sha256: Sha256::digest(text.as_bytes()).into() });
        Ok(())
    }

    /// The metadata the module will carry.
    pub fn metadata(&self) -> Result<ModelMetadata, CompileError> {
        let first = self.parts.first().ok_or(CompileError::Empty)?;
        let mut outputs: Vec<String> = Vec::new();
        for (index, part) in self.parts.iter().enumerate() {
            let (a, b) = (&first.ensemble.features, &part.ensemble.features);
            if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.name != y.name) {
                return Err(CompileError::Packing {
                    index,
                    origin: part.origin.clone(),
                    reason: format!("its {} inputs differ from the first model's {}", b.len(), a.len()),
                });
            }
            for name in &part.ensemble.outputs {
                if outputs.contains(name) {
                    return Err(CompileError::Packing {
                        index,
                        origin: part.origin.clone(),
                        reason: format!("output `{name}` is already produced by an earlier model; rename it"),
                    });
                }
                outputs.push(name.clone());
            }
        }
        let inputs: Vec<InputSpec> = first
            .ensemble
            .features
            .iter()
            .map(|f| InputSpec {
                name: f.name.clone(),
                ty: if f.kind == FeatureKind::Categorical { InputType::Categorical } else { InputType::F64 },
                missing: self.missing.iter().find(|(name, _)| *name == f.name).map_or(MissingPolicy::Nan, |(_, p)| *p),
                categories: f.categories.clone(),
            })
            .collect();
        if let Some((input, _)) = self.missing.iter().find(|(name, _)| !inputs.iter().any(|i| i.name == *name)) {
            return Err(CompileError::UnknownInput { input: input.clone() });
        }
        let formats: Vec<&str> = self.parts.iter().map(|p| p.ensemble.source_format).collect();
        let format = if formats.iter().all(|f| *f == formats[0]) { formats[0].to_owned() } else { formats.join("+") };
        let sha256 = if self.parts.len() == 1 {
            hex::encode(first.sha256)
        } else {
            // Packed models: the hash of the sources' hashes, in order.
            let mut h = Sha256::new();
            for p in &self.parts {
                h.update(p.sha256);
            }
            hex::encode(h.finalize())
        };
        let meta = ModelMetadata {
            name: self.name.clone(),
            version: self.version.clone(),
            abi: fresco_abi::ABI_VERSION,
            kind: ModelKind::Gbdt,
            inputs,
            outputs,
            source: SourceInfo { format, sha256: Some(sha256) },
            training_stats: self.training_stats.clone(),
            interval: self.interval.clone(),
        };
        meta.validate()?;
        Ok(meta)
    }

    /// Generates the module.
    pub fn compile(&self) -> Result<Vec<u8>, CompileError> {
        self.compile_with_progress(|_| {})
    }

    /// Generates the module, reporting progress as trees are laid out.
    pub fn compile_with_progress(&self, mut progress: impl FnMut(Progress)) -> Result<Vec<u8>, CompileError> {
        let meta = self.metadata()?;
        let _span = tracing::info_span!("fresco.compile.generate", model = %self.name).entered();
        let ensembles: Vec<&Ensemble> = self.parts.iter().map(|p| &p.ensemble).collect();
        let trees_total = ensembles.iter().map(|e| e.trees.len()).sum();
        let nodes = ensembles.iter().map(|e| e.n_nodes()).sum();
        let layout = self.layout.unwrap_or(Layout::for_size(nodes));
        codegen::generate(&ensembles, &meta.to_json(), layout, |trees_done| {
            progress(Progress { trees_done, trees_total })
        })
        .map_err(CompileError::TooLarge)
    }

    /// The parsed ensembles, in the order added.
    pub fn ensembles(&self) -> impl Iterator<Item = &Ensemble> {
        self.parts.iter().map(|p| &p.ensemble)
    }
}
