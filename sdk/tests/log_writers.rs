//! Many writers: file names no other writer or later run produces, one writer per root,
//! a name written once, uploads to object storage (docs/design.md §6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use fresco::abi::InputType;
use fresco::{LogConfig, LogError, LogSchema, PredictionLog, PredictionRecord, PredictionSink, Timestamp};

#[allow(dead_code)]
mod common;
use common::logs::{parquet_files, published_ids};

fn schema() -> Arc<LogSchema> {
    Arc::new(LogSchema {
        model: "eta".into(),
        version: "1".into(),
        entities: vec![],
        inputs: vec![("x".into(), InputType::F64)],
        outputs: vec!["y".into()],
    })
}

fn record(id: &str) -> PredictionRecord {
    PredictionRecord {
        prediction_id: id.into(),
        ts: Timestamp::from_secs(1_764_201_600),
        model: "eta".into(),
        model_version: "1".into(),
        entities: vec![],
        inputs: vec![1.0],
        outputs: vec![2.0],
        holdout: None,
        in_holdout: false,
        eligible: true,
        flag_variant: None,
        latency_us: 1,
    }
}

fn names(root: &Path) -> BTreeSet<String> {
    parquet_files(root).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
}

fn relative(root: &Path, file: &Path) -> PathBuf {
    file.strip_prefix(root).unwrap().to_path_buf()
}

#[test]
fn two_writers_started_at_the_same_moment_publish_different_names() {
    let dir = tempfile::tempdir().unwrap();
    let roots = [dir.path().join("a"), dir.path().join("b")];
    let start = Arc::new(Barrier::new(2));
    let runs: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = roots
            .iter()
            .map(|root| {
                let start = start.clone();
                scope.spawn(move || {
                    start.wait();
                    let log = PredictionLog::open(LogConfig::new(root)).unwrap();
                    log.append(&schema(), vec![record(&format!("{}-1", root.display()))]).unwrap();
                    let run = log.run().to_owned();
                    log.close().unwrap();
                    run
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_ne!(runs[0], runs[1]);
    let (a, b) = (names(&roots[0]), names(&roots[1]));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a.is_disjoint(&b), "{a:?} and {b:?} share a name");
    assert!(a.iter().all(|n| n.starts_with(&runs[0])) && b.iter().all(|n| n.starts_with(&runs[1])));

    // A later run on the same root names its files after its own run.
    let log = PredictionLog::open(LogConfig::new(&roots[0])).unwrap();
    log.append(&schema(), vec![record("later")]).unwrap();
    log.close().unwrap();
    assert_eq!(names(&roots[0]).len(), 2);
}

#[test]
fn a_root_has_one_writer_process() {
    let dir = tempfile::tempdir().unwrap();
    let first = PredictionLog::open(LogConfig::new(dir.path())).unwrap();
    let second = PredictionLog::open(LogConfig::new(dir.path())).unwrap_err();
    assert!(matches!(second, LogError::Locked { .. }), "{second}");
    assert!(second.to_string().contains(".writer.lock"), "{second}");
    drop(first);
    PredictionLog::open(LogConfig::new(dir.path())).unwrap();
}

/// Leaves, in `crashed`, the spool of a writer that appended `ids` and crashed before
/// publishing; returns the path, relative to a root, its replay publishes to.
fn crashed_spool(dir: &Path, crashed: &Path, ids: &[&str]) -> PathBuf {
    let source = dir.join("source");
    let log = PredictionLog::open(LogConfig::new(&source)).unwrap();
    log.append(&schema(), ids.iter().map(|id| record(id)).collect()).unwrap();
    std::fs::create_dir_all(crashed.join("_spool")).unwrap();
    for entry in std::fs::read_dir(source.join("_spool")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "spool") {
            std::fs::copy(&path, crashed.join("_spool").join(path.file_name().unwrap())).unwrap();
        }
    }
    log.close().unwrap();
    let published = parquet_files(&source);
    assert_eq!(published.len(), 1);
    relative(&source, &published[0])
}

#[test]
fn a_replay_keeps_a_file_with_its_rows_and_refuses_one_with_other_rows() {
    let dir = tempfile::tempdir().unwrap();

    // The file is there with the same rows (the crash came after publishing): kept.
    let same = dir.path().join("same");
    let name = crashed_spool(dir.path(), &same, &["p-1", "p-2"]);
    std::fs::create_dir_all(same.join(&name).parent().unwrap()).unwrap();
    std::fs::copy(dir.path().join("source").join(&name), same.join(&name)).unwrap();
    let log = PredictionLog::open(LogConfig::new(&same)).unwrap();
    assert_eq!(log.stats().replayed, 2);
    log.close().unwrap();
    assert_eq!(published_ids(&same), ["p-1", "p-2"]);

    // Another writer's rows under that name: an error naming the file, and the spool
    // keeps the records.
    let other = dir.path().join("other");
    std::fs::remove_dir_all(dir.path().join("source")).unwrap();
    let name = crashed_spool(dir.path(), &other, &["p-3"]);
    let foreign = dir.path().join("foreign");
    let log = PredictionLog::open(LogConfig::new(&foreign)).unwrap();
    log.append(&schema(), vec![record("not-p-3")]).unwrap();
    log.close().unwrap();
    std::fs::create_dir_all(other.join(&name).parent().unwrap()).unwrap();
    std::fs::copy(&parquet_files(&foreign)[0], other.join(&name)).unwrap();
    let refused = PredictionLog::open(LogConfig::new(&other)).unwrap_err();
    assert!(matches!(refused, LogError::Conflict { .. }), "{refused}");
    assert!(refused.to_string().contains(&name.file_name().unwrap().to_string_lossy().into_owned()), "{refused}");
    let spooled = std::fs::read_dir(other.join("_spool")).unwrap().filter(|e| e.is_ok()).count();
    assert!(spooled >= 1, "the segment stays in the spool");
}

#[cfg(feature = "object-store")]
#[test]
fn published_files_are_uploaded_and_then_leave_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let (root, store) = (dir.path().join("root"), dir.path().join("store"));
    let url = format!("file://{}/fleet", store.display());
    let log = PredictionLog::open(LogConfig::new(&root).upload_to(&url)).unwrap();
    log.append(&schema(), (0..50).map(|i| record(&format!("p-{i}"))).collect()).unwrap();
    log.append_outcomes(
        "eta",
        vec![fresco::OutcomeRecord {
            prediction_id: "p-1".into(),
            ts: Timestamp::from_secs(1_764_201_700),
            label: 3.0,
        }],
    )
    .unwrap();
    log.flush().unwrap();
    assert_eq!(log.stats().files_uploaded, 2);
    let local = parquet_files(&root);
    assert_eq!(local.len(), 2);
    for file in &local {
        let uploaded = store.join("fleet").join(relative(&root, file));
        assert_eq!(std::fs::read(file).unwrap(), std::fs::read(&uploaded).unwrap(), "{}", uploaded.display());
    }
    let spool: Vec<_> = std::fs::read_dir(root.join("_spool")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(spool.len(), 1, "only the open segment: {spool:?}");
    log.close().unwrap();
}
