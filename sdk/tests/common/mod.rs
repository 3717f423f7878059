//! Shared property-test strategies.

use fresco::Value;
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
