//! The spool: append-only segment files of checksummed, length-prefixed frames.
//!
//! `predict` appends its records here before returning. A frame is
//! `[payload length: u32 LE][CRC-32 of payload: u32 LE][payload: postcard]`; a torn or
//! corrupt tail (a crash mid-write) ends a segment's replay, and nothing after it was
//! ever acknowledged. Appends are group-committed: concurrent callers share one
//! `fdatasync`, so its cost is divided among them.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::batch::BatchColumns;
use super::{LogError, LogSchema, OutcomeRecord, PredictionBatch, PredictionRecord, TreatmentRecord};
use crate::sync::lock;

/// What one frame holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame {
    /// A schema, written once per segment before the first records that use it.
    Schema(LogSchema),
    /// Prediction records of the schema with this fingerprint, one by one: what earlier
    /// releases wrote (still replayed).
    Predictions { schema: u64, records: Vec<PredictionRecord> },
    /// Outcomes of a model's predictions.
    Outcomes { model: String, records: Vec<OutcomeRecord> },
    /// Treatments applied on a model's predictions.
    Treatments { model: String, records: Vec<TreatmentRecord> },
    /// Prediction rows of the schema with this fingerprint, as columns
    /// ([`PredictionBatch`]): what `append` writes.
    Batch { schema: u64, columns: Box<BatchColumns> },
}

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpoolDurability {
    /// After `fdatasync` (group-committed): survives a power loss.
    #[default]
    Fsync,
    /// After `write(2)`: survives a crash of the process, not of the machine.
    Buffered,
}

const HEADER: usize = 8;
/// Frames larger than this are refused when read back (a corrupt length).
const MAX_FRAME: usize = 1 << 30;

pub(crate) struct Spool {
    dir: PathBuf,
    run: String,
    durability: SpoolDurability,
    max_bytes: u64,
    segment: Mutex<Segment>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Sealed segments: id → records appended to it.
    sealed: Mutex<BTreeMap<u64, u64>>,
    /// Syncs of a segment or of the directory made when a segment was sealed or
    /// created (for the tests: `Buffered` makes none).
    rotation_syncs: AtomicU64,
}

struct Segment {
    id: u64,
    file: File,
    path: PathBuf,
    bytes: u64,
    opened: Instant,
    records: u64,
    schemas: HashSet<u64>,
    /// Appends so far, across segments (for group commit).
    seq: u64,
    /// Set when a failed write could not be undone: the segment may hold a torn frame.
    broken: Option<String>,
}

#[derive(Default)]
struct SyncState {
    synced_seq: u64,
    syncing: bool,
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io { path: path.display().to_string(), source }
}

/// A spool segment file found in the spool directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegmentFile {
    /// The run of the writer that wrote it (`None`: a spool from before runs were named).
    pub(crate) run: Option<String>,
    /// Its number within that run.
    pub(crate) id: u64,
    /// The file.
    pub(crate) path: PathBuf,
}

/// Segment files in `dir`, oldest first (runs are UUIDv7s, which sort by start time;
/// unnamed old ones first).
pub(crate) fn segments(dir: &Path) -> Result<Vec<SegmentFile>, LogError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("seg-"));
        let Some(stem) = name.and_then(|n| n.strip_suffix(SEGMENT_SUFFIX).or_else(|| n.strip_suffix(".spool"))) else {
            continue;
        };
        let (run, id) = match stem.rsplit_once('-') {
            Some((run, id)) => (Some(run.to_owned()), id),
            None => (None, stem),
        };
        if let Ok(id) = id.parse::<u64>() {
            found.push(SegmentFile { run, id, path });
        }
    }
    found.sort();
    Ok(found)
}

/// Every intact frame of a segment, in order; stops at a torn or corrupt tail.
pub(crate) fn read_segment(path: &Path) -> Result<Vec<Frame>, LogError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len).filter(|_| len <= MAX_FRAME) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(frame) = postcard::from_bytes::<Frame>(payload) else { break };
        frames.push(frame);
        at += HEADER + len;
    }
    Ok(frames)
}

/// What ends the name of a segment this release writes. Its `Batch` frames are unknown
/// to earlier releases, which would read the first one as a torn tail and delete the
/// segment after publishing what came before it: they do not take `.v2.spool` for a
/// segment's name, so after a downgrade such segments wait for the next upgrade. This
/// release replays both (`.spool` segments hold record frames only).
const SEGMENT_SUFFIX: &str = ".v2.spool";

/// `seg-<run>-<id>.v2.spool`: the run keeps two writers' (or two runs') segments apart.
pub(crate) fn segment_path(dir: &Path, run: &str, id: u64) -> PathBuf {
    dir.join(format!("seg-{run}-{id:016}{SEGMENT_SUFFIX}"))
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Spool {
    /// Opens a new segment numbered `first_id` of writer run `run` in `dir`.
    pub(crate) fn create(
        dir: &Path,
        run: &str,
        first_id: u64,
        durability: SpoolDurability,
        max_bytes: u64,
    ) -> Result<Self, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let durable = durability == SpoolDurability::Fsync;
        let (file, path) = Self::new_file(dir, run, first_id, durable)?;
        Ok(Spool {
            dir: dir.to_owned(),
            run: run.to_owned(),
            durability,
            max_bytes,
            segment: Mutex::new(Segment {
                id: first_id,
                file,
                path,
                bytes: 0,
                opened: Instant::now(),
                records: 0,
                schemas: HashSet::new(),
                seq: 0,
                broken: None,
            }),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            sealed: Mutex::new(BTreeMap::new()),
            rotation_syncs: AtomicU64::new(u64::from(durable)),
        })
    }

    /// A new segment file; with `durable`, its name is synced to disk before it is used.
    fn new_file(dir: &Path, run: &str, id: u64, durable: bool) -> Result<(File, PathBuf), LogError> {
        let path = segment_path(dir, run, id);
        let file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(io(&path))?;
        if durable {
            sync_dir(dir)?;
        }
        Ok((file, path))
    }

    /// Appends a batch of prediction rows whose schema has `fingerprint`; returns the
    /// segment they went to.
    pub(crate) fn append_batch(&self, batch: &PredictionBatch, fingerprint: u64) -> Result<u64, LogError> {
        let columns = batch.columns();
        let frame = framed(columns.encoded_len_hint(), |buf| {
            columns.encode_into(postcard::to_extend(&(BATCH_VARIANT, fingerprint), buf)?)
        })?;
        self.append(Some((batch.schema(), fingerprint)), &frame, batch.len() as u64)
    }

    /// Appends outcome records; returns the segment they went to.
    pub(crate) fn append_outcomes(&self, model: &str, records: &[OutcomeRecord]) -> Result<u64, LogError> {
        let frame = encode(&FrameRef::Outcomes { model, records })?;
        self.append(None, &frame, records.len() as u64)
    }

    /// Appends treatment records; returns the segment they went to.
    pub(crate) fn append_treatments(&self, model: &str, records: &[TreatmentRecord]) -> Result<u64, LogError> {
        let frame = encode(&FrameRef::Treatments { model, records })?;
        self.append(None, &frame, records.len() as u64)
    }

    fn append(&self, schema: Option<(&LogSchema, u64)>, frame: &[u8], records: u64) -> Result<u64, LogError> {
        let (segment, seq) = {
            let mut seg = lock(&self.segment);
            if let Some(reason) = &seg.broken {
                return Err(LogError::Closed { reason: reason.clone() });
            }
            if seg.bytes >= self.max_bytes {
                self.rotate_locked(&mut seg)?;
            }
            // The schema frame goes first, once per segment; the records are written
            // from their own buffer (no copy).
            let schema_frame = match schema {
                Some((schema, fingerprint)) if !seg.schemas.contains(&fingerprint) => {
                    encode(&FrameRef::Schema(schema))?
                }
                _ => Vec::new(),
            };
            let written = seg.file.write_all(&schema_frame).and_then(|()| seg.file.write_all(frame));
            if let Err(e) = written {
                // Undo a partial write so the segment never holds a torn frame followed
                // by good ones; if that fails too, refuse further appends.
                let len = seg.bytes;
                if let Err(undo) = seg.file.set_len(len).and_then(|()| {
                    use std::io::Seek;
                    seg.file.seek(std::io::SeekFrom::Start(len)).map(|_| ())
                }) {
                    seg.broken = Some(format!("{}: a failed write could not be undone: {undo}", seg.path.display()));
                }
                return Err(io(&seg.path.clone())(e));
            }
            if let Some((_, fingerprint)) = schema {
                seg.schemas.insert(fingerprint);
            }
            seg.bytes += (schema_frame.len() + frame.len()) as u64;
            seg.records += records;
            seg.seq += 1;
            (seg.id, seg.seq)
        };
        if self.durability == SpoolDurability::Fsync {
            self.sync_to(seq)?;
        }
        Ok(segment)
    }

    /// Group commit: waits until append `seq` is on disk; one caller syncs for all.
    fn sync_to(&self, seq: u64) -> Result<(), LogError> {
        let mut state = lock(&self.sync);
        loop {
            if state.synced_seq >= seq {
                return Ok(());
            }
            if !state.syncing {
                state.syncing = true;
                drop(state);
                let result = {
                    let seg = lock(&self.segment);
                    let target = seg.seq;
                    let file = seg.file.try_clone().map_err(io(&seg.path));
                    let path = seg.path.clone();
                    drop(seg);
                    file.and_then(|f| f.sync_data().map_err(io(&path))).map(|()| target)
                };
                state = lock(&self.sync);
                state.syncing = false;
                self.synced.notify_all();
                match result {
                    Ok(target) => state.synced_seq = state.synced_seq.max(target),
                    Err(e) => return Err(e),
                }
            } else {
                state = self.synced.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    /// Seals the current segment (if it holds anything) and starts the next one.
    pub(crate) fn rotate(&self) -> Result<(), LogError> {
        let mut seg = lock(&self.segment);
        if seg.bytes > 0 { self.rotate_locked(&mut seg) } else { Ok(()) }
    }

    /// Seals the current segment if it is older than `age` and not empty.
    pub(crate) fn rotate_if_older(&self, age: Duration) -> Result<(), LogError> {
        let mut seg = lock(&self.segment);
        if seg.bytes > 0 && seg.opened.elapsed() >= age { self.rotate_locked(&mut seg) } else { Ok(()) }
    }

    fn rotate_locked(&self, seg: &mut Segment) -> Result<(), LogError> {
        // With `Fsync`, everything acknowledged in the old segment is on disk before it is
        // sealed, so the group-commit sequence stays meaningful across files, and the new
        // segment's name is too. `Buffered` promises to outlive a crash of the process,
        // which the page cache does: no sync, so no append waits here on the disk (some
        // milliseconds, with the segment locked, every `max_file_bytes`).
        let durable = self.durability == SpoolDurability::Fsync;
        if durable {
            seg.file.sync_data().map_err(io(&seg.path))?;
            self.rotation_syncs.fetch_add(2, Ordering::Relaxed);
        }
        let (file, path) = Self::new_file(&self.dir, &self.run, seg.id + 1, durable)?;
        lock(&self.sealed).insert(seg.id, seg.records);
        {
            let mut state = lock(&self.sync);
            state.synced_seq = state.synced_seq.max(seg.seq);
        }
        seg.id += 1;
        seg.file = file;
        seg.path = path;
        seg.bytes = 0;
        seg.records = 0;
        seg.opened = Instant::now();
        seg.schemas.clear();
        Ok(())
    }

    /// Syncs made when segments were created or sealed.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn rotation_syncs(&self) -> u64 {
        self.rotation_syncs.load(Ordering::Relaxed)
    }

    /// Where its segments are.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run its segments are named after.
    pub(crate) fn run(&self) -> &str {
        &self.run
    }

    /// The current (unsealed) segment's id.
    pub(crate) fn current(&self) -> u64 {
        lock(&self.segment).id
    }

    /// Sealed segments and their record counts.
    pub(crate) fn sealed(&self) -> Vec<(u64, u64)> {
        lock(&self.sealed).iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Deletes a sealed segment whose records are published.
    pub(crate) fn remove(&self, id: u64) -> Result<(), LogError> {
        let path = segment_path(&self.dir, &self.run, id);
        match std::fs::remove_file(&path) {
            // Gone already: what a removal is for.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path)(e)),
            _ => {}
        }
        lock(&self.sealed).remove(&id);
        Ok(())
    }
}

/// Borrowing twin of [`Frame`] (same encoding, variants in the same order), so appends
/// serialize without cloning.
#[derive(Serialize)]
enum FrameRef<'a> {
    Schema(&'a LogSchema),
    // Written by earlier releases; here only by the test that replays their segments.
    #[cfg_attr(not(test), allow(dead_code))]
    Predictions {
        schema: u64,
        records: &'a [PredictionRecord],
    },
    Outcomes {
        model: &'a str,
        records: &'a [OutcomeRecord],
    },
    Treatments {
        model: &'a str,
        records: &'a [TreatmentRecord],
    },
    // Written by `Spool::append_batch` through `BatchColumns::encode_into`, with the same
    // bytes; here for the test that checks they are the same.
    #[cfg_attr(not(test), allow(dead_code))]
    Batch {
        schema: u64,
        columns: &'a BatchColumns,
    },
}

/// Where [`Frame::Batch`] is among [`Frame`]'s variants: postcard's tag for it.
const BATCH_VARIANT: u32 = 4;

fn encode(frame: &FrameRef<'_>) -> Result<Vec<u8>, LogError> {
    framed(0, |buf| postcard::to_extend(frame, buf))
}

/// A frame of the payload that `payload` appends to a buffer, made with room for
/// `room` bytes of it after the header.
fn framed(room: usize, payload: impl FnOnce(Vec<u8>) -> Result<Vec<u8>, postcard::Error>) -> Result<Vec<u8>, LogError> {
    let mut buf = Vec::with_capacity(HEADER.saturating_add(room));
    buf.resize(HEADER, 0);
    buf = payload(buf).map_err(|e| LogError::Encoding { reason: e.to_string() })?;
    let payload_len = buf.len() - HEADER;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| LogError::Encoding { reason: format!("a frame of {payload_len} bytes is too large") })?;
    let crc = crc32fast::hash(&buf[HEADER..]);
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Timestamp;

    /// A one-input record of model `m`.
    pub(crate) fn record(id: &str) -> PredictionRecord {
        PredictionRecord {
            prediction_id: id.into(),
            ts: Timestamp::from_secs(1),
            model: "m".into(),
            model_version: "1".into(),
            entities: vec![],
            inputs: vec![1.0],
            outputs: vec![2.0],
            holdout: None,
            in_holdout: false,
            eligible: true,
            flag_variant: None,
            latency_us: 3,
        }
    }

    /// The schema of [`record`]'s rows.
    pub(crate) fn schema() -> std::sync::Arc<LogSchema> {
        std::sync::Arc::new(LogSchema {
            model: "m".into(),
            version: "1".into(),
            entities: vec![],
            inputs: vec![("x".into(), fresco_abi::InputType::F64)],
            outputs: vec!["y".into()],
        })
    }

    fn append(spool: &Spool, schema: &std::sync::Arc<LogSchema>, id: &str) -> u64 {
        let batch = PredictionBatch::from_records(schema.clone(), &[record(id)]).unwrap();
        spool.append_batch(&batch, schema.fingerprint()).unwrap()
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(dir.path(), "r", 7, SpoolDurability::Fsync, 1 << 20).unwrap();
        let s = schema();
        for i in 0..3 {
            append(&spool, &s, &format!("p{i}"));
        }
        let path = segment_path(dir.path(), "r", 7);
        let frames = read_segment(&path).unwrap();
        assert_eq!(frames.len(), 4, "one schema frame, then three record frames");
        assert!(matches!(frames[0], Frame::Schema(_)));

        // Cut the file anywhere: replay keeps every whole frame before the cut.
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..bytes.len() {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let n = read_segment(&path).unwrap().len();
            assert!(n <= 4);
        }
        // Flip a byte inside the last frame: it is dropped, the others stay.
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 0xFF;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(read_segment(&path).unwrap().len(), 3);
    }

    #[test]
    fn a_batch_frame_is_the_derived_encoding_of_frame_batch() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(dir.path(), "r", 0, SpoolDurability::Buffered, 1 << 20).unwrap();
        let s = schema();
        let mut records: Vec<PredictionRecord> = (0..300).map(|i| record(&format!("p{i}"))).collect();
        records[7].inputs = vec![f64::NAN];
        records[9].holdout = Some("h".into());
        let batch = PredictionBatch::from_records(s.clone(), &records).unwrap();
        spool.append_batch(&batch, s.fingerprint()).unwrap();
        let expected = encode(&FrameRef::Batch { schema: s.fingerprint(), columns: batch.columns() }).unwrap();
        let bytes = std::fs::read(segment_path(dir.path(), "r", 0)).unwrap();
        assert!(bytes.ends_with(&expected), "the batch frame differs from the derived encoding");
        let frames = read_segment(&segment_path(dir.path(), "r", 0)).unwrap();
        // Compared encoded: a NaN is not equal to itself.
        let Frame::Batch { columns, .. } = &frames[1] else { panic!("not a batch frame: {:?}", frames[1]) };
        assert_eq!(postcard::to_allocvec(&**columns).unwrap(), postcard::to_allocvec(batch.columns()).unwrap());
    }

    #[test]
    fn a_segment_of_record_frames_from_an_earlier_release_is_replayed() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

        let root = tempfile::tempdir().unwrap();
        let spool = root.path().join("_spool");
        std::fs::create_dir_all(&spool).unwrap();
        let s = schema();
        let records = [record("p0"), record("p1")];
        let mut bytes = encode(&FrameRef::Schema(&s)).unwrap();
        bytes.extend(encode(&FrameRef::Predictions { schema: s.fingerprint(), records: &records }).unwrap());
        // An earlier release's name for it.
        std::fs::write(spool.join("seg-0190b3c400007000800000000000beef-0000000000000003.spool"), bytes).unwrap();

        let log = crate::log::PredictionLog::open(crate::log::LogConfig::new(root.path())).unwrap();
        assert_eq!(log.stats().replayed, 2);
        let day = root.path().join("predictions/model=m/date=1970-01-01");
        let files: Vec<_> = std::fs::read_dir(&day).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        assert!(std::fs::read_dir(&spool).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("beef")));
    }

    #[test]
    fn earlier_releases_do_not_take_this_release_s_segments_for_theirs() {
        // How releases before batch frames found segments (`segments` at 060d285).
        let earlier = |name: &str| -> bool {
            let Some(stem) = name.strip_prefix("seg-").and_then(|n| n.strip_suffix(".spool")) else { return false };
            let id = stem.rsplit_once('-').map_or(stem, |(_, id)| id);
            id.parse::<u64>().is_ok()
        };
        let dir = tempfile::tempdir().unwrap();
        let spool =
            Spool::create(dir.path(), "0190b3c400007000800000000000beef", 0, SpoolDurability::Buffered, 200).unwrap();
        let s = schema();
        for i in 0..5 {
            append(&spool, &s, &format!("p{i}"));
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.len() > 1, "{names:?}");
        assert!(names.iter().all(|n| !earlier(n)), "{names:?}");
        // This release finds them, and an earlier release's segment beside them.
        std::fs::write(dir.path().join("seg-0190b3c400007000800000000000aaaa-0000000000000009.spool"), b"").unwrap();
        assert!(earlier("seg-0190b3c400007000800000000000aaaa-0000000000000009.spool"));
        assert_eq!(segments(dir.path()).unwrap().len(), names.len() + 1);
    }

    #[test]
    fn a_segment_already_gone_is_removed_without_error() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(dir.path(), "r", 0, SpoolDurability::Buffered, 1 << 20).unwrap();
        append(&spool, &schema(), "p0");
        spool.rotate().unwrap();
        std::fs::remove_file(segment_path(dir.path(), "r", 0)).unwrap();
        spool.remove(0).unwrap();
        assert!(spool.sealed().is_empty());
    }

    #[test]
    fn only_an_fsync_spool_syncs_when_it_seals_and_creates_segments() {
        for (durability, synced) in [(SpoolDurability::Buffered, false), (SpoolDurability::Fsync, true)] {
            let dir = tempfile::tempdir().unwrap();
            let spool = Spool::create(dir.path(), "r", 0, durability, 200).unwrap();
            for i in 0..10 {
                append(&spool, &schema(), &format!("p{i}"));
            }
            assert!(spool.sealed().len() > 1, "{durability:?}: segments were sealed");
            assert_eq!(spool.rotation_syncs() > 0, synced, "{durability:?}");
        }
    }

    #[test]
    fn rotation_seals_segments_with_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::create(dir.path(), "r", 0, SpoolDurability::Buffered, 200).unwrap();
        let s = schema();
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(append(&spool, &s, &format!("p{i}")));
        }
        let sealed = spool.sealed();
        assert!(!sealed.is_empty());
        let total: u64 =
            sealed.iter().map(|(_, n)| n).sum::<u64>() + ids.iter().filter(|&&i| i == spool.current()).count() as u64;
        assert_eq!(total, 10);
        // Each sealed segment starts with its own schema frame.
        for (id, _) in sealed {
            let frames = read_segment(&segment_path(dir.path(), "r", id)).unwrap();
            assert!(matches!(frames[0], Frame::Schema(_)));
        }
    }
}
