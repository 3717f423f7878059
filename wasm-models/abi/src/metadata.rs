//! The `fresco.model` metadata document.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{ABI_VERSION, MAX_METADATA_BYTES};

/// Everything a host needs to know about a model besides its code.
///
/// ```
/// use fresco_abi::{InputSpec, ModelKind, ModelMetadata};
///
/// let meta = ModelMetadata::new("churn", "1", ModelKind::Linear)
///     .with_inputs(vec![InputSpec::f64("tenure_days"), InputSpec::f64("orders_30d")])
///     .with_outputs(vec!["p_churn".into()]);
/// meta.validate()?;
/// let json = meta.to_json();
/// assert_eq!(ModelMetadata::from_json(json.as_bytes())?, meta);
/// # Ok::<(), fresco_abi::MetadataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Model name, e.g. `eta`.
    pub name: String,
    /// Model version, free-form (`3`, `2026-11-27`, a git hash).
    pub version: String,
    /// ABI version the module implements; must equal `fresco_abi_version()`.
    pub abi: i32,
    /// What kind of model this is.
    pub kind: ModelKind,
    /// Inputs in the order the model reads them from each row.
    pub inputs: Vec<InputSpec>,
    /// Output names in the order the model writes them for each row.
    pub outputs: Vec<String>,
    /// Where the module came from.
    pub source: SourceInfo,
    /// Distribution of inputs and outputs on the training data, for drift monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_stats: Option<TrainingStats>,
    /// How to turn outputs into a calibrated prediction interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<IntervalSpec>,
}

/// The family a model belongs to. Informational: hosts score every kind the same way.
///
/// Unknown kinds round-trip as [`ModelKind::Other`] so that newer compilers do not break
/// older hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ModelKind {
    /// Gradient-boosted (or random-forest) tree ensemble.
    Gbdt,
    /// Linear or generalized linear model.
    Linear,
    /// Hand-written model (e.g. with `fresco-guest`).
    Custom,
    /// Any other kind, by name.
    Other(String),
}

impl From<String> for ModelKind {
    fn from(s: String) -> Self {
        match s.as_str() {
            "gbdt" => ModelKind::Gbdt,
            "linear" => ModelKind::Linear,
            "custom" => ModelKind::Custom,
            _ => ModelKind::Other(s),
        }
    }
}

impl From<ModelKind> for String {
    fn from(k: ModelKind) -> Self {
        match k {
            ModelKind::Gbdt => "gbdt".into(),
            ModelKind::Linear => "linear".into(),
            ModelKind::Custom => "custom".into(),
            ModelKind::Other(s) => s,
        }
    }
}

/// One model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Feature name, unique within the model.
    pub name: String,
    /// The value type the model was trained on. All values travel as `f64`.
    #[serde(rename = "type")]
    pub ty: InputType,
    /// What the model does with a missing value.
    #[serde(default)]
    pub missing: MissingPolicy,
    /// For an input trained from a category column (pandas `category`): the category
    /// names in code order, so that value `k` stands for `categories[k]`. Hosts that take
    /// names map each to its code, and a name not listed to a missing value, as
    /// LightGBM does. Absent for other inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
}

impl InputSpec {
    /// A floating-point input whose missing values reach the model as NaN.
    ///
    /// ```
    /// let spec = fresco_abi::InputSpec::f64("distance_km");
    /// assert_eq!(spec.missing, fresco_abi::MissingPolicy::Nan);
    /// ```
    pub fn f64(name: impl Into<String>) -> Self {
        InputSpec { name: name.into(), ty: InputType::F64, missing: MissingPolicy::Nan, categories: None }
    }
}

/// The type of an input as declared by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// 64-bit float.
    F64,
    /// 32-bit float (values are widened to `f64` on the wire).
    F32,
    /// Signed integer, exactly representable as `f64` (|v| ≤ 2^53).
    I64,
    /// Boolean, 0.0 or 1.0.
    Bool,
    /// Category code: a non-negative integer.
    Categorical,
}

/// What happens when an input value is missing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Pass NaN to the model, which handles it (trees route it by their default branch).
    #[default]
    Nan,
    /// Replace it with this value before scoring.
    Default(f64),
    /// Refuse to score: the caller gets an error naming the feature.
    Error,
}

/// Provenance of the module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Format of what was compiled: `lightgbm`, `xgboost`, `rust`, ...
    pub format: String,
    /// Hex SHA-256 of the source file, when there was one.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Per-feature and per-output distributions captured at training time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingStats {
    /// By input name.
    #[serde(default)]
    pub inputs: BTreeMap<String, DistributionStats>,
    /// By output name.
    #[serde(default)]
    pub outputs: BTreeMap<String, DistributionStats>,
}

/// What one input or output looked like on the training data: the reference that live
/// traffic is compared with (see `fresco-drift`).
///
/// Numeric columns carry quantile bins (`bin_edges`, `counts`), their range and moments;
/// categorical ones carry the frequency of each category code. Both carry a reference
/// `sample` for the tests that need raw values (Kolmogorov–Smirnov, Wasserstein).
/// Documents written before these fields existed read with them empty.
///
/// ```
/// use fresco_abi::{DistributionStats, StatsKind};
///
/// let stats: DistributionStats = serde_json::from_str(
///     r#"{"kind": "numeric", "count": 4, "bin_edges": [1.5], "counts": [2, 2], "missing_rate": 0.0,
///         "min": 1.0, "max": 2.0, "mean": 1.5, "std": 0.5, "distinct": 2, "sample": [1, 1, 2, 2]}"#,
/// ).unwrap();
/// assert_eq!(stats.kind, StatsKind::Numeric);
/// assert_eq!(stats.bin_of(1.7), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DistributionStats {
    /// Numeric or categorical.
    #[serde(default)]
    pub kind: StatsKind,
    /// Rows seen, missing ones included.
    #[serde(default)]
    pub count: u64,
    /// Ascending bin edges; `counts` has one more entry than `bin_edges`
    /// (below the first edge, between edges, above the last). A value equal to an
    /// edge falls in the bin above it.
    pub bin_edges: Vec<f64>,
    /// Non-missing rows per bin.
    pub counts: Vec<u64>,
    /// Fraction of rows with a missing value, in `[0, 1]`.
    pub missing_rate: f64,
    /// Smallest non-missing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest non-missing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Mean of the non-missing values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Population standard deviation of the non-missing values (`numpy.std`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Distinct non-missing values (counted up to a cap; see `fresco-drift`).
    #[serde(default)]
    pub distinct: u64,
    /// Categorical columns: rows per category code (the code in decimal).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, u64>,
    /// Reference values, ascending: every non-missing value when there are few, else
    /// evenly spaced order statistics of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<f64>,
}

/// How a column's distribution is described and tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatsKind {
    /// Ordered values: quantile bins, range, moments.
    #[default]
    Numeric,
    /// Category codes (and booleans): frequencies.
    Categorical,
}

impl DistributionStats {
    /// The bin `value` falls in: `0` below the first edge, `bin_edges.len()` at or
    /// above the last. NaN has no bin (it is missing); for it this returns `0`.
    pub fn bin_of(&self, value: f64) -> usize {
        self.bin_edges.partition_point(|edge| *edge <= value)
    }

    /// Whether `value` lies below the training minimum or above its maximum.
    pub fn outside_range(&self, value: f64) -> bool {
        self.min.is_some_and(|m| value < m) || self.max.is_some_and(|m| value > m)
    }

    /// Non-missing rows: the sum of `counts`.
    pub fn present(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, c| a.saturating_add(*c))
    }
}

/// How to turn quantile outputs into a calibrated interval (conformalized quantile
/// regression: the interval is `[lower - lower_offset, upper + upper_offset]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalSpec {
    /// Nominal coverage, e.g. 0.8.
    pub coverage: f64,
    /// Output holding the lower quantile.
    pub lower: String,
    /// Output holding the point estimate, if any.
    #[serde(default)]
    pub mid: Option<String>,
    /// Output holding the upper quantile.
    pub upper: String,
    /// Conformal offset subtracted from the lower bound.
    #[serde(default)]
    pub lower_offset: f64,
    /// Conformal offset added to the upper bound.
    #[serde(default)]
    pub upper_offset: f64,
    /// Offsets per segment (Mondrian conformal calibration). Absent in older specs,
    /// where `lower_offset` / `upper_offset` apply to every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<SegmentOffsets>,
}

/// Conformal offsets calibrated per segment of the inputs (Mondrian conformal
/// prediction), so that the interval covers as promised within each segment (storms,
/// rush hour), not only on average.
///
/// Each [`SegmentFeature`] cuts one input into bins; a row's segment is the tuple of its
/// bins, one per feature, in the order declared. A [`SegmentCell`] holds the offsets
/// calibrated on the rows of one segment. A segment with fewer than `min_count`
/// calibration rows gets no cell: a handful of rows would give a noisy offset. Rows of
/// such segments take the spec's own `lower_offset` / `upper_offset`, which a
/// segmented spec calibrates on exactly those rows pooled together (so the pooled
/// segments form one more Mondrian category), or on all rows when even the pool is
/// smaller than `min_count`.
///
/// ```
/// use fresco_abi::{SegmentCell, SegmentFeature, SegmentOffsets};
///
/// let segments = SegmentOffsets {
///     features: vec![SegmentFeature { input: "weather".into(), edges: vec![0.5, 1.5] }],
///     min_count: 400,
///     cells: vec![SegmentCell { bins: vec![2], count: 1204, lower_offset: 1.5, upper_offset: 1.5 }],
/// };
/// assert_eq!(SegmentOffsets::bin(&segments.features[0].edges, 2.0), 2);
/// assert_eq!(SegmentOffsets::bin(&segments.features[0].edges, 0.0), 0);
/// assert_eq!(SegmentOffsets::bin(&segments.features[0].edges, f64::NAN), 3); // missing
/// assert!(segments.check_values().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentOffsets {
    /// The inputs that define segments.
    pub features: Vec<SegmentFeature>,
    /// Calibration rows a segment needed to get its own offsets.
    pub min_count: u64,
    /// The calibrated segments.
    pub cells: Vec<SegmentCell>,
}

/// One input cut into bins by ascending edges: bin `k` holds values `v` with
/// `edges[k-1] <= v < edges[k]`; bin `edges.len() + 1` holds missing values (NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentFeature {
    /// The model input.
    pub input: String,
    /// Strictly ascending, finite bin edges.
    pub edges: Vec<f64>,
}

impl SegmentFeature {
    /// Checks the edges: finite, strictly ascending, at most 65,535 of them.
    pub fn check_values(&self) -> Result<(), MetadataError> {
        if self.edges.len() > u16::MAX as usize {
            return Err(interval_error(alloc::format!(
                "segment input `{}` has {} edges",
                self.input,
                self.edges.len()
            )));
        }
        if self.edges.iter().any(|e| !e.is_finite()) || self.edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(interval_error(alloc::format!(
                "segment input `{}`: edges must be finite and strictly ascending",
                self.input
            )));
        }
        Ok(())
    }
}

/// The offsets of one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentCell {
    /// The segment: one bin per feature of [`SegmentOffsets::features`].
    pub bins: Vec<u32>,
    /// Calibration rows in the segment.
    pub count: u64,
    /// Offset subtracted from the lower bound in this segment.
    pub lower_offset: f64,
    /// Offset added to the upper bound in this segment.
    pub upper_offset: f64,
}

/// At most this many segment features (a segment is a short tuple).
pub const MAX_SEGMENT_FEATURES: usize = 8;
/// At most this many calibrated segments.
pub const MAX_SEGMENT_CELLS: usize = 65_536;

impl SegmentOffsets {
    /// The bin of `value` under `edges`: the number of edges at or below it, or
    /// `edges.len() + 1` for NaN (missing). Hosts must use exactly this rule.
    pub fn bin(edges: &[f64], value: f64) -> u32 {
        let bin = if value.is_nan() { edges.len() + 1 } else { edges.partition_point(|&e| e <= value) };
        // Edges are capped by validation far below u32::MAX.
        u32::try_from(bin).unwrap_or(u32::MAX)
    }

    /// Checks everything that does not depend on the model: edges strictly ascending
    /// and finite, cells within the features' bins, no cell twice, finite offsets.
    pub fn check_values(&self) -> Result<(), MetadataError> {
        if self.features.is_empty() || self.features.len() > MAX_SEGMENT_FEATURES {
            return Err(interval_error(alloc::format!(
                "segments need 1 to {MAX_SEGMENT_FEATURES} features, got {}",
                self.features.len()
            )));
        }
        if self.cells.len() > MAX_SEGMENT_CELLS {
            return Err(interval_error(alloc::format!(
                "{} segment cells, more than {MAX_SEGMENT_CELLS}",
                self.cells.len()
            )));
        }
        for f in &self.features {
            f.check_values()?;
        }
        if let Some(dup) = first_duplicate(self.features.iter().map(|f| f.input.as_str())) {
            return Err(interval_error(alloc::format!("segment input `{dup}` is declared twice")));
        }
        let mut seen: Vec<&[u32]> = Vec::with_capacity(self.cells.len());
        for cell in &self.cells {
            if cell.bins.len() != self.features.len() {
                return Err(interval_error(alloc::format!(
                    "segment {:?} must name {} bins, one per feature",
                    cell.bins,
                    self.features.len()
                )));
            }
            for (f, &bin) in self.features.iter().zip(&cell.bins) {
                if bin as usize > f.edges.len() + 1 {
                    return Err(interval_error(alloc::format!(
                        "segment {:?}: input `{}` has bins 0..={}",
                        cell.bins,
                        f.input,
                        f.edges.len() + 1
                    )));
                }
            }
            if !cell.lower_offset.is_finite() || !cell.upper_offset.is_finite() {
                return Err(interval_error(alloc::format!("segment {:?}: offsets must be finite", cell.bins)));
            }
            if cell.count < self.min_count {
                return Err(interval_error(alloc::format!(
                    "segment {:?} was calibrated on {} rows, fewer than min_count {}",
                    cell.bins,
                    cell.count,
                    self.min_count
                )));
            }
            seen.push(&cell.bins);
        }
        seen.sort_unstable();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(interval_error(alloc::format!("segment {:?} is declared twice", w[0])));
        }
        Ok(())
    }
}

impl IntervalSpec {
    /// Checks the numbers: coverage in `(0, 1)`, finite offsets. (Whether the named
    /// outputs exist depends on the model; [`ModelMetadata::validate`] checks that too.)
    ///
    /// ```
    /// use fresco_abi::IntervalSpec;
    /// let mut spec = IntervalSpec {
    ///     coverage: 0.8, lower: "q10".into(), mid: None, upper: "q90".into(),
    ///     lower_offset: 0.5, upper_offset: 0.5, segments: None,
    /// };
    /// assert!(spec.check_values().is_ok());
    /// spec.coverage = 1.0;
    /// assert!(spec.check_values().is_err());
    /// ```
    pub fn check_values(&self) -> Result<(), MetadataError> {
        if !(self.coverage > 0.0 && self.coverage < 1.0) {
            return Err(interval_error(alloc::format!("coverage {} is not in (0, 1)", self.coverage)));
        }
        if !self.lower_offset.is_finite() || !self.upper_offset.is_finite() {
            return Err(interval_error("offsets must be finite".into()));
        }
        match &self.segments {
            Some(segments) => segments.check_values(),
            None => Ok(()),
        }
    }
}

/// An unusable value in the `interval` field.
fn interval_error(reason: String) -> MetadataError {
    MetadataError::Invalid { field: "interval", reason }
}

/// Why a metadata document was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetadataError {
    /// The section is larger than [`MAX_METADATA_BYTES`].
    TooLarge {
        /// Size of the section in bytes.
        bytes: usize,
    },
    /// The section is not valid JSON of the expected shape.
    Malformed {
        /// The parser's explanation, with line and column.
        reason: String,
    },
    /// The `abi` field names a version this crate does not implement.
    UnsupportedAbi {
        /// The declared version.
        declared: i32,
    },
    /// A field has an unusable value.
    Invalid {
        /// The field, e.g. `outputs`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::TooLarge { bytes } => {
                write!(f, "metadata section is {bytes} bytes, more than the {MAX_METADATA_BYTES}-byte limit")
            }
            MetadataError::Malformed { reason } => write!(f, "metadata is not valid: {reason}"),
            MetadataError::UnsupportedAbi { declared } => {
                write!(f, "metadata declares ABI version {declared}, this host implements version {ABI_VERSION}")
            }
            MetadataError::Invalid { field, reason } => {
                write!(f, "metadata field `{field}` is invalid: {reason}")
            }
        }
    }
}

impl core::error::Error for MetadataError {}

impl ModelMetadata {
    /// A metadata document with no inputs or outputs yet, source format `rust`.
    pub fn new(name: impl Into<String>, version: impl Into<String>, kind: ModelKind) -> Self {
        ModelMetadata {
            name: name.into(),
            version: version.into(),
            abi: ABI_VERSION,
            kind,
            inputs: Vec::new(),
            outputs: Vec::new(),
            source: SourceInfo { format: "rust".into(), sha256: None },
            training_stats: None,
            interval: None,
        }
    }

    /// Replaces the inputs.
    pub fn with_inputs(mut self, inputs: Vec<InputSpec>) -> Self {
        self.inputs = inputs;
        self
    }

    /// Replaces the outputs.
    pub fn with_outputs(mut self, outputs: Vec<String>) -> Self {
        self.outputs = outputs;
        self
    }

    /// Parses and validates a metadata section.
    ///
    /// ```
    /// let err = fresco_abi::ModelMetadata::from_json(b"{not json").unwrap_err();
    /// assert!(matches!(err, fresco_abi::MetadataError::Malformed { .. }));
    /// ```
    pub fn from_json(bytes: &[u8]) -> Result<Self, MetadataError> {
        if bytes.len() > MAX_METADATA_BYTES {
            return Err(MetadataError::TooLarge { bytes: bytes.len() });
        }
        let meta: ModelMetadata =
            serde_json::from_slice(bytes).map_err(|e| MetadataError::Malformed { reason: alloc::format!("{e}") })?;
        meta.validate()?;
        Ok(meta)
    }

    /// Serializes to compact JSON, the form stored in the custom section.
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the rules a host enforces: supported ABI, a name, at least one output,
    /// unique input and output names, a well-formed interval and statistics.
    pub fn validate(&self) -> Result<(), MetadataError> {
        if self.abi != ABI_VERSION {
            return Err(MetadataError::UnsupportedAbi { declared: self.abi });
        }
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        if self.outputs.is_empty() {
            return Err(invalid("outputs", "a model must declare at least one output".into()));
        }
        if let Some(dup) = first_duplicate(self.inputs.iter().map(|i| i.name.as_str())) {
            return Err(invalid("inputs", alloc::format!("input `{dup}` is declared twice")));
        }
        if let Some(dup) = first_duplicate(self.outputs.iter().map(String::as_str)) {
            return Err(invalid("outputs", alloc::format!("output `{dup}` is declared twice")));
        }
        for input in &self.inputs {
            if input.name.is_empty() {
                return Err(invalid("inputs", "an input has an empty name".into()));
            }
            if let MissingPolicy::Default(v) = input.missing
                && !v.is_finite()
            {
                return Err(invalid("inputs", alloc::format!("input `{}` has a non-finite default", input.name)));
            }
        }
        if let Some(interval) = &self.interval {
            self.validate_interval(interval)?;
        }
        if let Some(stats) = &self.training_stats {
            for (name, s) in stats.inputs.iter().chain(stats.outputs.iter()) {
                if s.counts.len() != s.bin_edges.len() + 1 {
                    return Err(invalid(
                        "training_stats",
                        alloc::format!(
                            "`{name}` has {} edges and {} counts; counts must be edges + 1",
                            s.bin_edges.len(),
                            s.counts.len()
                        ),
                    ));
                }
                let ascending = |v: &[f64]| v.iter().all(|x| x.is_finite()) && v.windows(2).all(|w| w[0] <= w[1]);
                if !ascending(&s.bin_edges) || !ascending(&s.sample) {
                    return Err(invalid(
                        "training_stats",
                        alloc::format!("`{name}` has bin edges or a sample that are not finite and ascending"),
                    ));
                }
                if !(0.0..=1.0).contains(&s.missing_rate) {
                    return Err(invalid(
                        "training_stats",
                        alloc::format!("`{name}` has missing_rate {} outside [0, 1]", s.missing_rate),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_interval(&self, interval: &IntervalSpec) -> Result<(), MetadataError> {
        interval.check_values()?;
        let named = [Some(&interval.lower), interval.mid.as_ref(), Some(&interval.upper)];
        for name in named.into_iter().flatten() {
            if self.output_index(name).is_none() {
                return Err(invalid(
                    "interval",
                    alloc::format!("names output `{name}`, which the model does not declare"),
                ));
            }
        }
        for feature in interval.segments.iter().flat_map(|s| &s.features) {
            if !self.inputs.iter().any(|i| i.name == feature.input) {
                return Err(invalid(
                    "interval",
                    alloc::format!("segments by input `{}`, which the model does not declare", feature.input),
                ));
            }
        }
        Ok(())
    }

    /// Applies each input's [`MissingPolicy`] to a row in model input order: NaN stays
    /// NaN under [`MissingPolicy::Nan`], becomes the default under
    /// [`MissingPolicy::Default`], and is refused under [`MissingPolicy::Error`].
    ///
    /// ```
    /// use fresco_abi::{InputSpec, MissingPolicy, ModelKind, ModelMetadata};
    ///
    /// let mut traffic = InputSpec::f64("traffic");
    /// traffic.missing = MissingPolicy::Default(0.5);
    /// let mut distance = InputSpec::f64("distance_km");
    /// distance.missing = MissingPolicy::Error;
    /// let meta = ModelMetadata::new("eta", "1", ModelKind::Gbdt)
    ///     .with_inputs(vec![distance, traffic, InputSpec::f64("prep_min")])
    ///     .with_outputs(vec!["eta".into()]);
    ///
    /// let mut row = [3.0, f64::NAN, f64::NAN];
    /// meta.apply_missing_policy(&mut row)?;
    /// assert_eq!(row[1], 0.5);
    /// assert!(row[2].is_nan());
    ///
    /// let err = meta.apply_missing_policy(&mut [f64::NAN, 1.0, 1.0]).unwrap_err();
    /// assert_eq!(err.to_string(), "input `distance_km` is missing and the model requires it");
    /// # Ok::<(), fresco_abi::MissingInput>(())
    /// ```
    pub fn apply_missing_policy(&self, row: &mut [f64]) -> Result<(), MissingInput> {
        for (value, input) in row.iter_mut().zip(&self.inputs) {
            if value.is_nan() {
                match input.missing {
                    MissingPolicy::Nan => {}
                    MissingPolicy::Default(default) => *value = default,
                    MissingPolicy::Error => return Err(MissingInput { input: input.name.clone() }),
                }
            }
        }
        Ok(())
    }

    /// Position of the named input, if declared.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|i| i.name == name)
    }

    /// Position of the named output, if declared.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o == name)
    }
}

/// A required input was missing (NaN) in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingInput {
    /// The input's name.
    pub input: String,
}

impl fmt::Display for MissingInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input `{}` is missing and the model requires it", self.input)
    }
}

impl core::error::Error for MissingInput {}

fn invalid(field: &'static str, reason: String) -> MetadataError {
    MetadataError::Invalid { field, reason }
}

fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = alloc::collections::BTreeSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> ModelMetadata {
        ModelMetadata::new("eta", "1", ModelKind::Gbdt)
            .with_inputs(vec![InputSpec::f64("a"), InputSpec::f64("b")])
            .with_outputs(vec!["q10".into(), "q50".into(), "q90".into()])
    }

    #[test]
    fn round_trips_with_optional_parts() {
        let mut meta = sample();
        meta.inputs[1].missing = MissingPolicy::Default(2.5);
        meta.kind = ModelKind::Other("quantile-forest".into());
        meta.interval = Some(IntervalSpec {
            coverage: 0.8,
            lower: "q10".into(),
            mid: Some("q50".into()),
            upper: "q90".into(),
            lower_offset: 0.25,
            upper_offset: 0.5,
            segments: Some(SegmentOffsets {
                features: vec![SegmentFeature { input: "b".into(), edges: vec![0.5, 1.5] }],
                min_count: 10,
                cells: vec![SegmentCell { bins: vec![3], count: 12, lower_offset: 1.0, upper_offset: 2.0 }],
            }),
        });
        let mut stats = TrainingStats::default();
        stats.inputs.insert(
            "a".into(),
            DistributionStats {
                count: 14,
                bin_edges: vec![1.0, 2.0],
                counts: vec![3, 4, 5],
                missing_rate: 0.1,
                min: Some(0.5),
                max: Some(3.0),
                sample: vec![0.5, 1.5, 3.0],
                ..DistributionStats::default()
            },
        );
        meta.training_stats = Some(stats);
        let back = ModelMetadata::from_json(meta.to_json().as_bytes()).unwrap();
        assert_eq!(back, meta);
    }

    #[test]
    fn refuses_bad_documents() {
        let mut m = sample();
        m.abi = 2;
        assert_eq!(m.validate(), Err(MetadataError::UnsupportedAbi { declared: 2 }));

        let mut m = sample();
        m.outputs.clear();
        assert!(matches!(m.validate(), Err(MetadataError::Invalid { field: "outputs", .. })));

        let mut m = sample();
        m.inputs.push(InputSpec::f64("a"));
        let err = m.validate().unwrap_err();
        assert!(alloc::format!("{err}").contains("`a` is declared twice"));

        let mut m = sample();
        m.interval = Some(IntervalSpec {
            coverage: 0.8,
            lower: "q05".into(),
            mid: None,
            upper: "q90".into(),
            lower_offset: 0.0,
            upper_offset: 0.0,
            segments: None,
        });
        assert!(matches!(m.validate(), Err(MetadataError::Invalid { field: "interval", .. })));

        assert!(matches!(ModelMetadata::from_json(br#"{"name": 3}"#), Err(MetadataError::Malformed { .. })));
    }

    #[test]
    fn refuses_bad_segments() {
        let segmented = |edges: Vec<f64>, input: &str, cells: Vec<SegmentCell>| {
            let mut m = sample();
            m.interval = Some(IntervalSpec {
                coverage: 0.8,
                lower: "q10".into(),
                mid: None,
                upper: "q90".into(),
                lower_offset: 0.0,
                upper_offset: 0.0,
                segments: Some(SegmentOffsets {
                    features: vec![SegmentFeature { input: input.into(), edges }],
                    min_count: 5,
                    cells,
                }),
            });
            m.validate().map_err(|e| alloc::format!("{e}"))
        };
        let cell = |bins: Vec<u32>, count: u64| SegmentCell { bins, count, lower_offset: 1.0, upper_offset: 1.0 };
        assert_eq!(segmented(vec![1.0, 2.0], "a", vec![cell(vec![3], 5), cell(vec![0], 9)]), Ok(()));
        let refused = [
            (segmented(vec![2.0, 1.0], "a", vec![]), "strictly ascending"),
            (segmented(vec![1.0, f64::INFINITY], "a", vec![]), "finite"),
            (segmented(vec![1.0], "c", vec![]), "input `c`"),
            (segmented(vec![1.0], "a", vec![cell(vec![3], 5)]), "bins 0..=2"),
            (segmented(vec![1.0], "a", vec![cell(vec![0, 0], 5)]), "must name 1 bins"),
            (segmented(vec![1.0], "a", vec![cell(vec![], 5)]), "must name 1 bins"),
            (segmented(vec![1.0], "a", vec![cell(vec![1], 4)]), "fewer than min_count 5"),
            (segmented(vec![1.0], "a", vec![cell(vec![1], 5), cell(vec![1], 6)]), "declared twice"),
        ];
        for (result, why) in refused {
            let err = result.expect_err(why);
            assert!(err.contains(why), "{err:?} does not say {why:?}");
        }
    }

    #[test]
    fn older_specs_without_segments_still_read() {
        let json = r#"{"coverage":0.8,"lower":"q10","upper":"q90","lower_offset":0.5,"upper_offset":0.5}"#;
        let spec: IntervalSpec = serde_json::from_str(json).unwrap();
        assert_eq!(spec.segments, None);
        assert!(!serde_json::to_string(&spec).unwrap().contains("segments"));
    }
}
