//! The embedded feature store: redb, one table per feature view.
//!
//! Rows are stored as postcard-encoded `(event time, values in view order)` under the
//! entity key. The view definitions live in a table of their own, so a store reopened
//! after a restart knows its views. redb gives MVCC: reads run concurrently with each
//! other and with the single writer, with no lock shared between readers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use serde::{Deserialize, Serialize};

use super::{FeatureStore, FeatureValue, FeatureView, StoreError, Timestamp};
use crate::Value;

const VIEWS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("fresco.views");
const BLOBS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("fresco.blobs");

/// A persistent feature store inside the process, backed by one redb file.
///
/// Cheap to share: wrap it in an `Arc` (the [`Client`](crate::Client) does). Reads never
/// wait for each other or for a writer.
///
/// ```
/// use fresco::{EmbeddedStore, FeatureStore, FeatureView, Timestamp, Value, ValueType};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("features.redb");
/// {
///     let store = EmbeddedStore::open(&path)?;
///     store.define_view(
///         FeatureView::new("restaurants", "restaurant_id").feature("prep_min", ValueType::F64),
///     )?;
///     store.write("restaurants", "r-17", Timestamp::from_secs(1_700_000_000), &[Value::F64(9.5)])?;
/// }
/// // Reopened, the store still knows the view and the row.
/// let store = EmbeddedStore::open(&path)?;
/// let rows = store.get_features("restaurants", &["r-17"], &["prep_min"], Timestamp::now())?;
/// assert_eq!(rows[0][0].value, Value::F64(9.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EmbeddedStore {
    db: Database,
    views: RwLock<HashMap<String, Arc<ViewEntry>>>,
}

struct ViewEntry {
    def: Arc<FeatureView>,
    table: String,
}

#[derive(Serialize, Deserialize)]
struct StoredRow {
    event_ts: i64,
    values: Vec<Value>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let views = self.views.read().map(|v| v.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        f.debug_struct("EmbeddedStore").field("views", &views).finish_non_exhaustive()
    }
}

fn backend(operation: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
    move |e| StoreError::Backend { operation, source: Box::new(e) }
}

/// Converts any redb error type into [`StoreError::Backend`].
macro_rules! redb_try {
    ($op:literal, $e:expr) => {
        $e.map_err(|e| backend($op)(redb::Error::from(e)))?
    };
}

impl EmbeddedStore {
    /// Opens the store at `path`, creating the file if it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = redb_try!("open", Database::create(path.as_ref()));
        Self::with_database(db)
    }

    /// A store that lives in memory only (tests, examples, ephemeral edge caches).
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = redb_try!("open", Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()));
        Self::with_database(db)
    }

    fn with_database(db: Database) -> Result<Self, StoreError> {
        let mut views = HashMap::new();
        {
            let txn = redb_try!("open", db.begin_write());
            {
                let table = redb_try!("open", txn.open_table(VIEWS));
                for entry in redb_try!("open", table.iter()) {
                    let (name, bytes) = redb_try!("open", entry);
                    let name = name.value().to_owned();
                    let def: FeatureView = postcard::from_bytes(bytes.value()).map_err(|e| StoreError::Corrupt {
                        view: name.clone(),
                        entity_key: String::new(),
                        reason: e.to_string(),
                    })?;
                    views.insert(name, Arc::new(ViewEntry::new(def)));
                }
            }
            redb_try!("open", txn.commit());
        }
        Ok(EmbeddedStore { db, views: RwLock::new(views) })
    }

    /// Defines a view. Defining an identical view again is a no-op; a different
    /// definition under an existing name is refused (drop the store file to start over).
    pub fn define_view(&self, view: FeatureView) -> Result<(), StoreError> {
        view.validate()?;
        let mut views = self.views.write().map_err(|_| poisoned())?;
        if let Some(existing) = views.get(&view.name) {
            if *existing.def == view {
                return Ok(());
            }
            return Err(StoreError::InvalidView {
                view: view.name.clone(),
                reason: "a different definition is already stored under this name".into(),
            });
        }
        let entry = ViewEntry::new(view);
        let bytes = postcard::to_allocvec(&*entry.def)
            .map_err(|e| StoreError::InvalidView { view: entry.def.name.clone(), reason: e.to_string() })?;
        let txn = redb_try!("define_view", self.db.begin_write());
        {
            let mut table = redb_try!("define_view", txn.open_table(VIEWS));
            redb_try!("define_view", table.insert(entry.def.name.as_str(), bytes.as_slice()));
            redb_try!("define_view", txn.open_table(entry.rows_table()));
        }
        redb_try!("define_view", txn.commit());
        views.insert(entry.def.name.clone(), Arc::new(entry));
        Ok(())
    }

    /// Names of the defined views.
    pub fn views(&self) -> Vec<String> {
        let mut names: Vec<String> = self.views.read().map(|v| v.keys().cloned().collect()).unwrap_or_default();
        names.sort();
        names
    }

    /// Stores `bytes` under `name` (durable when it returns), replacing what was there:
    /// for state that is not a feature row, such as an
    /// [`AggregateStore`](crate::aggregates::AggregateStore) snapshot.
    ///
    /// ```
    /// # let store = fresco::EmbeddedStore::in_memory()?;
    /// store.put_blob("aggregates", b"state")?;
    /// assert_eq!(store.get_blob("aggregates")?.as_deref(), Some(&b"state"[..]));
    /// assert_eq!(store.get_blob("other")?, None);
    /// # Ok::<(), fresco::StoreError>(())
    /// ```
    pub fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let txn = redb_try!("write", self.db.begin_write());
        {
            let mut table = redb_try!("write", txn.open_table(BLOBS));
            redb_try!("write", table.insert(name, bytes));
        }
        redb_try!("write", txn.commit());
        Ok(())
    }

    /// The bytes stored under `name` by [`put_blob`](Self::put_blob), if any.
    pub fn get_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = redb_try!("read", self.db.begin_read());
        let table = match txn.open_table(BLOBS) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(backend("read")(e.into())),
        };
        Ok(redb_try!("read", table.get(name)).map(|v| v.value().to_vec()))
    }

    /// Writes one row (a point write, durable when it returns). A row whose event time is
    /// older than the stored one for the same entity is ignored, as in Feast: the online
    /// store holds the latest value. Returns whether the row was stored.
    pub fn write(
        &self,
        view: &str,
        entity_key: &str,
        event_ts: Timestamp,
        values: &[Value],
    ) -> Result<bool, StoreError> {
        let stored =
            self.write_rows(view, std::iter::once((entity_key, event_ts, values.to_vec())), Durability::Immediate)?;
        Ok(stored == 1)
    }

    /// Writes many rows in one transaction (durable when it returns); returns how many
    /// were stored (rows older than the stored ones are skipped).
    pub fn write_batch<'k>(
        &self,
        view: &str,
        rows: impl IntoIterator<Item = (&'k str, Timestamp, Vec<Value>)>,
    ) -> Result<usize, StoreError> {
        self.write_rows(view, rows, Durability::Immediate)
    }

    pub(crate) fn write_rows<'k>(
        &self,
        view: &str,
        rows: impl IntoIterator<Item = (&'k str, Timestamp, Vec<Value>)>,
        durability: Durability,
    ) -> Result<usize, StoreError> {
        let entry = self.entry(view)?;
        let mut txn = redb_try!("write", self.db.begin_write());
        redb_try!("write", txn.set_durability(durability));
        let mut stored = 0;
        {
            let mut table = redb_try!("write", txn.open_table(entry.rows_table()));
            let mut buf = Vec::new();
            for (key, event_ts, values) in rows {
                entry.check_row(key, &values)?;
                if let Some(old) = redb_try!("write", table.get(key))
                    && decode(view, key, old.value())?.event_ts > event_ts.as_micros()
                {
                    continue;
                }
                buf.clear();
                let row = StoredRow { event_ts: event_ts.as_micros(), values };
                buf = postcard::to_extend(&row, std::mem::take(&mut buf)).map_err(|e| StoreError::Corrupt {
                    view: view.into(),
                    entity_key: key.into(),
                    reason: e.to_string(),
                })?;
                redb_try!("write", table.insert(key, buf.as_slice()));
                stored += 1;
            }
        }
        redb_try!("write", txn.commit());
        Ok(stored)
    }

    /// Makes every earlier write durable (after writes made with relaxed durability).
    #[cfg(feature = "parquet")]
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let txn = redb_try!("sync", self.db.begin_write());
        redb_try!("sync", txn.commit());
        Ok(())
    }

    fn entry(&self, view: &str) -> Result<Arc<ViewEntry>, StoreError> {
        let views = self.views.read().map_err(|_| poisoned())?;
        views.get(view).cloned().ok_or_else(|| StoreError::UnknownView { view: view.into() })
    }
}

impl FeatureStore for EmbeddedStore {
    fn view(&self, view: &str) -> Result<Arc<FeatureView>, StoreError> {
        Ok(self.entry(view)?.def.clone())
    }

    fn get_features(
        &self,
        view: &str,
        entity_keys: &[&str],
        features: &[&str],
        now: Timestamp,
    ) -> Result<Vec<Vec<FeatureValue>>, StoreError> {
        let entry = self.entry(view)?;
        let def = &entry.def;
        let positions = def.positions(features)?;
        let ttl_micros = def.ttl.map(|t| i64::try_from(t.as_micros()).unwrap_or(i64::MAX));

        let txn = redb_try!("read", self.db.begin_read());
        let table = match txn.open_table(entry.rows_table()) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => {
                return Ok(entity_keys.iter().map(|_| vec![FeatureValue::missing(); features.len()]).collect());
            }
            Err(e) => return Err(backend("read")(e.into())),
        };
        let mut rows = Vec::with_capacity(entity_keys.len());
        for key in entity_keys {
            let Some(guard) = redb_try!("read", table.get(*key)) else {
                rows.push(vec![FeatureValue::missing(); features.len()]);
                continue;
            };
            let row = decode(view, key, guard.value())?;
            let event_ts = Timestamp::from_micros(row.event_ts);
            if ttl_micros.is_some_and(|ttl| now.micros_since(event_ts) > ttl) {
                rows.push(vec![FeatureValue::expired(event_ts); features.len()]);
                continue;
            }
            let mut values = row.values;
            rows.push(
                positions
                    .iter()
                    .map(|&p| {
                        FeatureValue::present(values.get_mut(p).map(std::mem::take).unwrap_or_default(), event_ts)
                    })
                    .collect(),
            );
        }
        Ok(rows)
    }
}

impl ViewEntry {
    fn new(def: FeatureView) -> Self {
        let table = format!("fresco.view.{}", def.name);
        ViewEntry { def: Arc::new(def), table }
    }

    fn rows_table(&self) -> TableDefinition<'_, &'static str, &'static [u8]> {
        TableDefinition::new(&self.table)
    }

    fn check_row(&self, key: &str, values: &[Value]) -> Result<(), StoreError> {
        let def = &self.def;
        if values.len() != def.features.len() {
            return Err(StoreError::WrongArity {
                view: def.name.clone(),
                entity_key: key.into(),
                expected: def.features.len(),
                found: values.len(),
            });
        }
        for (spec, value) in def.features.iter().zip(values) {
            if !spec.ty.admits(value) {
                return Err(StoreError::WrongType {
                    view: def.name.clone(),
                    feature: spec.name.clone(),
                    entity_key: key.into(),
                    expected: spec.ty,
                    found: value.describe(),
                });
            }
        }
        Ok(())
    }
}

fn decode(view: &str, key: &str, bytes: &[u8]) -> Result<StoredRow, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        view: view.into(),
        entity_key: key.into(),
        reason: e.to_string(),
    })
}

fn poisoned() -> StoreError {
    StoreError::Backend { operation: "lock", source: "a writer panicked while holding the view registry".into() }
}
