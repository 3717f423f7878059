//! The manifest: which version of a model serves, and which served before it. Every
//! replica reads it, and it may have been edited by hand, so it is parsed strictly.

use serde::{Deserialize, Serialize};

/// The name of each model's manifest file.
pub const MANIFEST: &str = "manifest.json";

/// Which version of a model serves, and which served before it (for rollback).
///
/// ```
/// use fresco::registry::Manifest;
///
/// let manifest = Manifest::from_json(br#"{"serving": "4", "previous": "3"}"#)?;
/// assert_eq!((manifest.serving.as_str(), manifest.previous.as_deref()), ("4", Some("3")));
/// assert_eq!(Manifest::from_json(&manifest.to_json())?, manifest);
/// // A version must be a plain directory name.
/// assert!(Manifest::from_json(br#"{"serving": "../4"}"#).is_err());
/// # Ok::<(), fresco::registry::ManifestError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The version that serves.
    pub serving: String,
    /// The version that served before, kept loaded for an instant rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON of the form `{"serving": "4", "previous": "3"}`.
    #[error("expected {{\"serving\": \"<version>\", \"previous\": \"<version>\"}}: {reason}")]
    Malformed {
        /// What the JSON parser said.
        reason: String,
    },
    /// A version that is not a plain directory name.
    #[error(transparent)]
    Name(#[from] InvalidName),
}

/// A model or version name that is not a plain directory name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not a valid {what} name: use letters, digits, `.`, `_` and `-` (not starting with `.`)")]
pub struct InvalidName {
    /// "model" or "version".
    pub what: &'static str,
    /// The name given.
    pub name: String,
}

/// Model and version names become directory names: keep them to a safe alphabet so a
/// name can never climb out of the registry (`..`, `/`).
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), InvalidName> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(InvalidName { what, name: name.to_owned() }) }
}

impl Manifest {
    /// Parses a manifest and checks its version names.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed { reason: e.to_string() })?;
        check_name("version", &manifest.serving)?;
        if let Some(previous) = &manifest.previous {
            check_name("version", previous)?;
        }
        Ok(manifest)
    }

    /// The manifest as pretty-printed JSON, the form [`from_json`](Self::from_json) reads.
    pub fn to_json(&self) -> Vec<u8> {
        // Two strings cannot fail to serialize.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}
