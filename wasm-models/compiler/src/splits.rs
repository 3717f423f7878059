//! How one split compares, in the form every layout generates: a `<=` threshold and a
//! fixed side for NaN. The leaf of the compiler's modules: `branches`, `ranks` and
//! `layout` all build on it, and it on nothing of theirs.

use fresco_trees::{Comparison, Ensemble, Missing, NumericSplit, Precision};
use wasm_encoder::InstructionSink;

/// Normalized `<=` threshold and whether NaN goes left, for a numeric split.
pub(crate) fn numeric_plan(e: &Ensemble, n: &NumericSplit) -> (f64, bool) {
    let t = match n.comparison {
        Comparison::LessOrEqual => n.threshold,
        Comparison::Less => largest_below(n.threshold, e.precision),
    };
    // NaN → 0 compared against t is the same as a fixed default branch.
    let default_left = if n.missing == Missing::NanToZero { 0.0 <= t } else { n.default_left };
    (t, default_left)
}

/// The largest value of the given precision below `t`: for values `x` of that precision,
/// `x < t` exactly when `x <= largest_below(t)`. That turns XGBoost's strict comparison
/// into the `<=` the generated code uses.
pub fn largest_below(t: f64, precision: Precision) -> f64 {
    match precision {
        Precision::F64 => {
            if t == f64::NEG_INFINITY {
                f64::NAN // nothing is below -inf: `x <= NaN` is always false
            } else {
                t.next_down()
            }
        }
        Precision::F32 => {
            let t32 = t as f32;
            if t32 == f32::NEG_INFINITY { f64::NAN } else { f64::from(t32.next_down()) }
        }
    }
}

/// Pushes whether the f64 in local `x` stands for a category under LightGBM's rules
/// (`-1 < x < 2^31`, false for NaN): its code is then `trunc(x)`; otherwise the row goes
/// right whatever the split's categories.
pub(crate) fn lightgbm_code_in_range(s: &mut InstructionSink<'_>, x: u32) {
    s.local_get(x).f64_const((-1.0).into()).f64_gt();
    s.local_get(x).f64_const(2_147_483_648.0.into()).f64_lt().i32_and();
}
