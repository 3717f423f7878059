//! Calibrated prediction intervals: "4–8 min" from a model's quantile outputs.
//!
//! A model packed from quantile boosters (say q10, q50 and q90) declares in its metadata
//! an [`IntervalSpec`]: which outputs bound the interval and the conformal offsets
//! computed on a calibration split (conformalized quantile regression, Romano et al.
//! 2019). [`IntervalRule`] resolves that spec against the model's inputs and outputs
//! once; [`IntervalRule::apply`] turns one row into an [`Interval`]:
//!
//! ```text
//! low  = min(lower - lower_offset, upper + upper_offset)
//! high = max(lower - lower_offset, upper + upper_offset)
//! mid  = the mid output clamped into [low, high], or (low + high) / 2 without one
//! ```
//!
//! The offsets are the spec's own, or, when the spec carries
//! [`SegmentOffsets`](fresco_abi::SegmentOffsets), those of the row's segment
//! (Mondrian conformal calibration: one offset pair per segment of the inputs, such as
//! storms at dinner time, so coverage holds within segments and not only on average).
//! A row whose segment had too few calibration rows for offsets of its own takes the
//! spec's. [`CoverageReport`] measures coverage and width per segment against actual
//! outcomes.
//!
//! Taking the min and max repairs crossed quantiles (a lower quantile above the upper
//! one, which independently trained boosters can produce on rare inputs) instead of
//! returning an empty interval. The same arithmetic is written out in the browser
//! example (`examples/eta-web/eta.js`), and a test checks both agree bit for bit.
//!
//! ```
//! use fresco::abi::IntervalSpec;
//! use fresco::interval::IntervalRule;
//!
//! let spec = IntervalSpec {
//!     coverage: 0.8,
//!     lower: "q10".into(),
//!     mid: Some("q50".into()),
//!     upper: "q90".into(),
//!     lower_offset: 0.4,
//!     upper_offset: 0.4,
//!     segments: None,
//! };
//! let inputs = ["distance_km".to_string()];
//! let outputs = ["q10".to_string(), "q50".to_string(), "q90".to_string()];
//! let rule = IntervalRule::new(&spec, &inputs, &outputs)?;
//! let interval = rule.apply(&[2.5], &[4.9, 6.1, 7.2])?;
//! assert_eq!(interval.display("min").to_string(), "4–8 min");
//! assert!(interval.contains(6.0));
//! assert_eq!(interval.coverage, 0.8);
//! # Ok::<(), fresco::interval::IntervalError>(())
//! ```

mod coverage;

use core::fmt;
use std::collections::HashMap;

pub use fresco_abi::IntervalSpec;
use fresco_abi::SegmentOffsets;

pub use coverage::{CoverageReport, SegmentTally, Tally};

/// Why an interval could not be formed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum IntervalError {
    /// The spec names an output the model does not have.
    #[error("the interval names output `{output}`, which the model does not have")]
    UnknownOutput {
        /// The name in the spec.
        output: String,
    },
    /// The spec segments by an input the model does not have.
    #[error("the interval segments by input `{input}`, which the model does not have")]
    UnknownInput {
        /// The name in the spec.
        input: String,
    },
    /// The spec itself is unusable.
    #[error("unusable interval spec: {source}")]
    InvalidSpec {
        /// What is wrong with it.
        #[source]
        source: fresco_abi::MetadataError,
    },
    /// A row of outputs is shorter than the model's outputs.
    #[error("{got} outputs given, the interval reads output #{needed}")]
    TooFewOutputs {
        /// Outputs in the row.
        got: usize,
        /// The index the interval needs.
        needed: usize,
    },
    /// A row of inputs is shorter than the inputs the segments read.
    #[error("{got} inputs given, the interval's segments read input #{needed}")]
    TooFewInputs {
        /// Inputs in the row.
        got: usize,
        /// The index the segments need.
        needed: usize,
    },
    /// A bound or the midpoint is NaN or infinite.
    #[error("the interval's `{output}` is not finite ({value})")]
    NotFinite {
        /// Which bound: `low`, `mid` or `high`.
        output: &'static str,
        /// Its value.
        value: f64,
    },
}

/// A calibrated prediction interval.
///
/// Built by [`IntervalRule::apply`] (or [`Prediction::interval`](crate::Prediction::interval)
/// from a `Client`); `low ≤ mid ≤ high` always holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Point estimate (the model's median output when it has one).
    pub mid: f64,
    /// Upper bound.
    pub high: f64,
    /// Nominal coverage: the fraction of outcomes the interval is calibrated to contain.
    pub coverage: f64,
}

impl Interval {
    /// `high - low`.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }

    /// Whether `y` lies in `[low, high]`.
    pub fn contains(&self, y: f64) -> bool {
        self.low <= y && y <= self.high
    }

    /// The interval in whole units, widened outward so that it still contains
    /// `[low, high]`: `floor(max(low, 0))` and `ceil(max(high, 0))`.
    ///
    /// Negative values are clamped at zero because the quantities shown this way
    /// (minutes, items, euros) are not negative.
    ///
    /// ```
    /// # use fresco::interval::Interval;
    /// let i = Interval { low: 3.6, mid: 5.2, high: 7.01, coverage: 0.8 };
    /// assert_eq!(i.rounded(), (3.0, 8.0));
    /// ```
    pub fn rounded(&self) -> (f64, f64) {
        // `+ 0.0` turns a negative zero into zero, which would otherwise print as "-0".
        (self.low.max(0.0).floor() + 0.0, self.high.max(0.0).ceil() + 0.0)
    }

    /// Renders the [`rounded`](Self::rounded) interval with a unit: `"4–8 min"`, or
    /// `"5 min"` when both ends round to the same value.
    ///
    /// ```
    /// # use fresco::interval::Interval;
    /// let i = Interval { low: 4.2, mid: 6.0, high: 7.9, coverage: 0.8 };
    /// assert_eq!(format!("{}", i.display("min")), "4–8 min");
    /// ```
    pub fn display<'a>(&self, unit: &'a str) -> RangeDisplay<'a> {
        let (low, high) = self.rounded();
        RangeDisplay { low, high, unit }
    }
}

/// A rounded interval with its unit, for display; see [`Interval::display`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeDisplay<'a> {
    low: f64,
    high: f64,
    unit: &'a str,
}

impl fmt::Display for RangeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{} {}", self.low, self.unit)
        } else {
            write!(f, "{}\u{2013}{} {}", self.low, self.high, self.unit)
        }
    }
}

/// An [`IntervalSpec`] resolved against a model's input and output names.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalRule {
    lower: usize,
    mid: Option<usize>,
    upper: usize,
    offsets: Offsets,
    segments: Option<SegmentRule>,
    coverage: f64,
}

/// The pair of offsets one row gets.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Offsets {
    lower: f64,
    upper: f64,
}

/// [`SegmentOffsets`] resolved: input positions, and the cells by their bins.
#[derive(Debug, Clone, PartialEq)]
struct SegmentRule {
    /// (input index, edges) per segment feature, in the spec's order.
    features: Vec<(usize, Vec<f64>)>,
    cells: HashMap<Box<[u32]>, Offsets>,
}

impl SegmentRule {
    fn new(segments: &SegmentOffsets, inputs: &[String]) -> Result<Self, IntervalError> {
        let features = segments
            .features
            .iter()
            .map(|f| match inputs.iter().position(|i| *i == f.input) {
                Some(i) => Ok((i, f.edges.clone())),
                None => Err(IntervalError::UnknownInput { input: f.input.clone() }),
            })
            .collect::<Result<_, _>>()?;
        let cells = segments
            .cells
            .iter()
            .map(|c| (c.bins.clone().into_boxed_slice(), Offsets { lower: c.lower_offset, upper: c.upper_offset }))
            .collect();
        Ok(SegmentRule { features, cells })
    }

    /// The offsets of the row's segment, if it has a cell.
    fn offsets(&self, inputs: &[f64]) -> Result<Option<Offsets>, IntervalError> {
        // Validation caps the features, so the segment fits on the stack.
        let mut bins = [0u32; fresco_abi::MAX_SEGMENT_FEATURES];
        for (slot, (input, edges)) in bins.iter_mut().zip(&self.features) {
            let value =
                inputs.get(*input).copied().ok_or(IntervalError::TooFewInputs { got: inputs.len(), needed: *input })?;
            *slot = SegmentOffsets::bin(edges, value);
        }
        Ok(self.cells.get(&bins[..self.features.len()]).copied())
    }
}

impl IntervalRule {
    /// Resolves `spec` against the model's `inputs` and `outputs` (names, in the
    /// model's order).
    pub fn new(spec: &IntervalSpec, inputs: &[String], outputs: &[String]) -> Result<Self, IntervalError> {
        let find = |name: &str| {
            outputs.iter().position(|o| o == name).ok_or_else(|| IntervalError::UnknownOutput { output: name.into() })
        };
        spec.check_values().map_err(|source| IntervalError::InvalidSpec { source })?;
        Ok(IntervalRule {
            lower: find(&spec.lower)?,
            mid: spec.mid.as_deref().map(find).transpose()?,
            upper: find(&spec.upper)?,
            offsets: Offsets { lower: spec.lower_offset, upper: spec.upper_offset },
            segments: spec.segments.as_ref().map(|s| SegmentRule::new(s, inputs)).transpose()?,
            coverage: spec.coverage,
        })
    }

    /// The rule a model's metadata declares, or `None` when it declares no interval.
    pub fn for_model(meta: &fresco_abi::ModelMetadata) -> Result<Option<Self>, IntervalError> {
        let inputs: Vec<String> = meta.inputs.iter().map(|i| i.name.clone()).collect();
        meta.interval.as_ref().map(|spec| IntervalRule::new(spec, &inputs, &meta.outputs)).transpose()
    }

    /// Whether the offsets depend on the row's segment.
    pub fn is_segmented(&self) -> bool {
        self.segments.is_some()
    }

    /// The interval for one row: its model `inputs` (read only by segmented specs)
    /// and its `outputs`.
    pub fn apply(&self, inputs: &[f64], outputs: &[f64]) -> Result<Interval, IntervalError> {
        let get =
            |i: usize| outputs.get(i).copied().ok_or(IntervalError::TooFewOutputs { got: outputs.len(), needed: i });
        let offsets = match &self.segments {
            Some(segments) => segments.offsets(inputs)?.unwrap_or(self.offsets),
            None => self.offsets,
        };
        let a = get(self.lower)? - offsets.lower;
        let b = get(self.upper)? + offsets.upper;
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        for (output, value) in [("low", low), ("high", high)] {
            if !value.is_finite() {
                return Err(IntervalError::NotFinite { output, value });
            }
        }
        let mid = match self.mid {
            Some(i) => get(i)?,
            None => low + (high - low) / 2.0,
        };
        if !mid.is_finite() {
            return Err(IntervalError::NotFinite { output: "mid", value: mid });
        }
        Ok(Interval { low, mid: mid.clamp(low, high), high, coverage: self.coverage })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mid: Option<&str>) -> IntervalSpec {
        IntervalSpec {
            coverage: 0.8,
            lower: "q10".into(),
            mid: mid.map(Into::into),
            upper: "q90".into(),
            lower_offset: 0.5,
            upper_offset: 1.0,
            segments: None,
        }
    }

    fn names() -> Vec<String> {
        ["q10", "q50", "q90"].map(String::from).to_vec()
    }

    fn inputs() -> Vec<String> {
        ["weather", "traffic"].map(String::from).to_vec()
    }

    #[test]
    fn applies_offsets_and_keeps_mid_inside() {
        let rule = IntervalRule::new(&spec(Some("q50")), &inputs(), &names()).unwrap();
        let i = rule.apply(&[], &[4.0, 5.0, 7.0]).unwrap();
        assert_eq!((i.low, i.mid, i.high), (3.5, 5.0, 8.0));
        // A median outside the calibrated bounds is clamped into them.
        let i = rule.apply(&[], &[4.0, 9.5, 7.0]).unwrap();
        assert_eq!(i.mid, 8.0);
    }

    #[test]
    fn crossed_quantiles_are_reordered() {
        let rule = IntervalRule::new(&spec(None), &inputs(), &names()).unwrap();
        let i = rule.apply(&[], &[10.0, 0.0, 2.0]).unwrap();
        assert_eq!((i.low, i.high), (3.0, 9.5));
        assert_eq!(i.mid, 6.25);
    }

    #[test]
    fn bad_specs_and_rows_are_typed_errors() {
        let mut s = spec(Some("p50"));
        assert_eq!(
            IntervalRule::new(&s, &inputs(), &names()),
            Err(IntervalError::UnknownOutput { output: "p50".into() })
        );
        s.mid = None;
        s.coverage = 1.0;
        assert!(matches!(IntervalRule::new(&s, &inputs(), &names()), Err(IntervalError::InvalidSpec { .. })));
        let rule = IntervalRule::new(&spec(None), &inputs(), &names()).unwrap();
        assert!(matches!(rule.apply(&[], &[1.0]), Err(IntervalError::TooFewOutputs { got: 1, needed: 2 })));
        assert!(matches!(rule.apply(&[], &[f64::NAN, 0.0, 1.0]), Err(IntervalError::NotFinite { .. })));
    }

    #[test]
    fn segments_take_their_own_offsets_and_the_rest_the_specs() {
        use fresco_abi::{SegmentCell, SegmentFeature};
        let cell = |bins: &[u32], offset: f64| SegmentCell {
            bins: bins.to_vec(),
            count: 100,
            lower_offset: offset,
            upper_offset: offset,
        };
        let mut s = spec(None);
        s.segments = Some(SegmentOffsets {
            features: vec![
                SegmentFeature { input: "weather".into(), edges: vec![0.5, 1.5] },
                SegmentFeature { input: "traffic".into(), edges: vec![0.8] },
            ],
            min_count: 100,
            // Storms in light and in heavy traffic; clear weather with no traffic reading.
            cells: vec![cell(&[2, 0], 3.0), cell(&[2, 1], 5.0), cell(&[0, 2], 7.0)],
        });
        let rule = IntervalRule::new(&s, &inputs(), &names()).unwrap();
        assert!(rule.is_segmented());
        let width = |weather: f64, traffic: f64| rule.apply(&[weather, traffic], &[10.0, 0.0, 20.0]).unwrap().width();
        assert_eq!(width(0.0, 0.2), 10.0 + 0.5 + 1.0); // no cell: the spec's offsets
        assert_eq!(width(1.0, 0.9), 11.5);
        assert_eq!(width(2.0, 0.2), 16.0); // storm, light traffic
        assert_eq!(width(2.0, 0.8), 20.0); // storm, heavy traffic (an edge belongs to the bin above it)
        assert_eq!(width(2.0, f64::NAN), 11.5); // storm, traffic unknown: no cell
        assert_eq!(width(0.0, f64::NAN), 24.0);
        assert_eq!(width(7.0, 0.9), 20.0); // beyond the last edge: the last bin, a storm's
        assert_eq!(rule.apply(&[2.0], &[10.0, 0.0, 20.0]), Err(IntervalError::TooFewInputs { got: 1, needed: 1 }));
        let unknown = IntervalRule::new(&s, &["weather".to_string()], &names());
        assert_eq!(unknown, Err(IntervalError::UnknownInput { input: "traffic".into() }));
    }

    #[test]
    fn renders_whole_units_outward() {
        let i = |low, high| Interval { low, mid: low, high, coverage: 0.8 };
        assert_eq!(i(4.2, 7.9).display("min").to_string(), "4–8 min");
        assert_eq!(i(5.0, 5.0).display("min").to_string(), "5 min");
        assert_eq!(i(-1.5, 0.2).display("min").to_string(), "0–1 min");
        assert_eq!(i(12.0, 12.5).display("km").to_string(), "12–13 km");
        assert_eq!(i(-0.0, -0.0).display("min").to_string(), "0 min");
    }
}
