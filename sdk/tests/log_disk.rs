//! A full disk or a read-only directory gives the caller a typed error, never a corrupt
//! published file, and nothing acknowledged is lost once space returns.
//!
//! These need small or read-only filesystems, which `.ci/run` mounts (tmpfs) and names
//! in `FRESCO_SMALL_FS` and `FRESCO_READONLY_FS`; run them with `--ignored`. Asked to
//! run without those, they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use fresco::abi::InputType;
use fresco::{LogConfig, LogError, LogSchema, PredictionLog, PredictionRecord, PredictionSink, Timestamp};

#[allow(dead_code)]
mod common;
use common::logs::{parquet_files, read, strings};

fn required_dir(var: &str) -> PathBuf {
    let dir = std::env::var_os(var)
        .unwrap_or_else(|| panic!("{var} is not set: this test needs a filesystem that .ci/run mounts for it"));
    PathBuf::from(dir)
}

fn schema() -> Arc<LogSchema> {
    Arc::new(LogSchema {
        model: "m".into(),
        version: "1".into(),
        entities: vec![],
        inputs: (0..30).map(|i| (format!("f{i}"), InputType::F64)).collect(),
        outputs: vec!["y".into()],
    })
}

fn record(i: usize) -> PredictionRecord {
    PredictionRecord {
        prediction_id: format!("p{i:08}"),
        ts: Timestamp::from_secs(1_764_201_600),
        model: "m".into(),
        model_version: "1".into(),
        entities: vec![],
        inputs: (0..30).map(|f| (i * 31 + f) as f64).collect(),
        outputs: vec![i as f64],
        holdout: None,
        in_holdout: false,
        eligible: true,
        flag_variant: None,
        latency_us: 1,
    }
}

fn is_out_of_space(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.raw_os_error() == Some(28))
}

#[test]
#[ignore = "needs FRESCO_SMALL_FS, a small tmpfs mounted by .ci/run"]
fn a_full_disk_is_a_typed_error_and_loses_nothing_acknowledged() {
    let fs = required_dir("FRESCO_SMALL_FS");
    let root = fs.join("logs");
    let _ = std::fs::remove_dir_all(&root);
    let schema = schema();
    let mut acknowledged = Vec::new();
    let log = PredictionLog::open(LogConfig::new(&root).max_file_bytes(32 * 1024)).unwrap();
    let mut failure = None;
    for i in 0..1_000_000 {
        match log.append(&schema, vec![record(i)]) {
            Ok(()) => acknowledged.push(format!("p{i:08}")),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the filesystem never filled up");
    assert!(is_out_of_space(&failure), "expected ENOSPC as a typed I/O error, got: {failure}");
    assert!(failure.to_string().starts_with("prediction log: "), "{failure}");
    // Publishing may fail too while the disk is full; it says so.
    if let Err(e) = log.flush() {
        assert!(e.to_string().contains("No space left"), "{e}");
    }
    // Whatever was published reads cleanly.
    for file in parquet_files(&root.join("predictions")) {
        read(&file);
    }
    drop(log);

    // Space comes back (the test frees it the way an operator would: by moving the
    // published files elsewhere); a restart publishes everything acknowledged.
    let mut published: Vec<String> = Vec::new();
    let take_published = |published: &mut Vec<String>| {
        for file in parquet_files(&root.join("predictions")) {
            published.extend(strings(&read(&file), "prediction_id").into_iter().map(Option::unwrap));
            std::fs::remove_file(&file).unwrap();
        }
    };
    take_published(&mut published);
    for _ in 0..20 {
        let log = PredictionLog::open(LogConfig::new(&root)).unwrap();
        let done = log.close().is_ok();
        take_published(&mut published);
        if done {
            break;
        }
    }
    let unique: std::collections::HashSet<&String> = published.iter().collect();
    assert_eq!(unique.len(), published.len(), "a record was published twice");
    for id in &acknowledged {
        assert!(unique.contains(id), "acknowledged {id} was lost");
    }
}

#[test]
#[ignore = "needs FRESCO_READONLY_FS, a read-only tmpfs mounted by .ci/run"]
fn a_read_only_directory_is_a_typed_error() {
    let fs = required_dir("FRESCO_READONLY_FS");
    let err = PredictionLog::open(LogConfig::new(fs.join("logs"))).unwrap_err();
    match &err {
        LogError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(30), "EROFS expected: {err}"),
        other => panic!("expected a typed I/O error, got {other}"),
    }
    assert!(err.to_string().contains("Read-only file system"), "{err}");
}
