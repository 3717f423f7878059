//! `fresco score`: CSV in, CSV out, streamed in chunks.

use std::io::Write;
use std::path::Path;

use fresco::interval::IntervalRule;
use fresco_runtime::{Engine, Model, PrecompiledInfo, Target};

use crate::{CliError, read_file};

/// Loads a `.wasm` module on an engine for `target`, or a precompiled artifact on an
/// engine for the target it was made for.
fn load(path: &Path, target: Target) -> Result<Model, CliError> {
    let bytes = read_file(path)?;
    if !fresco_runtime::is_precompiled(&bytes) {
        return Ok(Model::from_bytes(&Engine::builder().target(target).build()?, &bytes)?);
    }
    let engine = Engine::builder().target(PrecompiledInfo::read(&bytes)?.target.parse()?).build()?;
    // SAFETY: the artifact is the file the user named to run, as trusted as a binary
    // they run (`--help` says precompiled artifacts are compiled code); its target and
    // engine compatibility are checked before its code is used.
    Ok(unsafe { Model::from_precompiled(&engine, &bytes) }?)
}

/// Rows scored per call into the model.
const CHUNK_ROWS: usize = 8192;

pub fn run(
    model_path: &Path,
    engine: &str,
    input: &Path,
    output: Option<&Path>,
    interval: bool,
) -> Result<(), CliError> {
    let model = load(model_path, engine.parse()?)?;
    let interval_err = |source| CliError::Interval { model: model.name().to_owned(), source };
    let rule = match interval {
        true => Some(
            IntervalRule::for_model(model.metadata())
                .map_err(interval_err)?
                .ok_or_else(|| CliError::NoInterval { model: model.name().to_owned() })?,
        ),
        false => None,
    };
    let in_name = input.display().to_string();
    let csv_err = |path: &str| {
        let path = path.to_owned();
        move |source| CliError::Csv { path: path.clone(), source }
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(input).map_err(csv_err(&in_name))?;
    let header = reader.headers().map_err(csv_err(&in_name))?.clone();
    let columns = column_indices(&model, &header, &in_name)?;

    let out_name = output.map_or_else(|| "<stdout>".to_owned(), |p| p.display().to_string());
    let sink: Box<dyn Write> = match output {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|source| CliError::Io { path: out_name.clone(), source })?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    let mut header_out = model.metadata().outputs.clone();
    if rule.is_some() {
        header_out.extend(["low".to_owned(), "high".to_owned()]);
    }
    writer.write_record(&header_out).map_err(csv_err(&out_name))?;

    let width = model.n_inputs();
    let mut rows: Vec<f64> = Vec::with_capacity(CHUNK_ROWS * width);
    let mut record = csv::StringRecord::new();
    let mut cell = String::new();
    loop {
        let more = reader.read_record(&mut record).map_err(csv_err(&in_name))?;
        if more {
            push_row(&model, &record, &columns, &in_name, &mut rows)?;
        }
        if rows.len() >= CHUNK_ROWS * width || (!more && !rows.is_empty()) {
            let scores = model.predict(&rows)?;
            for (in_row, out_row) in rows.chunks(width.max(1)).zip(scores.chunks(model.n_outputs())) {
                let range = match &rule {
                    Some(rule) => {
                        let i = rule.apply(in_row, out_row).map_err(interval_err)?;
                        vec![i.low, i.high]
                    }
                    None => Vec::new(),
                };
                for value in out_row.iter().chain(&range) {
                    cell.clear();
                    // `{}` on f64 prints the shortest text that parses back to the same value.
                    use std::fmt::Write as _;
                    let _ = write!(cell, "{value}");
                    writer.write_field(&cell).map_err(csv_err(&out_name))?;
                }
                writer.write_record(None::<&[u8]>).map_err(csv_err(&out_name))?;
            }
            rows.clear();
        }
        if !more {
            break;
        }
    }
    writer.flush().map_err(|source| CliError::Io { path: out_name, source })?;
    Ok(())
}

/// Appends a record's model inputs (from `columns`) to `rows`, after the model's
/// missing-value policy.
pub(crate) fn push_row(
    model: &Model,
    record: &csv::StringRecord,
    columns: &[usize],
    path: &str,
    rows: &mut Vec<f64>,
) -> Result<(), CliError> {
    let line = record.position().map_or(0, csv::Position::line);
    let start = rows.len();
    for (input, &col) in model.metadata().inputs.iter().zip(columns) {
        let text = record.get(col).unwrap_or("").trim();
        rows.push(parse_cell(text).ok_or_else(|| CliError::NotANumber {
            path: path.to_owned(),
            line,
            column: input.name.clone(),
            value: text.to_owned(),
        })?);
    }
    model.metadata().apply_missing_policy(&mut rows[start..]).map_err(|source| CliError::Missing {
        path: path.to_owned(),
        line,
        source,
    })
}

/// For each model input, the CSV column holding it.
pub(crate) fn column_indices(model: &Model, header: &csv::StringRecord, path: &str) -> Result<Vec<usize>, CliError> {
    model
        .metadata()
        .inputs
        .iter()
        .map(|input| {
            header.iter().position(|h| h.trim() == input.name).ok_or_else(|| CliError::MissingColumn {
                path: path.to_owned(),
                model: model.name().to_owned(),
                input: input.name.clone(),
                columns: header.iter().collect::<Vec<_>>().join(", "),
            })
        })
        .collect()
}

/// Empty and `NaN` (any case) are missing; anything else must parse as a number.
pub(crate) fn parse_cell(text: &str) -> Option<f64> {
    if text.is_empty() || text.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    text.parse().ok()
}
