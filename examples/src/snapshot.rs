//! The feature snapshot the ETA page reads (`features.json`): what an app's backend
//! would send a client, the server-side features of every restaurant at one time, so
//! that the client scores the model itself without a person typing them.
//!
//! ```
//! use fresco_examples::snapshot::FeatureSnapshot;
//!
//! let mut snapshot = FeatureSnapshot::new("restaurant_id", 1_793_577_600, &["prep_time_min", "orders_last_30min"]);
//! snapshot.push("r-0001", vec![Some(12.5), Some(4.0)]);
//! let json: serde_json::Value = serde_json::from_slice(&snapshot.to_json()?)?;
//! assert_eq!(json["entities"]["r-0001"]["prep_time_min"], 12.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use fresco::{FeatureStore, Timestamp, Value};
use serde_json::{Map, Value as Json, json};

/// Features of many entities of one kind, read at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSnapshot {
    entity: String,
    at_secs: i64,
    features: Vec<String>,
    entities: BTreeMap<String, Vec<Option<f64>>>,
}

impl FeatureSnapshot {
    /// An empty snapshot of `features` of entities keyed by `entity`, at `at_secs`
    /// (Unix seconds).
    pub fn new(entity: &str, at_secs: i64, features: &[&str]) -> Self {
        FeatureSnapshot {
            entity: entity.to_owned(),
            at_secs,
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            entities: BTreeMap::new(),
        }
    }

    /// Adds one entity's values, in the order of the snapshot's features (`None`: missing).
    pub fn push(&mut self, id: &str, values: Vec<Option<f64>>) {
        self.entities.insert(id.to_owned(), values);
    }

    /// Reads `(store, view, feature)` for each of `ids` at the snapshot's time, in the
    /// order the snapshot's features were given; a value that is not a number, or
    /// missing, is `None`.
    pub fn read(
        &mut self,
        ids: &[&str],
        sources: &[(&dyn FeatureStore, &str, &str)],
    ) -> Result<(), fresco::StoreError> {
        let at = Timestamp::from_secs(self.at_secs);
        let mut columns = Vec::with_capacity(sources.len());
        for (store, view, feature) in sources {
            let rows = store.get_features(view, ids, &[feature], at)?;
            columns.push(rows.into_iter().map(|row| row.into_iter().next().and_then(|v| number(&v.value))).collect());
        }
        for (r, id) in ids.iter().enumerate() {
            let values = columns.iter().map(|c: &Vec<Option<f64>>| c.get(r).copied().flatten()).collect();
            self.push(id, values);
        }
        Ok(())
    }

    /// Entities in the snapshot.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether it holds no entity.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The JSON document: `{"entity", "at_secs", "features", "entities": {id: {feature: value}}}`.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let entities: Map<String, Json> = self
            .entities
            .iter()
            .map(|(id, values)| {
                let row: Map<String, Json> =
                    self.features.iter().cloned().zip(values.iter().map(|v| json!(v))).collect();
                (id.clone(), Json::Object(row))
            })
            .collect();
        serde_json::to_vec(&json!({
            "entity": self.entity,
            "at_secs": self.at_secs,
            "features": self.features,
            "entities": entities,
        }))
    }

    /// Writes the JSON document to `path`.
    pub fn write(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::write(path, self.to_json()?)?;
        Ok(())
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::F64(x) if !x.is_nan() => Some(*x),
        Value::I64(i) => Some(*i as f64),
        _ => None,
    }
}
