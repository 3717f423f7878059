//! Flags that choose a model version per request: gradual rollouts, A/B tests and kill
//! switches.
//!
//! The [`Client`](crate::Client) asks a [`FlagSource`] about a model's flag for each
//! request, keyed by the request's entity (the Unleash context's `userId`): a flag that
//! is off sends the request to the model's fallback version; a flag that is on, with a
//! variant whose payload names a loaded version, sends it to that version; otherwise
//! the serving version answers. The variant and the version that answered go into the
//! prediction log (`flag_variant`, `model_version`). Holdouts are decided separately,
//! by the holdout hash, and logged too.
//!
//! `fresco-unleash` implements [`FlagSource`] on the official Unleash SDK, against a
//! server or a snapshot of its flag state.
//!
//! ```
//! use fresco::rollout::{FlagDecision, FlagSource};
//!
//! /// Everyone with a key starting with "beta-" gets version 2.
//! struct Beta;
//! impl FlagSource for Beta {
//!     fn decide(&self, _flag: &str, key: &str) -> FlagDecision {
//!         if key.starts_with("beta-") {
//!             FlagDecision::variant("v2", Some("2"))
//!         } else {
//!             FlagDecision::on()
//!         }
//!     }
//!     fn versions(&self, _flag: &str) -> Vec<String> {
//!         vec!["2".into()]
//!     }
//! }
//! assert_eq!(Beta.decide("eta", "beta-7").payload.as_deref(), Some("2"));
//! ```

/// What a flag says for one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagDecision {
    /// Whether the flag is on for this entity. Off means the kill switch: the model's
    /// fallback version answers.
    pub enabled: bool,
    /// The variant chosen, if the flag has variants (logged as `flag_variant`).
    pub variant: Option<String>,
    /// The variant's payload: the model version it names.
    pub payload: Option<String>,
}

impl FlagDecision {
    /// The flag is off.
    pub fn off() -> Self {
        FlagDecision { enabled: false, variant: None, payload: None }
    }

    /// The flag is on, with no variant.
    pub fn on() -> Self {
        FlagDecision { enabled: true, variant: None, payload: None }
    }

    /// The flag is on and chose `variant`, whose payload is `payload`.
    pub fn variant(variant: impl Into<String>, payload: Option<&str>) -> Self {
        FlagDecision { enabled: true, variant: Some(variant.into()), payload: payload.map(str::to_owned) }
    }
}

/// A source of flag decisions (Unleash, in `fresco-unleash`).
///
/// Called on the request path: keep [`decide`](Self::decide) in memory, no I/O.
pub trait FlagSource: Send + Sync + 'static {
    /// The flag's decision for the entity `key`.
    fn decide(&self, flag: &str, key: &str) -> FlagDecision;

    /// Every version the flag's variants can name now (their payloads), so the client
    /// loads and validates them before any request is routed there.
    fn versions(&self, flag: &str) -> Vec<String>;

    /// Whether the flag state holds `flag` at all. A flag missing from it decides "off"
    /// for every key, like a flag that is off; the client says so once in its log.
    /// Sources that cannot tell answer `true` (the default).
    fn knows(&self, flag: &str) -> bool {
        let _ = flag;
        true
    }
}
