//! `fresco materialize`: bulk-load feature rows from Parquet, with a progress bar.

use std::path::Path;
use std::time::Duration;

use fresco::{EmbeddedStore, FeatureStore, MaterializeOptions, StoreError};

use crate::{CliError, ROWS_BAR, progress_bar};

pub fn run(
    store_path: &Path,
    view: &str,
    entity: &str,
    timestamp: &str,
    ttl_secs: Option<u64>,
    parquet: &Path,
) -> Result<(), CliError> {
    let store = EmbeddedStore::open(store_path)?;
    match store.view(view) {
        Ok(_) => {}
        Err(StoreError::UnknownView { .. }) => {
            let mut def = EmbeddedStore::infer_view(parquet, view, entity, timestamp)?;
            def.ttl = ttl_secs.map(Duration::from_secs);
            eprintln!(
                "defining view `{view}` keyed by `{entity}`: {}",
                def.features.iter().map(|f| format!("{} {}", f.name, f.ty)).collect::<Vec<_>>().join(", ")
            );
            store.define_view(def)?;
        }
        Err(e) => return Err(e.into()),
    }
    let bar = progress_bar(0, ROWS_BAR);
    let options = MaterializeOptions::default().entity_column(entity).timestamp_column(timestamp);
    let report = store.materialize_parquet(view, parquet, &options, |p| {
        bar.set_length(p.rows_total);
        bar.set_position(p.rows_done);
    })?;
    bar.finish_and_clear();
    println!(
        "{}: read {} rows, stored {} (older duplicates skipped: {}) in {:.2?}",
        parquet.display(),
        report.rows_read,
        report.rows_stored,
        report.rows_read - report.rows_stored,
        report.elapsed
    );
    Ok(())
}
