//! Tests for counts of categories: Pearson's chi-square and the two-proportion Z test.

use crate::DriftError;
use crate::special::{chi2_sf, normal_sf};

/// Pearson's chi-square goodness-of-fit test of `observed` counts against `expected`
/// ones, as `scipy.stats.chisquare(observed, expected)`: returns `(statistic, p_value)`
/// with `len − 1` degrees of freedom. An expected count of zero where something was
/// observed makes the statistic infinite and the p-value zero.
///
/// ```
/// use fresco_drift::chi_square;
///
/// let (stat, p) = chi_square(&[16.0, 18.0, 16.0, 14.0, 12.0, 12.0], &[16.0, 16.0, 16.0, 16.0, 16.0, 8.0])?;
/// assert!((stat - 3.5).abs() < 1e-12);
/// assert!((p - 0.6233876277495822).abs() < 1e-9); // scipy
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn chi_square(observed: &[f64], expected: &[f64]) -> Result<(f64, f64), DriftError> {
    if observed.len() != expected.len() || observed.is_empty() {
        return Err(DriftError::BinMismatch { reference: expected.len(), current: observed.len() });
    }
    let stat: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| {
            let d = o - e;
            d * d / e
        })
        .sum();
    Ok((stat, chi2_sf(stat, (observed.len() - 1) as f64)))
}

/// The two-sided p-value of the two-proportion Z test: `ones_a` of `n_a` against
/// `ones_b` of `n_b`, with the pooled proportion in the standard error.
///
/// ```
/// use fresco_drift::z_test;
///
/// assert!((z_test(50, 100, 50, 100)? - 1.0).abs() < 1e-12);
/// assert!(z_test(10, 100, 60, 100)? < 1e-9);
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn z_test(ones_a: u64, n_a: u64, ones_b: u64, n_b: u64) -> Result<f64, DriftError> {
    if n_a == 0 || n_b == 0 || ones_a > n_a || ones_b > n_b {
        return Err(DriftError::BadProportions { ones_a, n_a, ones_b, n_b });
    }
    let (na, nb) = (n_a as f64, n_b as f64);
    let (pa, pb) = (ones_a as f64 / na, ones_b as f64 / nb);
    let pooled = (pa * na + pb * nb) / (na + nb);
    let z = (pa - pb) / (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    Ok(2.0 * normal_sf(z.abs()))
}
