//! `fresco intervals`: how often a model's calibrated intervals contain the actual
//! outcome, overall and per segment, on a labeled CSV or Parquet file.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, Float64Array, RecordBatch};
use fresco::abi::SegmentFeature;
use fresco::interval::{CoverageReport, IntervalRule};
use fresco::untrusted::{f64_column, guarded, open_parquet};
use fresco_runtime::{Engine, Model};

use crate::score::{column_indices, parse_cell, push_row};
use crate::{CliError, ROWS_BAR, progress_bar};

/// Rows scored per call into the model.
const CHUNK_ROWS: usize = 8192;

/// A reporting segment from the command line: `input=edge,edge,...`.
pub(crate) fn parse_segment(text: &str) -> Result<SegmentFeature, String> {
    let (input, edges) = text.split_once('=').ok_or("expected INPUT=EDGE,EDGE,... (e.g. distance_km=2,4,6)")?;
    let edges = edges
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.trim().parse::<f64>().map_err(|err| format!("edge `{e}`: {err}")))
        .collect::<Result<Vec<_>, _>>()?;
    let feature = SegmentFeature { input: input.trim().to_owned(), edges };
    feature.check_values().map_err(|e| match e {
        fresco_abi::MetadataError::Invalid { reason, .. } => reason,
        other => other.to_string(),
    })?;
    Ok(feature)
}

/// [`run`] on a local file or an object-store URL (fetched into a temporary directory).
pub fn run_on(model_path: &Path, data: &str, label: &str, extra: &[SegmentFeature]) -> Result<(), CliError> {
    if !fresco::bucket::is_url(data) {
        return run(model_path, Path::new(data), label, extra);
    }
    let dir = tempfile::tempdir().map_err(|e| CliError::Io { path: "temporary directory".into(), source: e })?;
    let local = fresco::bucket::fetch(data, dir.path())?;
    run(model_path, &local, label, extra)
}

pub fn run(model_path: &Path, data: &Path, label: &str, extra: &[SegmentFeature]) -> Result<(), CliError> {
    let engine = Engine::new()?;
    let model = Model::from_file(&engine, model_path)?;
    let meta = model.metadata();
    let rule = IntervalRule::for_model(meta)
        .map_err(|source| CliError::Interval { model: model.name().to_owned(), source })?
        .ok_or_else(|| CliError::NoInterval { model: model.name().to_owned() })?;
    // Report by the segments the model calibrates, then the ones asked for.
    let mut report = CoverageReport::for_model(meta, extra)
        .map_err(|source| CliError::Interval { model: model.name().to_owned(), source })?;

    let name = data.display().to_string();
    let mut score_chunk = |rows: &mut Vec<f64>, labels: &mut Vec<f64>| -> Result<(), CliError> {
        let outputs = model.predict(rows)?;
        let rows_iter = rows.chunks(model.n_inputs()).zip(outputs.chunks(model.n_outputs()));
        for ((row, out), &actual) in rows_iter.zip(labels.iter()) {
            rule.apply(row, out)
                .and_then(|interval| report.add(row, &interval, actual))
                .map_err(|source| CliError::Interval { model: model.name().to_owned(), source })?;
        }
        rows.clear();
        labels.clear();
        Ok(())
    };
    let is_parquet = data.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        read_parquet(&model, data, &name, label, &mut score_chunk)?;
    } else {
        read_csv(&model, data, &name, label, &mut score_chunk)?;
    }
    let overall = report.overall();
    if overall.rows == 0 {
        return Err(CliError::NoRows { path: name });
    }
    println!(
        "{} v{} on {name}: {} rows, nominal coverage {:.0} %{}",
        model.name(),
        meta.version,
        overall.rows,
        100.0 * meta.interval.as_ref().map_or(f64::NAN, |s| s.coverage),
        if rule.is_segmented() { " (offsets per segment)" } else { " (one global offset)" }
    );
    print!("{report}");
    Ok(())
}

type Chunk<'a> = dyn FnMut(&mut Vec<f64>, &mut Vec<f64>) -> Result<(), CliError> + 'a;

fn not_a_label(path: &str, line: u64, label: &str, text: &str) -> CliError {
    CliError::NotANumber { path: path.to_owned(), line, column: label.to_owned(), value: text.to_owned() }
}

fn read_csv(model: &Model, data: &Path, name: &str, label: &str, chunk: &mut Chunk<'_>) -> Result<(), CliError> {
    let csv_err = |source| CliError::Csv { path: name.to_owned(), source };
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(data).map_err(csv_err)?;
    let header = reader.headers().map_err(csv_err)?.clone();
    let columns = column_indices(model, &header, name)?;
    let label_col = header.iter().position(|h| h.trim() == label).ok_or_else(|| CliError::MissingColumn {
        path: name.to_owned(),
        model: model.name().to_owned(),
        input: label.to_owned(),
        columns: header.iter().collect::<Vec<_>>().join(", "),
    })?;
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        let line = record.position().map_or(0, csv::Position::line);
        let text = record.get(label_col).unwrap_or("").trim();
        // A row without its outcome cannot be judged.
        let actual = parse_cell(text).filter(|v| v.is_finite()).ok_or_else(|| not_a_label(name, line, label, text))?;
        push_row(model, &record, &columns, name, &mut rows)?;
        labels.push(actual);
        if labels.len() >= CHUNK_ROWS {
            chunk(&mut rows, &mut labels)?;
        }
    }
    if !labels.is_empty() {
        chunk(&mut rows, &mut labels)?;
    }
    Ok(())
}

fn read_parquet(model: &Model, data: &Path, name: &str, label: &str, chunk: &mut Chunk<'_>) -> Result<(), CliError> {
    let meta = model.metadata();
    let mut wanted: Vec<&str> = meta.inputs.iter().map(|i| i.name.as_str()).collect();
    wanted.push(label);
    let (mut rows, mut labels) = (Vec::new(), Vec::new());
    for_each_batch(data, model.name(), &wanted, |columns, first_row| {
        let (label_values, input_values) = columns.split_last().ok_or(CliError::NoRows { path: name.to_owned() })?;
        for r in 0..label_values.len() {
            let row_number = first_row.saturating_add(r as u64).saturating_add(1);
            let actual = value(label_values, r);
            if !actual.is_finite() {
                return Err(not_a_label(name, row_number, label, &actual.to_string()));
            }
            let start = rows.len();
            rows.extend(input_values.iter().map(|c| value(c, r)));
            meta.apply_missing_policy(&mut rows[start..]).map_err(|source| CliError::Missing {
                path: name.to_owned(),
                line: row_number,
                source,
            })?;
            labels.push(actual);
        }
        if !labels.is_empty() {
            chunk(&mut rows, &mut labels)?;
        }
        Ok(())
    })
}

/// Reads `columns` of a Parquet file as f64 (nulls as NaN), batch by batch, with a
/// progress bar: `f` gets each batch's columns in the order asked and the index of its
/// first row.
pub(crate) fn for_each_batch(
    data: &Path,
    model: &str,
    columns: &[&str],
    mut f: impl FnMut(&[Float64Array], u64) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let name = data.display().to_string();
    let unreadable = |reason: String| CliError::Unreadable { path: name.clone(), reason };
    let file = File::open(data).map_err(|source| CliError::Io { path: name.clone(), source })?;
    let builder = open_parquet(file).map_err(unreadable)?;
    let total = builder.metadata().file_metadata().num_rows().max(0).unsigned_abs();
    let bar = progress_bar(total, ROWS_BAR);
    let mut first_row: u64 = 0;
    let mut reader = guarded(|| builder.with_batch_size(CHUNK_ROWS).build()).map_err(unreadable)?;
    while let Some(batch) = guarded(|| reader.next().transpose()).map_err(unreadable)? {
        let arrays = columns
            .iter()
            .map(|column| float_column(&batch, column, &name, model, first_row))
            .collect::<Result<Vec<_>, _>>()?;
        f(&arrays, first_row)?;
        first_row = first_row.saturating_add(batch.num_rows() as u64);
        bar.set_position(first_row);
    }
    bar.finish_and_clear();
    Ok(())
}

/// A null is a missing value.
pub(crate) fn value(column: &Float64Array, row: usize) -> f64 {
    if column.is_null(row) { f64::NAN } else { column.value(row) }
}

/// The column of that name, as f64 without a lossy conversion
/// ([`fresco::untrusted::f64_column`]); `first_row` is the batch's first row in the file.
pub(crate) fn float_column(
    batch: &RecordBatch,
    column: &str,
    path: &str,
    model: &str,
    first_row: u64,
) -> Result<Float64Array, CliError> {
    let array = batch.column_by_name(column).ok_or_else(|| CliError::MissingColumn {
        path: path.to_owned(),
        model: model.to_owned(),
        input: column.to_owned(),
        columns: batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
    })?;
    f64_column(array, column, first_row).map_err(|source| CliError::Column { path: path.to_owned(), source })
}
