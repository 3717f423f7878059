//! Random draws for the simulated worlds, on `SplitMix64`: the same seed gives the same
//! draws on every platform.

use std::f64::consts::PI;

use fresco_test_models::synthetic::SplitMix64;

/// Standard normal draw (Box–Muller, one of the pair).
pub fn normal(rng: &mut SplitMix64) -> f64 {
    let u = 1.0 - rng.next_f64(); // (0, 1]: ln is finite
    let v = rng.next_f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
}

/// Poisson draw: Knuth's product method in chunks of mean ≤ 30 (exact, and no
/// underflow of `exp(-mean)` for large means).
pub fn poisson(rng: &mut SplitMix64, mean: f64) -> u32 {
    let mut left = mean.max(0.0);
    let mut total = 0;
    while left > 0.0 {
        let chunk = left.min(30.0);
        left -= chunk;
        let limit = (-chunk).exp();
        let mut product = rng.next_f64();
        while product > limit {
            total += 1;
            product *= rng.next_f64();
        }
    }
    total
}

/// Exponential draw with the given mean.
pub fn exponential(rng: &mut SplitMix64, mean: f64) -> f64 {
    -mean * (1.0 - rng.next_f64()).ln()
}
