//! The two-sample Kolmogorov–Smirnov test, two-sided, as `scipy.stats.ks_2samp` computes
//! it with `method="auto"`: the exact p-value when neither sample has more than 10,000
//! values.

use crate::DriftError;

/// The largest sample for which the p-value is exact (scipy's `MAX_AUTO_N`).
pub const KS_EXACT_MAX: usize = 10_000;

/// The outcome of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// The largest distance between the two empirical distribution functions.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value` is exact; otherwise it is Kolmogorov's limiting distribution,
    /// used above [`KS_EXACT_MAX`] values or when the exact sum is not representable.
    pub exact: bool,
}

/// Tests whether `a` and `b` come from the same continuous distribution.
///
/// Neither sample may be empty or hold NaN.
///
/// ```
/// use fresco_drift::ks_2samp;
///
/// let a = [0.1, 0.4, 0.7, 1.0, 1.3];
/// let b = [2.1, 2.4, 2.7, 3.0, 3.3];
/// let test = ks_2samp(&a, &b)?;
/// assert_eq!(test.statistic, 1.0);
/// assert!(test.p_value < 0.01); // scipy: 0.007936507936507936
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Result<KsTest, DriftError> {
    let a = sorted(a, "first")?;
    let b = sorted(b, "second")?;
    let statistic = statistic(&a, &b);
    let (n1, n2) = (a.len(), b.len());
    if n1.max(n2) <= KS_EXACT_MAX
        && let Some(p) = exact_p(n1 as u64, n2 as u64, statistic)
    {
        return Ok(KsTest { statistic, p_value: p, exact: true });
    }
    let (m, n) = (n1 as f64, n2 as f64);
    let en = m * n / (m + n);
    Ok(KsTest { statistic, p_value: kolmogorov_sf(en.sqrt() * statistic), exact: false })
}

fn sorted(values: &[f64], which: &str) -> Result<Vec<f64>, DriftError> {
    if values.is_empty() {
        return Err(DriftError::EmptySample { which: which.to_owned() });
    }
    if values.iter().any(|v| v.is_nan()) {
        return Err(DriftError::NanInSample { which: which.to_owned() });
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// `sup |F_a − F_b|`, evaluated at every value of either sample (as scipy does).
fn statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut max_diff, mut min_diff) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) | (None, Some(&x)) => x,
            (None, None) => break,
        };
        while a.get(i).is_some_and(|v| *v <= x) {
            i += 1;
        }
        while b.get(j).is_some_and(|v| *v <= x) {
            j += 1;
        }
        let diff = i as f64 / n1 - j as f64 / n2;
        max_diff = max_diff.max(diff);
        min_diff = min_diff.min(diff);
    }
    let below = (-min_diff).clamp(0.0, 1.0);
    if below > max_diff { below } else { max_diff }
}

/// The exact two-sided p-value, or `None` where it cannot be computed (then the
/// asymptotic one is used, as scipy does).
fn exact_p(n1: u64, n2: u64, d: f64) -> Option<f64> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g).checked_mul(n2)?;
    // scipy rounds half to even.
    let h = (d * lcm as f64).round_ties_even();
    if h == 0.0 {
        return Some(1.0);
    }
    let h = h as u64;
    let p = if n1 == n2 { prob_outside_square(n1, h) } else { prob_outside_band(n1, n2, g, h)? };
    (0.0..=1.0).contains(&p).then_some(p)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Equal sample sizes: the proportion of lattice paths that leave the band
/// `|x − y| < h` (Hodges 1958).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as i128, h as i128);
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Unequal sample sizes: one minus the proportion of paths that stay strictly inside
/// the band, by the recursion of Viehmann (2021) that computes the complement directly.
fn prob_outside_band(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let (mg, ng) = (m / g, n / g);
    let ceil = |a: i64, b: i64| if a.rem_euclid(b) == 0 { a.div_euclid(b) } else { a.div_euclid(b) + 1 };
    let mut min_j: i64 = 0;
    let mut max_j = ceil(h, mg).min(n + 1);
    let mut cur_len = max_j - min_j;
    let len = usize::try_from((2 * max_j + 2).min(n + 1)).ok()?;
    let mut a = vec![1.0f64; len];
    for v in a.get_mut(0..usize::try_from(max_j).ok()?)? {
        *v = 0.0;
    }
    for i in 1..=m {
        let (last_min_j, last_len) = (min_j, cur_len);
        min_j = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        max_j = ceil(ng * i + h, mg).min(n + 1);
        if max_j <= min_j {
            return Some(1.0);
        }
        let mut val = if min_j == 0 { 0.0 } else { 1.0 };
        for jj in 0..max_j - min_j {
            let j = jj + min_j;
            let prev = *a.get(usize::try_from(jj + min_j - last_min_j).ok()?)?;
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            *a.get_mut(usize::try_from(jj).ok()?)? = val;
        }
        cur_len = max_j - min_j;
        if last_len > cur_len {
            let from = usize::try_from(cur_len).ok()?;
            let to = usize::try_from(cur_len + (last_len - cur_len)).ok()?;
            for v in a.get_mut(from..to.min(len))? {
                *v = 1.0;
            }
        }
    }
    a.get(usize::try_from(max_j - min_j - 1).ok()?).copied()
}

/// Kolmogorov's limiting survival function `Q(λ) = 2 Σ (−1)^(k−1) exp(−2 k² λ²)`.
fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as u32 % 2 == 1 { term } else { -term };
        if term < 1e-18 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_on_small_samples() {
        // scipy.stats.ks_2samp([1, 2, 3, 4], [2.5, 3.5, 4.5, 5.5, 6.5, 7.5])
        let t = ks_2samp(&[1.0, 2.0, 3.0, 4.0], &[2.5, 3.5, 4.5, 5.5, 6.5, 7.5]).unwrap();
        assert!((t.statistic - 0.6666666666666666).abs() < 1e-15);
        assert!((t.p_value - 0.18095238095238098).abs() < 1e-12, "{}", t.p_value);
        assert!(t.exact);
        let same = ks_2samp(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
    }

    #[test]
    fn refuses_empty_and_nan() {
        assert!(matches!(ks_2samp(&[], &[1.0]), Err(DriftError::EmptySample { .. })));
        assert!(matches!(ks_2samp(&[f64::NAN], &[1.0]), Err(DriftError::NanInSample { .. })));
    }
}
