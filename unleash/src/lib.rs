//! Unleash flags for fresco: which model version answers each request.
//!
//! [`UnleashFlags`] is a [`fresco::rollout::FlagSource`] on the official Unleash Rust
//! SDK (`unleash-api-client`, evaluating with Unleash's own engine). One flag per model:
//! its variants name versions (payload = the version), a gradual rollout (strategy
//! `flexibleRollout`, stickiness `userId`) decides who gets which, and turning the flag
//! off is the kill switch. The entity key of each request is the context's `userId`.
//!
//! Two ways to get flag state, usable together:
//!
//! - `UnleashFlags::connect`: poll a server (`GET /api/client/features`) every
//!   refresh interval; when the server goes away the last state keeps serving. Cargo
//!   feature `server` (default); without it no HTTP client or async runtime is built.
//! - a snapshot: the body of that endpoint, saved to a file or held in memory, for edge
//!   devices with no server ([`UnleashFlags::from_snapshot`]), or as the state used
//!   until the first poll answers ([`UnleashConfig::snapshot`]).
//!
//! ```
//! use fresco::rollout::FlagSource;
//! use fresco_unleash::UnleashFlags;
//!
//! let snapshot = r#"{"version": 2, "features": [{
//!     "name": "eta-model", "enabled": true,
//!     "strategies": [{"name": "flexibleRollout",
//!         "parameters": {"rollout": "100", "stickiness": "userId", "groupId": "eta-model"},
//!         "variants": [{"name": "v4", "weight": 1000, "stickiness": "userId",
//!                       "payload": {"type": "string", "value": "4"}}]}]}]}"#;
//! let flags = UnleashFlags::from_snapshot(snapshot.as_bytes())?;
//! let decision = flags.decide("eta-model", "rider-17");
//! assert!(decision.enabled);
//! assert_eq!(decision.variant.as_deref(), Some("v4"));
//! assert_eq!(decision.payload.as_deref(), Some("4"));
//! assert_eq!(flags.versions("eta-model"), ["4"]);
//! # Ok::<(), fresco_unleash::FlagError>(())
//! ```

mod flags;
#[cfg(feature = "server")]
mod poll;
mod validate;

pub use flags::{FlagError, FlagStats, UnleashConfig, UnleashFlags};
/// The Unleash evaluation context (user id, properties, ...), for callers that evaluate
/// flags beyond fresco's entity-key routing.
pub use unleash_api_client::Context;
