//! Reading published log files back with the Parquet reader.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every `.parquet` file under `dir`, recursively, sorted (hidden files excluded).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// All batches of one file; panics if the file does not read cleanly.
pub fn read(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .build()
        .unwrap();
    reader.map(|b| b.unwrap_or_else(|e| panic!("{}: {e}", path.display()))).collect()
}

/// The values of a string column across batches.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    use arrow_array::cast::AsArray;
    batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name(column).unwrap_or_else(|| panic!("no column {column}"));
            col.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>()
        })
        .collect()
}

/// Waits until `done` holds, checking every 5 ms, for at most `limit`; returns whether
/// it came true. For background work (the log writer) whose end has no signal.
pub fn wait_until(limit: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

/// The `prediction_id`s of every published prediction file under `root`.
pub fn published_ids(root: &Path) -> Vec<String> {
    parquet_files(&root.join("predictions")).iter().flat_map(|f| strings(&read(f), "prediction_id")).flatten().collect()
}
