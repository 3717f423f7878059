//! Distances between distributions: Wasserstein-1, Jensen–Shannon and the population
//! stability index.

use crate::DriftError;

/// The Wasserstein-1 (earth mover's) distance between two samples, as
/// `scipy.stats.wasserstein_distance(u, v)`: the area between their distribution
/// functions.
///
/// ```
/// use fresco_drift::wasserstein_distance;
///
/// // Every unit of mass moves by 2.
/// assert_eq!(wasserstein_distance(&[0.0, 1.0], &[2.0, 3.0])?, 2.0);
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn wasserstein_distance(u: &[f64], v: &[f64]) -> Result<f64, DriftError> {
    wasserstein_weighted(u, None, v, None)
}

/// [`wasserstein_distance`] with a weight per value (e.g. histogram counts at bin
/// representatives), as scipy's `u_weights` / `v_weights`.
pub fn wasserstein_weighted(u: &[f64], u_w: Option<&[f64]>, v: &[f64], v_w: Option<&[f64]>) -> Result<f64, DriftError> {
    let u = Weighted::new(u, u_w, "first")?;
    let v = Weighted::new(v, v_w, "second")?;
    let mut all: Vec<f64> = u.values.iter().chain(&v.values).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut total = 0.0;
    for w in all.windows(2) {
        let delta = w[1] - w[0];
        total += (u.cdf(w[0]) - v.cdf(w[0])).abs() * delta;
    }
    Ok(total)
}

/// A sample sorted, with the cumulative weight at each value.
struct Weighted {
    values: Vec<f64>,
    cumulative: Option<Vec<f64>>,
}

impl Weighted {
    fn new(values: &[f64], weights: Option<&[f64]>, which: &str) -> Result<Self, DriftError> {
        if values.is_empty() {
            return Err(DriftError::EmptySample { which: which.to_owned() });
        }
        if values.iter().any(|x| !x.is_finite()) {
            return Err(DriftError::NanInSample { which: which.to_owned() });
        }
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let cumulative = match weights {
            None => None,
            Some(w) => {
                if w.len() != values.len() || w.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
                    return Err(DriftError::BadWeights { which: which.to_owned() });
                }
                let mut acc = 0.0;
                let c: Vec<f64> = order
                    .iter()
                    .map(|&i| {
                        acc += w[i];
                        acc
                    })
                    .collect();
                if acc <= 0.0 {
                    return Err(DriftError::BadWeights { which: which.to_owned() });
                }
                Some(c)
            }
        };
        Ok(Weighted { values: order.iter().map(|&i| values[i]).collect(), cumulative })
    }

    /// The distribution function at `x`: the share of weight at values `<= x`.
    fn cdf(&self, x: f64) -> f64 {
        let k = self.values.partition_point(|v| *v <= x);
        match &self.cumulative {
            None => k as f64 / self.values.len() as f64,
            Some(c) => {
                let total = c.last().copied().unwrap_or(1.0);
                if k == 0 { 0.0 } else { c[k - 1] / total }
            }
        }
    }
}

/// The Jensen–Shannon distance (natural logarithm) between two discrete distributions
/// given as non-negative weights over the same bins, as `scipy.spatial.distance.jensenshannon`:
/// both are normalized first.
///
/// ```
/// use fresco_drift::jensen_shannon;
///
/// assert_eq!(jensen_shannon(&[1.0, 1.0], &[2.0, 2.0])?, 0.0);
/// let d = jensen_shannon(&[1.0, 0.0], &[0.0, 1.0])?;
/// assert!((d - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> Result<f64, DriftError> {
    let (p, q) = normalized_pair(p, q)?;
    let mut js = 0.0;
    for (a, b) in p.iter().zip(&q) {
        let m = (a + b) / 2.0;
        js += rel_entr(*a, m) + rel_entr(*b, m);
    }
    Ok((js / 2.0).sqrt())
}

/// The population stability index `Σ (r − c) ln(r / c)` over bins given as shares.
/// A bin empty on one side makes it infinite; floor empty shares first, as
/// [`binned_shares`](crate::binned_shares) does.
///
/// ```
/// use fresco_drift::psi;
///
/// assert_eq!(psi(&[0.5, 0.5], &[0.5, 0.5])?, 0.0);
/// assert!(psi(&[0.9, 0.1], &[0.5, 0.5])? > 0.2);
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn psi(reference: &[f64], current: &[f64]) -> Result<f64, DriftError> {
    same_length(reference, current)?;
    Ok(reference.iter().zip(current).map(|(r, c)| (r - c) * (r / c).ln()).sum())
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

fn same_length(a: &[f64], b: &[f64]) -> Result<(), DriftError> {
    if a.len() != b.len() || a.is_empty() {
        return Err(DriftError::BinMismatch { reference: a.len(), current: b.len() });
    }
    Ok(())
}

fn normalized_pair(p: &[f64], q: &[f64]) -> Result<(Vec<f64>, Vec<f64>), DriftError> {
    same_length(p, q)?;
    let norm = |v: &[f64], which: &str| {
        let sum: f64 = v.iter().sum();
        if v.iter().any(|x| !(x.is_finite() && *x >= 0.0)) || sum <= 0.0 {
            return Err(DriftError::BadWeights { which: which.to_owned() });
        }
        Ok(v.iter().map(|x| x / sum).collect::<Vec<f64>>())
    };
    Ok((norm(p, "first")?, norm(q, "second")?))
}
