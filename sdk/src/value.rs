//! Typed feature values and their conversion to model inputs.
//!
//! Everything a model scores travels as `f64` (ABI v1), but features arrive typed: from
//! the feature store, from the request, from an aggregate. [`Value::to_model_input`] is
//! the one place where a typed value becomes the `f64` a model input of a declared
//! [`InputType`] receives, and it refuses every conversion that would lose information.

use core::fmt;

use fresco_abi::InputType;
use serde::{Deserialize, Serialize};

/// Largest integer magnitude an `f64` holds exactly (2^53).
pub const MAX_EXACT_F64_INT: i64 = 1 << 53;
/// Largest integer magnitude an `f32` holds exactly (2^24).
pub const MAX_EXACT_F32_INT: i64 = 1 << 24;

/// One typed feature value.
///
/// ```
/// use fresco::Value;
///
/// assert_eq!(Value::from(3), Value::I64(3));
/// assert_eq!(Value::from("r-17"), Value::Str("r-17".into()));
/// assert_eq!(Value::from(None::<f64>), Value::Null);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Value {
    /// No value: the feature is missing.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    I64(i64),
    /// A float. NaN means missing, as in the model ABI.
    F64(f64),
    /// A string (entity keys, categories before encoding, free text).
    Str(String),
}

/// The type of a stored feature column.
///
/// ```
/// use fresco::{Value, ValueType};
///
/// assert!(ValueType::F64.admits(&Value::F64(1.5)));
/// assert!(ValueType::F64.admits(&Value::Null));
/// assert!(!ValueType::I64.admits(&Value::Str("x".into())));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// [`Value::Bool`].
    Bool,
    /// [`Value::I64`].
    I64,
    /// [`Value::F64`].
    F64,
    /// [`Value::Str`].
    Str,
}

impl ValueType {
    /// Whether `value` may be stored in a column of this type (`Null` always may).
    pub fn admits(self, value: &Value) -> bool {
        matches!(
            (self, value),
            (_, Value::Null)
                | (ValueType::Bool, Value::Bool(_))
                | (ValueType::I64, Value::I64(_))
                | (ValueType::F64, Value::F64(_))
                | (ValueType::Str, Value::Str(_))
        )
    }

    /// Lower-case name, as in error messages and config files.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Bool => "bool",
            ValueType::I64 => "i64",
            ValueType::F64 => "f64",
            ValueType::Str => "str",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a value cannot become a model input of the declared type.
///
/// ```
/// use fresco::{Value, abi::InputType};
///
/// let err = Value::from("fast").to_model_input(InputType::F64).unwrap_err();
/// assert_eq!(err.to_string(), "expected f64, got the string \"fast\"");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected {}, got {found}", input_type_name(*.expected))]
pub struct ConversionError {
    /// The model's declared input type.
    pub expected: InputType,
    /// What was offered, described for a person (`the string "fast"`, `the integer 2^60`).
    pub found: String,
}

/// Lower-case name of a model input type.
pub fn input_type_name(ty: InputType) -> &'static str {
    match ty {
        InputType::F64 => "f64",
        InputType::F32 => "f32",
        InputType::I64 => "i64",
        InputType::Bool => "bool",
        InputType::Categorical => "a category code (non-negative integer)",
    }
}

impl Value {
    /// Whether this is [`Value::Null`] or a NaN float.
    pub fn is_missing(&self) -> bool {
        match self {
            Value::Null => true,
            Value::F64(x) => x.is_nan(),
            _ => false,
        }
    }

    /// The type of this value, `None` for `Null`.
    pub fn value_type(&self) -> Option<ValueType> {
        match self {
            Value::Null => None,
            Value::Bool(_) => Some(ValueType::Bool),
            Value::I64(_) => Some(ValueType::I64),
            Value::F64(_) => Some(ValueType::F64),
            Value::Str(_) => Some(ValueType::Str),
        }
    }

    /// The `f64` a model input of type `ty` receives for this value; NaN when missing.
    ///
    /// Conversions happen only where no information is lost: an integer becomes a float
    /// when the float holds it exactly, a float becomes an integer or category code only
    /// when it is one, a boolean becomes 0 or 1. A string is never a number.
    ///
    /// ```
    /// use fresco::{Value, abi::InputType};
    ///
    /// assert_eq!(Value::I64(7).to_model_input(InputType::F64)?, 7.0);
    /// assert_eq!(Value::Bool(true).to_model_input(InputType::Bool)?, 1.0);
    /// assert_eq!(Value::F64(3.0).to_model_input(InputType::Categorical)?, 3.0);
    /// assert!(Value::Null.to_model_input(InputType::F64)?.is_nan());
    /// // 2^53 + 1 has no exact f64.
    /// assert!(Value::I64((1 << 53) + 1).to_model_input(InputType::F64).is_err());
    /// assert!(Value::F64(2.5).to_model_input(InputType::I64).is_err());
    /// # Ok::<(), fresco::value::ConversionError>(())
    /// ```
    pub fn to_model_input(&self, ty: InputType) -> Result<f64, ConversionError> {
        let refuse = || ConversionError { expected: ty, found: self.describe() };
        match (self, ty) {
            (Value::Null, _) => Ok(f64::NAN),
            (Value::F64(x), _) if x.is_nan() => Ok(f64::NAN),
            (Value::Str(_), _) => Err(refuse()),

            // An f32 model rounds its f64 input itself, exactly as its library does.
            (Value::F64(x), InputType::F64 | InputType::F32) => Ok(*x),
            (Value::F64(x), InputType::I64) => exact_integer(*x).ok_or_else(refuse),
            (Value::F64(x), InputType::Categorical) => exact_integer(*x).filter(|v| *v >= 0.0).ok_or_else(refuse),
            (Value::F64(x), InputType::Bool) => {
                if *x == 0.0 || *x == 1.0 {
                    Ok(*x)
                } else {
                    Err(refuse())
                }
            }

            (Value::I64(i), InputType::F64 | InputType::I64) => {
                if i.unsigned_abs() <= MAX_EXACT_F64_INT as u64 {
                    Ok(*i as f64)
                } else {
                    Err(refuse())
                }
            }
            (Value::I64(i), InputType::F32) => {
                if i.unsigned_abs() <= MAX_EXACT_F32_INT as u64 {
                    Ok(*i as f64)
                } else {
                    Err(refuse())
                }
            }
            (Value::I64(i), InputType::Categorical) => {
                if (0..=MAX_EXACT_F64_INT).contains(i) {
                    Ok(*i as f64)
                } else {
                    Err(refuse())
                }
            }
            (Value::I64(i), InputType::Bool) => match i {
                0 | 1 => Ok(*i as f64),
                _ => Err(refuse()),
            },

            (Value::Bool(_), InputType::Categorical) => Err(refuse()),
            (Value::Bool(b), _) => Ok(if *b { 1.0 } else { 0.0 }),
        }
    }

    /// A short description for error messages: `the string "x"`, `the float 2.5`.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::I64(i) => format!("the integer {i}"),
            Value::F64(x) => format!("the float {x}"),
            Value::Str(s) if s.chars().count() > 64 => {
                let head: String = s.chars().take(64).collect();
                format!("the string {head:?}…")
            }
            Value::Str(s) => format!("the string {s:?}"),
        }
    }
}

fn exact_integer(x: f64) -> Option<f64> {
    (x.is_finite() && x.fract() == 0.0 && x.abs() <= MAX_EXACT_F64_INT as f64).then_some(x)
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::F64(x)
    }
}

impl From<f32> for Value {
    fn from(x: f32) -> Self {
        Value::F64(x as f64)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::I64(i)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::I64(i as i64)
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::I64(i as i64)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_long_strings_briefly() {
        let v = Value::Str("x".repeat(1000));
        assert!(v.describe().chars().count() < 90);
    }
}
