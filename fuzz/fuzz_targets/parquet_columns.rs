#![no_main]
//! Fuzzes the path every reader of a user's Parquet file takes (`fresco drift`,
//! `intervals`, `compile --train-data`, `dataset`, `materialize`, `backfill`): opened by
//! `untrusted::open_parquet`, read through `untrusted::guarded`, each column read as
//! numbers through `f64_column`. A malformed file must come back as an error, never a
//! panic that escapes the guard, nor an allocation far beyond its size (the 2 GiB
//! memory limit CI runs it with).

use bytes::Bytes;
use fresco::untrusted::{f64_column, guarded, open_parquet};

libfuzzer_sys::fuzz_target!(
    init: {
        // libFuzzer's panic hook aborts; a panic that `guarded` catches is handled (the
        // `fresco` command's hook is quiet about it the same way), so only a panic
        // outside the guard is a crash.
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !fresco::untrusted::inside_guard() {
                abort(info);
            }
        }));
    },
    |data: &[u8]| {
    let file = Bytes::copy_from_slice(data);
    let Ok(mut reader) = guarded(|| open_parquet(file)?.with_batch_size(256).build().map_err(|e| e.to_string()))
    else {
        return;
    };
    let mut first_row = 0u64;
    while let Ok(Some(batch)) = guarded(|| reader.next().transpose()) {
        for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
            let _ = f64_column(array, field.name(), first_row);
        }
        first_row = first_row.saturating_add(batch.num_rows() as u64);
    }
    }
);
