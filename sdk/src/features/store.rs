use std::sync::Arc;

use super::{FeatureValue, FeatureView, Timestamp};

/// A source of stored features: the embedded store, or a remote one.
///
/// Lookups are batched: one call fetches some features of one view for many entities,
/// so a remote store pays one round trip per view and batch. Implementations are
/// `Send + Sync` and may block; the [`Client`](crate::Client)'s async API calls them on
/// tokio's blocking pool, never on the async workers.
///
/// A store that fails returns an error; the client then scores with the features marked
/// [`Unavailable`](super::FeatureStatus::Unavailable) (the model's missing-value policy
/// applies) and counts the degradation, rather than failing the prediction.
///
/// ```
/// use fresco::{EmbeddedStore, FeatureStore, FeatureView, Timestamp, Value, ValueType};
///
/// let store = EmbeddedStore::in_memory()?;
/// store.define_view(FeatureView::new("users", "user_id").feature("age", ValueType::I64))?;
/// store.write("users", "u1", Timestamp::from_secs(1_700_000_000), &[Value::I64(31)])?;
///
/// let rows = store.get_features("users", &["u1", "u2"], &["age"], Timestamp::now())?;
/// assert_eq!(rows[0][0].value, Value::I64(31));
/// assert_eq!(rows[1][0].status, fresco::FeatureStatus::Missing);
/// # Ok::<(), fresco::StoreError>(())
/// ```
pub trait FeatureStore: Send + Sync + 'static {
    /// The definition of a view, or [`StoreError::UnknownView`].
    fn view(&self, view: &str) -> Result<Arc<FeatureView>, StoreError>;

    /// Looks up `features` of `view` for each of `entity_keys`, as of `now` (for time to
    /// live). The answer has one row per key, in order, each with one value per feature.
    fn get_features(
        &self,
        view: &str,
        entity_keys: &[&str],
        features: &[&str],
        now: Timestamp,
    ) -> Result<Vec<Vec<FeatureValue>>, StoreError>;
}

/// A shared store is a store (a service keeps a handle on it, e.g. for its readiness).
impl<S: FeatureStore + ?Sized> FeatureStore for Arc<S> {
    fn view(&self, view: &str) -> Result<Arc<FeatureView>, StoreError> {
        (**self).view(view)
    }

    fn get_features(
        &self,
        view: &str,
        entity_keys: &[&str],
        features: &[&str],
        now: Timestamp,
    ) -> Result<Vec<Vec<FeatureValue>>, StoreError> {
        (**self).get_features(view, entity_keys, features, now)
    }
}

/// Why a feature store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No view of that name.
    #[error("feature view `{view}` does not exist")]
    UnknownView {
        /// The view asked for.
        view: String,
    },
    /// The view has no such feature.
    #[error("feature view `{view}` has no feature `{feature}`")]
    UnknownFeature {
        /// The view.
        view: String,
        /// The feature asked for.
        feature: String,
    },
    /// A view definition is invalid, or conflicts with the stored one.
    #[error("feature view `{view}`: {reason}")]
    InvalidView {
        /// The view.
        view: String,
        /// What is wrong.
        reason: String,
    },
    /// A written row has the wrong number of values.
    #[error("feature view `{view}` has {expected} features, but the row for `{entity_key}` has {found} values")]
    WrongArity {
        /// The view.
        view: String,
        /// The row's entity key.
        entity_key: String,
        /// Features in the view.
        expected: usize,
        /// Values in the row.
        found: usize,
    },
    /// A written value does not have the feature's type.
    #[error("feature `{view}:{feature}` is {expected}, but the row for `{entity_key}` has {found}")]
    WrongType {
        /// The view.
        view: String,
        /// The feature.
        feature: String,
        /// The row's entity key.
        entity_key: String,
        /// The declared type.
        expected: crate::ValueType,
        /// The value offered, described.
        found: String,
    },
    /// A stored row could not be decoded.
    #[error("feature view `{view}`: the stored row for `{entity_key}` is corrupt: {reason}")]
    Corrupt {
        /// The view.
        view: String,
        /// The row's entity key.
        entity_key: String,
        /// What the decoder said.
        reason: String,
    },
    /// The storage engine failed (I/O, a locked or damaged database file).
    #[error("feature store {operation} failed: {source}")]
    Backend {
        /// What was being done.
        operation: &'static str,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A source file (for bulk loads) could not be read or does not fit the view.
    #[error("{path}: {reason}")]
    Source {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A remote store did not answer in time or at all.
    #[error("feature store unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}
