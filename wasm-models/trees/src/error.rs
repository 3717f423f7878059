//! Why a model file was refused.

/// A model file that cannot be turned into an [`Ensemble`](crate::Ensemble).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The file's syntax is wrong: a missing key, a non-numeric value, bad JSON.
    #[error("{format} model: {location}: {reason}")]
    Syntax {
        /// `lightgbm` or `xgboost`.
        format: &'static str,
        /// Where: a line number, a tree and field, a JSON path.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The file parses but describes an impossible model: wrong counts, indices out of
    /// range, cycles, absurd sizes.
    #[error("{format} model: {location}: {reason}")]
    Structure {
        /// `lightgbm` or `xgboost`.
        format: &'static str,
        /// `model`, `tree 3`, or `tree 3 `threshold``.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A valid model using a feature fresco does not support.
    #[error("{format} model: unsupported: {what}")]
    Unsupported {
        /// `lightgbm` or `xgboost`.
        format: &'static str,
        /// The feature.
        what: String,
    },
}

impl ParseError {
    pub(crate) fn syntax(format: &'static str, location: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError::Syntax { format, location: location.into(), reason: reason.into() }
    }

    pub(crate) fn structure(format: &'static str, location: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError::Structure { format, location: location.into(), reason: reason.into() }
    }

    /// A structural error in the model as a whole.
    pub(crate) fn model(format: &'static str, reason: impl Into<String>) -> Self {
        Self::structure(format, "model", reason)
    }

    /// A structural error in one tree.
    pub(crate) fn tree(format: &'static str, index: usize, reason: impl Into<String>) -> Self {
        Self::structure(format, format!("tree {index}"), reason)
    }

    pub(crate) fn unsupported(format: &'static str, what: impl Into<String>) -> Self {
        ParseError::Unsupported { format, what: what.into() }
    }
}
