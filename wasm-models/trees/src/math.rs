//! Exponentials with one exact definition, shared by every backend.
//!
//! WebAssembly has no `exp` instruction, so generated modules carry their own. To keep
//! the native evaluator and the WebAssembly modules bitwise identical, both use the
//! functions here, written only with IEEE-754 `+ - × ÷`, rounding and bit operations that
//! WebAssembly performs identically on every engine:
//!
//! - [`exp`]: double precision, within 2 ulp of the true value (LightGBM's transforms
//!   tolerate far more: 1e-9 relative is the contract).
//! - [`expf`]: single precision, the same algorithm, table and coefficients as glibc's
//!   `expf` (from ARM's optimized-routines), so XGBoost's `float` transforms are
//!   reproduced bit for bit.

/// Builds `1.mantissa × 2^exp` from a hex-float literal's parts.
const fn hexf(mantissa: u64, exp: i64) -> f64 {
    f64::from_bits((((1023 + exp) as u64) << 52) | mantissa)
}

/// High part of ln 2: its low bits are zero, so `k · LN2_HI` is exact for |k| < 2^11.
pub const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
/// `ln 2 - LN2_HI`.
pub const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// Beyond these, `exp` overflows to +∞ or underflows to 0.
pub const EXP_OVERFLOW: f64 = 709.782712893384;
/// See [`EXP_OVERFLOW`].
pub const EXP_UNDERFLOW: f64 = -745.1332191019412;

/// Taylor coefficients 1/k! for k = 13 down to 2.
pub const EXP_POLY: [f64; 12] = [
    1.0 / 6227020800.0,
    1.0 / 479001600.0,
    1.0 / 39916800.0,
    1.0 / 3628800.0,
    1.0 / 362880.0,
    1.0 / 40320.0,
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// `e^x` in double precision.
///
/// `x = k·ln 2 + r` with `|r| ≤ ln2/2` (Cody–Waite), `e^r` by a degree-13 Taylor
/// polynomial in Horner form, then scaling by `2^k` in two steps so that subnormal
/// results are reached without an out-of-range exponent.
///
/// ```
/// let e = fresco_trees::math::exp(1.0);
/// assert!((e - std::f64::consts::E).abs() <= 2.0 * f64::EPSILON * e);
/// ```
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > EXP_OVERFLOW {
        return f64::INFINITY;
    }
    if x < EXP_UNDERFLOW {
        return 0.0;
    }
    let k = (x * LOG2_E).round_ties_even();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    p = p * r + 1.0;
    p = p * r + 1.0;
    scale_by_power_of_two(p, k as i64)
}

/// `x · 2^k` as two multiplications by in-range powers of two.
pub fn scale_by_power_of_two(x: f64, k: i64) -> f64 {
    let half = k / 2;
    x * pow2(half) * pow2(k - half)
}

/// `2^k` for `-1022 ≤ k ≤ 1023`.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Table size of [`expf`]: 2^5 entries.
pub const EXPF_TABLE_BITS: u32 = 5;
const EXPF_N: f64 = (1u32 << EXPF_TABLE_BITS) as f64;
/// `N / ln 2`.
pub const EXPF_INV_LN2_N: f64 = hexf(0x71547652b82fe, 0) * EXPF_N;
/// Rounding shift: adding then subtracting it rounds to an integer.
pub const EXPF_SHIFT: f64 = hexf(0x8000000000000, 52);
/// Polynomial for `2^(r/N)`, scaled for `r` in units of `1/N`.
pub const EXPF_POLY: [f64; 3] = [
    hexf(0xc6af84b912394, -5) / EXPF_N / EXPF_N / EXPF_N,
    hexf(0xebfce50fac4f3, -3) / EXPF_N / EXPF_N,
    hexf(0x62e42ff0c52d6, -1) / EXPF_N,
];

/// `bits(2^(i/N)) - (i << 52)/N` for `i` in `0..N`.
pub fn expf_table() -> [u64; 32] {
    let mut table = [0u64; 32];
    for (i, entry) in table.iter_mut().enumerate() {
        let value = (i as f64 / EXPF_N).exp2();
        *entry = value.to_bits().wrapping_sub((i as u64) << (52 - EXPF_TABLE_BITS));
    }
    table
}

/// `e^x` in single precision, bitwise equal to glibc's `expf`.
///
/// ```
/// let x = 1.5f32;
/// assert_eq!(fresco_trees::math::expf(x), x.exp());
/// ```
pub fn expf(x: f32) -> f32 {
    expf_with(expf_table_cached(), x)
}

fn expf_table_cached() -> &'static [u64; 32] {
    static TABLE: std::sync::OnceLock<[u64; 32]> = std::sync::OnceLock::new();
    TABLE.get_or_init(expf_table)
}

/// [`expf`] with an explicit table (the code generator emits the same steps).
pub fn expf_with(table: &[u64; 32], x: f32) -> f32 {
    let bits = x.to_bits();
    let abstop = (bits >> 20) & 0x7ff;
    if abstop >= (88.0f32.to_bits() >> 20) {
        if bits == f32::NEG_INFINITY.to_bits() {
            return 0.0;
        }
        if abstop >= (f32::INFINITY.to_bits() >> 20) {
            return x + x;
        }
        if x > f32::from_bits(0x42b1_7217) {
            return f32::INFINITY;
        }
        if x < f32::from_bits(0xc2cf_f1b4) {
            return 0.0;
        }
    }
    let xd = f64::from(x);
    let z = EXPF_INV_LN2_N * xd;
    let kd = z + EXPF_SHIFT;
    let ki = kd.to_bits();
    let kd = kd - EXPF_SHIFT;
    let r = z - kd;
    let t = table[(ki % 32) as usize].wrapping_add(ki << (52 - EXPF_TABLE_BITS));
    let s = f64::from_bits(t);
    let z = EXPF_POLY[0] * r + EXPF_POLY[1];
    let r2 = r * r;
    let y = EXPF_POLY[2] * r + 1.0;
    let y = z * r2 + y;
    (y * s) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut x = -745.0f64;
        while x < 709.7 {
            let (ours, libm) = (exp(x), x.exp());
            let ulps = (ours.to_bits() as i64 - libm.to_bits() as i64).abs();
            assert!(ulps <= 2 || (libm < 1e-300), "exp({x}) = {ours}, libm {libm}");
            x += 0.0137;
        }
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn expf_matches_the_platform_expf_bit_for_bit() {
        // Every 97th float between -110 and 95, and specials.
        let start = (-110.0f32).to_bits();
        let mut mismatches = Vec::new();
        let mut checked = 0u64;
        let mut b = (95.0f32).to_bits();
        while b > 0 {
            let x = f32::from_bits(b);
            if expf(x).to_bits() != x.exp().to_bits() && mismatches.len() < 10 {
                mismatches.push(x);
            }
            checked += 1;
            b = b.saturating_sub(97);
        }
        let mut b = 0x8000_0000u32;
        while b <= start {
            let x = f32::from_bits(b);
            if expf(x).to_bits() != x.exp().to_bits() && mismatches.len() < 10 {
                mismatches.push(x);
            }
            checked += 1;
            b += 97;
        }
        assert!(mismatches.is_empty(), "{} checked, mismatches at {mismatches:?}", checked);
        for x in [f32::INFINITY, f32::NEG_INFINITY, 88.8, -104.0, 0.0, -0.0] {
            assert_eq!(expf(x).to_bits(), x.exp().to_bits(), "{x}");
        }
        assert!(expf(f32::NAN).is_nan());
    }
}
