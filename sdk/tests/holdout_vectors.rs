//! Holdout assignment against vectors computed by an independent implementation
//! (Python `mmh3`), committed as `testdata/holdout_vectors.json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco::holdout::{Holdout, bucket, murmur3_x86_32, threshold};
use proptest::prelude::*;

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/holdout_vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn matches_every_reference_case() {
    let v = vectors();
    let thresholds = v["thresholds"].as_object().unwrap();
    for (key, expected) in thresholds {
        let fraction: f64 = key.parse().unwrap();
        assert_eq!(u64::from(threshold(fraction)), expected.as_u64().unwrap(), "threshold({key})");
    }
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() > 500);
    for case in cases {
        let salt = case["salt"].as_str().unwrap();
        let id = case["id"].as_str().unwrap();
        assert_eq!(u64::from(murmur3_x86_32(salt, id)), case["murmur3_x86_32"].as_u64().unwrap(), "{salt:?} {id:?}");
        assert_eq!(u64::from(bucket(salt, id)), case["bucket"].as_u64().unwrap());
        for (key, expected) in case["in_holdout"].as_object().unwrap() {
            let holdout = Holdout::new("h", salt, key.parse().unwrap()).unwrap();
            assert_eq!(holdout.contains(id), expected.as_bool().unwrap(), "{salt:?} {id:?} at {key}");
        }
    }
}

#[test]
fn refuses_bad_fractions() {
    for bad in [-0.1, 1.0000001, f64::NAN, f64::INFINITY] {
        assert!(Holdout::new("h", "s", bad).is_err(), "{bad}");
    }
    assert!(Holdout::new("", "s", 0.1).is_err());
}

proptest! {
    #[test]
    fn buckets_are_in_range_and_monotone_in_fraction(salt in ".*", id in ".*", a in 0.0f64..=1.0, b in 0.0f64..=1.0) {
        let bkt = bucket(&salt, &id);
        prop_assert!(bkt < 10_000);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        // Anyone held out at a smaller fraction is held out at a larger one.
        let small = Holdout::new("h", salt.clone(), lo).unwrap();
        let large = Holdout::new("h", salt, hi).unwrap();
        prop_assert!(!small.contains(&id) || large.contains(&id));
    }
}
