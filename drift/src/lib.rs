//! Drift tests and training-time statistics for fresco models.
//!
//! A model's artifact carries what its training data looked like
//! ([`fresco_abi::TrainingStats`], made by [`profile`] per column); live traffic is
//! tested against it ([`Reference`]) and against the recent past ([`detect`]) with the
//! test Evidently's data drift preset would choose for the column:
//! Kolmogorov–Smirnov, chi-square or a two-proportion Z test on small references,
//! normed Wasserstein or Jensen–Shannon on large ones, and PSI on request. Each
//! statistic equals its scipy counterpart (`ks_2samp`, `chisquare`,
//! `wasserstein_distance`, `jensenshannon`) on the same data; the repository's oracle
//! script checks them, and Evidently's own verdicts, to 1e-6.
//!
//! ```
//! use fresco_abi::StatsKind;
//! use fresco_drift::{DriftConfig, Reference, profile};
//!
//! // At training time:
//! let seconds: Vec<f64> = (0..800).map(|i| 60.0 + f64::from(i % 240)).collect();
//! let stats = profile(&seconds, StatsKind::Numeric, 20);
//!
//! // Live: the same feature now arrives in milliseconds.
//! let millis: Vec<f64> = seconds.iter().take(300).map(|s| s * 1000.0).collect();
//! let verdict = Reference::new(&stats).test(&millis, &DriftConfig::default())?;
//! assert!(verdict.drifted);
//! assert_eq!(verdict.method.name(), "ks");
//! # Ok::<(), fresco_drift::DriftError>(())
//! ```

mod categorical;
mod detect;
mod distance;
mod ks;
mod monitor;
mod profile;
mod reference;
mod special;

pub use categorical::{chi_square, z_test};
pub use detect::{
    BIN_BY_VALUE_MAX_DISTINCT, ColumnKind, DriftConfig, DriftScore, Method, SMALL_REFERENCE_ROWS, binned_shares,
    default_method, detect,
};
pub use distance::{jensen_shannon, psi, wasserstein_distance, wasserstein_weighted};
pub use ks::{KS_EXACT_MAX, KsTest, ks_2samp};
pub use monitor::{
    Alert, AlertCallback, AlertKind, Baseline, MAX_SAMPLE_SIZE, Monitor, MonitorConfig, MonitorConfigError,
    MonitoredColumn, TypeViolation, Verdict, WindowReport, WindowSnapshot,
};
pub use profile::{DEFAULT_BINS, MAX_BINS, SAMPLE_SIZE, category_key, profile};
pub use reference::Reference;

/// Why a test could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// A sample had no (non-missing) values.
    #[error("the {which} sample has no values")]
    EmptySample {
        /// `first`, `second`, `reference` or `current`.
        which: String,
    },
    /// A sample held NaN where the test needs values.
    #[error("the {which} sample holds NaN; drop missing values first")]
    NanInSample {
        /// Which sample.
        which: String,
    },
    /// Weights were negative, not finite, all zero, or not one per value.
    #[error("the {which} weights must be one finite, non-negative weight per value, not all zero")]
    BadWeights {
        /// Which sample.
        which: String,
    },
    /// Two histograms had different numbers of bins.
    #[error("the reference has {reference} bins and the current sample {current}; they must match and not be empty")]
    BinMismatch {
        /// Bins on the reference side.
        reference: usize,
        /// Bins on the current side.
        current: usize,
    },
    /// Counts for a proportion test were impossible.
    #[error("proportions {ones_a}/{n_a} and {ones_b}/{n_b}: each needs 0 <= ones <= n and n > 0")]
    BadProportions {
        /// Successes in the first sample.
        ones_a: u64,
        /// Size of the first sample.
        n_a: u64,
        /// Successes in the second sample.
        ones_b: u64,
        /// Size of the second sample.
        n_b: u64,
    },
}
