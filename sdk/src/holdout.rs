//! Holdout assignment (docs/design.md §5).
//!
//! `bucket(salt, id) = murmur3_x86_32(utf8(salt + ":" + id), seed 0) mod 10000`, and an
//! entity is in the holdout iff `bucket < floor(fraction · 10000 + 0.5)`. The same rule
//! in Python is `mmh3.hash((salt + ":" + id).encode(), 0, signed=False) % 10000`, so
//! analysts can recompute any assignment.
//!
//! Entities in a holdout are scored and logged, but never treated: their outcomes are the
//! untreated baseline that the next model learns from.

use std::io::Read;
use std::sync::Arc;

/// Number of buckets entities are hashed into.
pub const BUCKETS: u32 = 10_000;

/// The bucket of `id` under `salt`, in `0..10000`.
///
/// ```
/// assert_eq!(fresco::holdout::bucket("eta-promo", "user-1"), 6152);
/// ```
pub fn bucket(salt: &str, id: &str) -> u32 {
    murmur3_x86_32(salt, id) % BUCKETS
}

/// murmur3_x86_32 of `salt:id` with seed 0, as `mmh3.hash(..., signed=False)` gives it.
pub fn murmur3_x86_32(salt: &str, id: &str) -> u32 {
    let mut input = salt.as_bytes().chain(&b":"[..]).chain(id.as_bytes());
    // Reading from in-memory slices cannot fail.
    murmur3::murmur3_32(&mut input, 0).unwrap_or(0)
}

/// Buckets below this threshold are in a holdout of `fraction`: `floor(fraction · 10000 + 0.5)`.
///
/// Halves round up (`0.00005` → 1 bucket), unlike Python's banker's `round`.
///
/// ```
/// assert_eq!(fresco::holdout::threshold(0.05), 500);
/// assert_eq!(fresco::holdout::threshold(0.00005), 1);
/// ```
pub fn threshold(fraction: f64) -> u32 {
    // Callers validate fraction ∈ [0, 1], so the result is in 0..=10000.
    (fraction * f64::from(BUCKETS) + 0.5).floor() as u32
}

/// A named holdout: a salt and the fraction of entities held out.
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Shared by every decision made under it (`HoldoutDecision::name`).
    name: Arc<str>,
    salt: String,
    fraction: f64,
    threshold: u32,
}

/// An entity's assignment under one holdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The entity's bucket, `0..10000`.
    pub bucket: u32,
    /// Whether the entity is held out (scored and logged, never treated).
    pub in_holdout: bool,
}

/// Why a holdout definition was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HoldoutError {
    /// The fraction is not a number in `[0, 1]`.
    #[error("holdout `{name}`: fraction {fraction} is not in [0, 1]")]
    Fraction {
        /// The holdout.
        name: String,
        /// The fraction given.
        fraction: f64,
    },
    /// The name is empty.
    #[error("a holdout needs a non-empty name")]
    EmptyName,
}

impl Holdout {
    /// Defines a holdout. The salt decides which entities fall in it: changing the salt
    /// reshuffles everyone, so keep it fixed for the holdout's life.
    pub fn new(name: impl Into<String>, salt: impl Into<String>, fraction: f64) -> Result<Self, HoldoutError> {
        let name = name.into();
        if name.is_empty() {
            return Err(HoldoutError::EmptyName);
        }
        if !(0.0..=1.0).contains(&fraction) {
            return Err(HoldoutError::Fraction { name, fraction });
        }
        Ok(Holdout { name: name.into(), salt: salt.into(), fraction, threshold: threshold(fraction) })
    }

    /// The holdout's name, as logged in the `holdout` column.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, to share instead of copying it.
    // Read by the Client only.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// The fraction held out.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Buckets below this are held out.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// Assigns an entity.
    ///
    /// ```
    /// let h = fresco::holdout::Holdout::new("eta-promo", "eta-promo", 0.999)?;
    /// let a = h.assign("user-1");
    /// assert_eq!((a.bucket, a.in_holdout), (6152, true));
    /// # Ok::<(), fresco::holdout::HoldoutError>(())
    /// ```
    pub fn assign(&self, id: &str) -> Assignment {
        let bucket = bucket(&self.salt, id);
        Assignment { bucket, in_holdout: bucket < self.threshold }
    }

    /// Whether an entity is held out.
    pub fn contains(&self, id: &str) -> bool {
        self.assign(id).in_holdout
    }
}
