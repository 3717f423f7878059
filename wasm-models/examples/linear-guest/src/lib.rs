//! A delivery-time estimate written by hand: minutes = travel + preparation.
//!
//! Travel takes 2.5 min/km in free flow and up to twice as long in full traffic
//! (`traffic` in [0, 1]); unknown preparation time counts as 12 minutes.
//! Build: `cargo build --release --target wasm32-unknown-unknown -p fresco-example-linear-guest`.

/// Scores one row: `[distance_km, prep_min, traffic]` → `[eta_min]`.
pub fn predict(row: &[f64], out: &mut [f64]) {
    let (distance_km, prep_min, traffic) = (row[0], row[1], row[2]);
    let prep = if prep_min.is_nan() { 12.0 } else { prep_min };
    out[0] = 2.5 * distance_km * (1.0 + traffic) + prep;
}

fresco_guest::export_model! {
    metadata: include_bytes!("../model.json"),
    inputs: 3,
    outputs: 1,
    predict: predict,
}

#[cfg(test)]
mod tests {
    #[test]
    fn metadata_matches_the_code() {
        fresco_guest::check_metadata(super::FRESCO_MODEL_METADATA, 3, 1).unwrap();
    }

    #[test]
    fn scores() {
        let mut out = [0.0];
        super::predict(&[4.0, f64::NAN, 0.5], &mut out);
        assert_eq!(out, [27.0]);
    }
}
