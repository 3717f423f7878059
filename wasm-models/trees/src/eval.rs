//! The native evaluator: the reference semantics every backend must reproduce.

use crate::ir::{
    CategoricalFlavor, CategoricalSplit, Comparison, Ensemble, Missing, Node, NumericSplit, Precision, SplitTest,
    Transform, Tree,
};
use crate::math;

/// LightGBM's zero threshold for `missing_type=Zero` (`kZeroThreshold`).
pub const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;
/// XGBoost refuses category codes at or above 2^24 (not exact in `f32`).
pub const XGB_MAX_CATEGORY: f64 = 16_777_216.0;

impl Ensemble {
    /// Scores one row (`n_features` values, NaN = missing) into `out` (`n_outputs`
    /// values), exactly as the source library does.
    ///
    /// # Panics
    ///
    /// If `row` or `out` is shorter than the model's widths.
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) {
        let mut scratch = vec![0.0; self.n_groups];
        self.predict_row_with(row, out, &mut scratch);
    }

    /// [`Ensemble::predict_row`] with a caller-provided scratch buffer of `n_groups`
    /// values, so that a loop over rows allocates nothing.
    pub fn predict_row_with(&self, row: &[f64], out: &mut [f64], scores: &mut [f64]) {
        scores.copy_from_slice(&self.base_score);
        for tree in &self.trees {
            let leaf = tree.leaf_value_in(row, self.precision);
            let s = &mut scores[tree.group];
            *s = match self.precision {
                Precision::F64 => *s + leaf,
                Precision::F32 => f64::from(*s as f32 + leaf as f32),
            };
        }
        if self.average {
            for (g, s) in scores.iter_mut().enumerate() {
                let count = self.trees.iter().filter(|t| t.group == g).count();
                if count > 0 {
                    *s /= count as f64;
                }
            }
        }
        apply_transform(self.transform, self.precision, scores, out);
    }

    /// Scores many rows (row-major).
    pub fn predict(&self, rows: &[f64]) -> Vec<f64> {
        let (n_in, n_out) = (self.n_features(), self.n_outputs());
        let n_rows = rows.len().checked_div(n_in).unwrap_or(0);
        let mut out = vec![0.0; n_rows * n_out];
        let mut scratch = vec![0.0; self.n_groups];
        for (row, o) in rows.chunks_exact(n_in.max(1)).zip(out.chunks_exact_mut(n_out.max(1))) {
            self.predict_row_with(row, o, &mut scratch);
        }
        out
    }
}

impl Tree {
    /// The value of the leaf `row` reaches, comparing in double precision.
    pub fn leaf_value(&self, row: &[f64]) -> f64 {
        self.leaf_value_in(row, Precision::F64)
    }

    /// The value of the leaf `row` reaches, each value first rounded to `precision`.
    pub fn leaf_value_in(&self, row: &[f64], precision: Precision) -> f64 {
        let mut i = 0usize;
        loop {
            match &self.nodes[i] {
                Node::Leaf(v) => return *v,
                Node::Split(split) => {
                    let x = row[split.feature as usize];
                    let x = match precision {
                        Precision::F64 => x,
                        Precision::F32 => f64::from(x as f32),
                    };
                    let left = match &split.test {
                        SplitTest::Numeric(s) => numeric_goes_left(s, x),
                        SplitTest::Categorical(c) => categorical_goes_left(c, x),
                    };
                    i = if left { split.left } else { split.right } as usize;
                }
            }
        }
    }
}

/// Whether `x` goes left at a numeric split.
pub fn numeric_goes_left(s: &NumericSplit, x: f64) -> bool {
    let mut x = x;
    if x.is_nan() {
        match s.missing {
            Missing::NanIsMissing => return s.default_left,
            Missing::NanToZero | Missing::ZeroIsMissing => x = 0.0,
        }
    }
    if s.missing == Missing::ZeroIsMissing && (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x) {
        return s.default_left;
    }
    match s.comparison {
        Comparison::LessOrEqual => x <= s.threshold,
        Comparison::Less => x < s.threshold,
    }
}

/// Whether `x` goes left at a categorical split.
pub fn categorical_goes_left(c: &CategoricalSplit, x: f64) -> bool {
    match c.flavor {
        CategoricalFlavor::LightGbm => {
            // C++ `static_cast<int>`: truncation; out-of-range values become INT_MIN on x86.
            if x.is_nan() || x <= -1.0 || x >= 2_147_483_648.0 {
                return false;
            }
            c.contains(x.trunc() as u32)
        }
        CategoricalFlavor::XgBoost => {
            if x.is_nan() {
                return c.default_left;
            }
            if !(0.0..XGB_MAX_CATEGORY).contains(&x) {
                return true;
            }
            !c.contains(x as u32)
        }
    }
}

/// Turns group scores into outputs.
pub fn apply_transform(transform: Transform, precision: Precision, scores: &[f64], out: &mut [f64]) {
    match (transform, precision) {
        (Transform::Identity, _) => out.copy_from_slice(scores),
        (Transform::SignedSquare, _) => {
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = lightgbm_sign(s) * s * s;
            }
        }
        (Transform::Sigmoid { scale }, Precision::F64) => {
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = 1.0 / (1.0 + math::exp(-scale * s));
            }
        }
        (Transform::Sigmoid { .. }, Precision::F32) => {
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = f64::from(sigmoid_f32(s as f32));
            }
        }
        (Transform::Exp, Precision::F64) => {
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = math::exp(s);
            }
        }
        (Transform::Exp, Precision::F32) => {
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = f64::from(math::expf(s as f32));
            }
        }
        (Transform::Softmax, Precision::F64) => {
            // LightGBM: `wmax = std::max(rec[i], wmax)`, i.e. keep wmax only if rec[i] < wmax.
            let max = scores.iter().copied().fold(scores[0], |m, s| if s < m { m } else { s });
            let mut sum = 0.0;
            for (o, &s) in out.iter_mut().zip(scores) {
                *o = math::exp(s - max);
                sum += *o;
            }
            for o in out.iter_mut() {
                *o /= sum;
            }
        }
        (Transform::Softmax, Precision::F32) => {
            // XGBoost 3: `wmax = *start`, then `fmaxf` with the others (which `f32::max`
            // is: a NaN loses to a number). Starting from FLT_MIN instead, as XGBoost once
            // did, shifts rows whose scores are all negative by an ulp.
            let first = scores.first().copied().unwrap_or(0.0) as f32;
            let max = scores.iter().skip(1).fold(first, |m, &s| (s as f32).max(m));
            let mut sum = 0.0f64;
            for (o, &s) in out.iter_mut().zip(scores) {
                let e = math::expf(s as f32 - max);
                *o = f64::from(e);
                sum += f64::from(e);
            }
            let sum = sum as f32;
            for o in out.iter_mut() {
                *o = f64::from(*o as f32 / sum);
            }
        }
        (Transform::ArgMax, _) => {
            let mut best = 0usize;
            for (i, &s) in scores.iter().enumerate() {
                if s > scores[best] {
                    best = i;
                }
            }
            out[0] = best as f64;
        }
    }
}

/// LightGBM's `Common::Sign`: 1, -1, or 0 (also for NaN).
pub fn lightgbm_sign(x: f64) -> f64 {
    f64::from(i32::from(x > 0.0) - i32::from(x < 0.0))
}

/// XGBoost's `common::Sigmoid` in `float`.
pub fn sigmoid_f32(x: f32) -> f32 {
    const EPS: f32 = 1e-16;
    // `std::min(-x, 88.7f)`: keeps -x unless 88.7 is smaller (so NaN stays NaN).
    let e = math::expf(if 88.7 < -x { 88.7 } else { -x });
    1.0 / (e + 1.0 + EPS)
}
