#![no_main]
//! Fuzzes decoding a prediction batch, the payload of the spool's `Batch` frames that a
//! restart replays (`PredictionBatch::decode`). Bytes that decode must make a batch whose
//! every row reads back; anything else must be an error, never a panic.

use std::sync::{Arc, LazyLock};

use fresco::abi::InputType;
use fresco::{LogSchema, PredictionBatch};

static SCHEMA: LazyLock<Arc<LogSchema>> = LazyLock::new(|| {
    Arc::new(LogSchema {
        model: "eta".into(),
        version: "3".into(),
        entities: vec!["restaurant_id".into(), "customer_id".into()],
        inputs: vec![("distance_km".into(), InputType::F64), ("orders_30m".into(), InputType::I64)],
        outputs: vec!["q50".into()],
    })
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = PredictionBatch::decode(SCHEMA.clone(), data) {
        assert_eq!(batch.to_records().len(), batch.len());
        // Compared as bytes: NaN inputs are not equal to themselves.
        let again = batch.encode().expect("a decoded batch encodes");
        let twice = PredictionBatch::decode(SCHEMA.clone(), &again).expect("and decodes again");
        assert_eq!(twice.encode().expect("and encodes again"), again);
    }
});
