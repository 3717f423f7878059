use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;

use crate::ValueType;

/// A feature view: typed features of one entity, stored together, with a time to live.
///
/// ```
/// use std::time::Duration;
/// use fresco::{FeatureView, ValueType};
///
/// let view = FeatureView::new("restaurant_stats", "restaurant_id")
///     .feature("avg_prep_min", ValueType::F64)
///     .feature("cuisine", ValueType::Str)
///     .ttl(Duration::from_secs(24 * 3600));
/// assert_eq!(view.position("cuisine"), Some(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureView {
    /// The view's name, unique within a store.
    pub name: String,
    /// The name of the entity key the view is keyed by (a request carries it).
    pub entity: String,
    /// The features, in storage order.
    pub features: Vec<FeatureSpec>,
    /// Rows older than this (by event time) read as [`Expired`](crate::FeatureStatus::Expired).
    pub ttl: Option<Duration>,
}

/// One feature of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The feature's name, unique within its view.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ValueType,
}

impl FeatureView {
    /// A view with no features yet and no time to live.
    pub fn new(name: impl Into<String>, entity: impl Into<String>) -> Self {
        FeatureView { name: name.into(), entity: entity.into(), features: Vec::new(), ttl: None }
    }

    /// Adds a feature.
    pub fn feature(mut self, name: impl Into<String>, ty: ValueType) -> Self {
        self.features.push(FeatureSpec { name: name.into(), ty });
        self
    }

    /// Sets the time to live.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Position of the named feature.
    pub fn position(&self, feature: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == feature)
    }

    /// The positions of `features`, in order, or [`StoreError::UnknownFeature`] for the
    /// first that is not in the view: what a store resolves before a lookup.
    ///
    /// ```
    /// use fresco::{FeatureView, ValueType};
    ///
    /// let v = FeatureView::new("v", "id").feature("x", ValueType::F64).feature("y", ValueType::I64);
    /// assert_eq!(v.positions(&["y", "x"])?, [1, 0]);
    /// assert!(v.positions(&["z"]).is_err());
    /// # Ok::<(), fresco::StoreError>(())
    /// ```
    pub fn positions(&self, features: &[&str]) -> Result<Vec<usize>, StoreError> {
        // Callers mostly ask for a view's features in the view's own order (a model's
        // inputs from one view): the position after the last one is tried first, so a
        // lookup of n features compares n names instead of about n²/2.
        let mut next = 0;
        features
            .iter()
            .map(|f| {
                let at = match self.features.get(next) {
                    Some(spec) if spec.name == *f => Some(next),
                    _ => self.position(f),
                };
                let at =
                    at.ok_or_else(|| StoreError::UnknownFeature { view: self.name.clone(), feature: (*f).into() })?;
                next = at + 1;
                Ok(at)
            })
            .collect()
    }

    /// Checks that names are non-empty and feature names unique.
    ///
    /// ```
    /// use fresco::{FeatureView, ValueType};
    ///
    /// let twice = FeatureView::new("v", "id").feature("x", ValueType::F64).feature("x", ValueType::I64);
    /// assert_eq!(twice.validate().unwrap_err().to_string(), "feature view `v`: feature `x` is declared twice");
    /// ```
    pub fn validate(&self) -> Result<(), super::StoreError> {
        self.problem().map_or(Ok(()), |reason| Err(super::StoreError::InvalidView { view: self.name.clone(), reason }))
    }

    fn problem(&self) -> Option<String> {
        if self.name.is_empty() {
            return Some("the view name is empty".into());
        }
        if self.entity.is_empty() {
            return Some("the entity key name is empty".into());
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.features {
            if f.name.is_empty() {
                return Some("a feature name is empty".into());
            }
            if !seen.insert(f.name.as_str()) {
                return Some(format!("feature `{}` is declared twice", f.name));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::FeatureView;
    use crate::ValueType;

    proptest! {
        /// Any list of names, known or not, in any order and repeated, resolves as a
        /// name-by-name search does.
        #[test]
        fn positions_equal_a_search_per_name(picks in proptest::collection::vec(0usize..12, 0..24)) {
            let view = (0..10).fold(FeatureView::new("v", "id"), |v, i| v.feature(format!("f{i}"), ValueType::F64));
            // Picks 10 and 11 name features the view does not have.
            let names: Vec<String> = picks.iter().map(|p| format!("f{p}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let searched: Option<Vec<usize>> = names.iter().map(|n| view.position(n)).collect();
            match (view.positions(&names), searched) {
                (Ok(got), Some(want)) => prop_assert_eq!(got, want),
                (Err(e), None) => {
                    let first_unknown = names.iter().find(|n| view.position(n).is_none()).copied().unwrap_or_default();
                    prop_assert_eq!(e.to_string().contains(&format!("`{first_unknown}`")), true, "{}", e);
                }
                (got, want) => prop_assert!(false, "positions {got:?}, a search per name {want:?}"),
            }
        }
    }
}
