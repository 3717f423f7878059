#![no_main]
//! Fuzzes the LightGBM text parser.

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(ensemble) = fresco_trees::lightgbm::parse(text) {
            common::exercise(ensemble);
        }
    }
});
