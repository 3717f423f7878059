//! Coverage and width of intervals against actual outcomes, overall and per segment.

use core::fmt;

use fresco_abi::{SegmentFeature, SegmentOffsets};

use super::{Interval, IntervalError};

/// Rows, rows covered and summed width of one group of intervals.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    /// Intervals counted.
    pub rows: u64,
    /// Intervals that contained the actual outcome.
    pub covered: u64,
    /// Sum of their widths.
    pub width_sum: f64,
}

impl Tally {
    /// The fraction of intervals that contained the outcome (NaN for no rows).
    pub fn coverage(&self) -> f64 {
        self.covered as f64 / self.rows as f64
    }

    /// The mean width (NaN for no rows).
    pub fn mean_width(&self) -> f64 {
        self.width_sum / self.rows as f64
    }

    fn add(&mut self, interval: &Interval, actual: f64) {
        self.rows = self.rows.saturating_add(1);
        self.covered = self.covered.saturating_add(u64::from(interval.contains(actual)));
        self.width_sum += interval.width();
    }
}

/// One segment's row of a [`CoverageReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentTally<'a> {
    /// The input the segment cuts.
    pub input: &'a str,
    /// Which part of it: `< 0.5`, `0.5–1.5`, `≥ 1.5` or `missing`.
    pub range: String,
    /// What was measured there.
    pub tally: Tally,
}

/// Coverage and mean width of intervals against outcomes, overall and per bin of each
/// reporting segment (one input cut by edges, the same bins as
/// [`SegmentOffsets::bin`]), so a range that is calibrated on average but not in
/// storms shows it.
///
/// ```
/// use fresco::abi::SegmentFeature;
/// use fresco::interval::{CoverageReport, Interval};
///
/// let inputs = ["weather".to_string()];
/// let by_weather = [SegmentFeature { input: "weather".into(), edges: vec![0.5, 1.5] }];
/// let mut report = CoverageReport::new(&by_weather, &inputs)?;
/// let range = Interval { low: 20.0, mid: 25.0, high: 30.0, coverage: 0.8 };
/// report.add(&[0.0], &range, 24.0)?; // clear: covered
/// report.add(&[2.0], &range, 41.0)?; // storm: late
/// assert_eq!(report.overall().coverage(), 0.5);
/// let storm = report.segments().find(|s| s.range == "≥ 1.5").unwrap();
/// assert_eq!((storm.tally.rows, storm.tally.covered), (1, 0));
/// print!("{report}");
/// # Ok::<(), fresco::interval::IntervalError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageReport {
    overall: Tally,
    /// Per reporting segment: its feature, the input's position, a tally per bin.
    segments: Vec<(SegmentFeature, usize, Vec<Tally>)>,
}

impl CoverageReport {
    /// A report over `segments`, for rows whose inputs are named `inputs`.
    pub fn new(segments: &[SegmentFeature], inputs: &[String]) -> Result<Self, IntervalError> {
        let segments = segments
            .iter()
            .map(|f| {
                f.check_values().map_err(|source| IntervalError::InvalidSpec { source })?;
                match inputs.iter().position(|i| *i == f.input) {
                    Some(i) => Ok((f.clone(), i, vec![Tally::default(); f.edges.len() + 2])),
                    None => Err(IntervalError::UnknownInput { input: f.input.clone() }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(CoverageReport { overall: Tally::default(), segments })
    }

    /// A report over the segments `meta`'s interval calibrates its offsets on, then
    /// `extra` ones, for rows of the model's inputs.
    pub fn for_model(meta: &fresco_abi::ModelMetadata, extra: &[SegmentFeature]) -> Result<Self, IntervalError> {
        let calibrated = meta.interval.iter().flat_map(|i| i.segments.iter()).flat_map(|s| s.features.iter());
        let segments: Vec<SegmentFeature> = calibrated.chain(extra).cloned().collect();
        let inputs: Vec<String> = meta.inputs.iter().map(|i| i.name.clone()).collect();
        CoverageReport::new(&segments, &inputs)
    }

    /// Counts one row: its model inputs, its interval and the actual outcome.
    pub fn add(&mut self, inputs: &[f64], interval: &Interval, actual: f64) -> Result<(), IntervalError> {
        for (_, input, _) in &self.segments {
            if *input >= inputs.len() {
                return Err(IntervalError::TooFewInputs { got: inputs.len(), needed: *input });
            }
        }
        self.overall.add(interval, actual);
        for (feature, input, tallies) in &mut self.segments {
            let bin = SegmentOffsets::bin(&feature.edges, inputs[*input]) as usize;
            if let Some(tally) = tallies.get_mut(bin) {
                tally.add(interval, actual);
            }
        }
        Ok(())
    }

    /// Every row counted.
    pub fn overall(&self) -> Tally {
        self.overall
    }

    /// Each segment bin that holds rows, segment by segment in the order given.
    pub fn segments(&self) -> impl Iterator<Item = SegmentTally<'_>> {
        self.segments.iter().flat_map(|(feature, _, tallies)| {
            tallies.iter().enumerate().filter(|(_, t)| t.rows > 0).map(move |(bin, tally)| SegmentTally {
                input: &feature.input,
                range: bin_range(&feature.edges, bin),
                tally: *tally,
            })
        })
    }
}

/// How bin `bin` of `edges` reads: `< a`, `a–b`, `≥ b`, `missing`.
fn bin_range(edges: &[f64], bin: usize) -> String {
    match (bin.checked_sub(1).and_then(|i| edges.get(i)), edges.get(bin)) {
        _ if bin == edges.len() + 1 => "missing".to_owned(),
        (None, Some(high)) => format!("< {high}"),
        (Some(low), Some(high)) => format!("{low}\u{2013}{high}"),
        (Some(low), None) => format!("\u{2265} {low}"),
        (None, None) => "all".to_owned(),
    }
}

impl fmt::Display for CoverageReport {
    /// A table: one line overall, then one per segment bin.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |f: &mut fmt::Formatter<'_>, name: &str, t: &Tally| {
            writeln!(f, "  {name:<28} {:>7} rows  {:>5.1} %  {:>6.2}", t.rows, 100.0 * t.coverage(), t.mean_width())
        };
        writeln!(f, "  {:<28} {:>12}  {:>7}  {:>6}", "segment", "rows", "covered", "width")?;
        line(f, "all", &self.overall)?;
        for s in self.segments() {
            line(f, &format!("{} {}", s.input, s.range), &s.tally)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_read_as_ranges() {
        let edges = [0.3, 0.6];
        let names: Vec<String> = (0..4).map(|b| bin_range(&edges, b)).collect();
        assert_eq!(names, ["< 0.3", "0.3–0.6", "≥ 0.6", "missing"]);
    }

    #[test]
    fn tallies_every_row_once_per_segment() {
        let inputs = ["a".to_string(), "b".to_string()];
        let segments = [
            SegmentFeature { input: "b".into(), edges: vec![1.0] },
            SegmentFeature { input: "a".into(), edges: vec![] },
        ];
        let mut report = CoverageReport::new(&segments, &inputs).unwrap();
        let iv = Interval { low: 0.0, mid: 1.0, high: 2.0, coverage: 0.8 };
        for (b, actual) in [(0.0, 1.0), (1.0, 3.0), (f64::NAN, 1.5), (5.0, 2.0)] {
            report.add(&[9.0, b], &iv, actual).unwrap();
        }
        let rows: Vec<(String, u64, u64)> =
            report.segments().map(|s| (format!("{} {}", s.input, s.range), s.tally.rows, s.tally.covered)).collect();
        assert_eq!(
            rows,
            [("b < 1".into(), 1, 1), ("b ≥ 1".into(), 2, 1), ("b missing".into(), 1, 1), ("a all".into(), 4, 3)]
        );
        assert_eq!(report.overall().mean_width(), 2.0);
        assert_eq!(report.add(&[1.0], &iv, 1.0), Err(IntervalError::TooFewInputs { got: 1, needed: 1 }));
        assert_eq!(report.overall().rows, 4);
        let bad = [SegmentFeature { input: "b".into(), edges: vec![2.0, 1.0] }];
        assert!(matches!(CoverageReport::new(&bad, &inputs), Err(IntervalError::InvalidSpec { .. })));
    }
}
