//! Shared test helpers and property-test strategies.

use arrow_array::{ArrayRef, RecordBatch};
use fresco::Value;
use parquet::arrow::ArrowWriter;
use proptest::prelude::*;

/// Any value, strings included.
pub fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>().prop_map(Value::F64),
        "\\PC{0,12}".prop_map(Value::Str),
    ]
}

pub mod logs;

/// Writes one batch of named columns to a Parquet file.
pub fn write_parquet(path: &std::path::Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}
