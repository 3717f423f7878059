//! `fresco drift`: a model's logged traffic against its training statistics, as a
//! self-contained HTML report (inline SVG charts, no script, nothing fetched).

use std::fmt::Write as _;
use std::fs::File;
use std::path::Path;

use arrow_array::{Array, Int64Array, StringArray};
use arrow_schema::DataType;
use fresco::Timestamp;
use fresco::abi::{DistributionStats, ModelMetadata, StatsKind};
use fresco::drift::{AlertKind, MonitorConfig, MonitoredColumn, Verdict, WindowSnapshot};
use fresco::untrusted::{guarded, open_parquet};
use fresco_runtime::{Engine, Model};
use plotters::prelude::*;

use crate::CliError;
use crate::intervals::{float_column, value};

/// Live values tested per column: the exact KS p-value holds up to this many.
const TEST_SAMPLE: usize = fresco::drift::KS_EXACT_MAX;

/// One input or output, judged by the monitor's rules.
struct ColumnReport {
    column: MonitoredColumn,
    role: &'static str,
    counts: WindowSnapshot,
    verdict: Verdict,
}

impl ColumnReport {
    fn name(&self) -> &str {
        self.column.name()
    }

    fn stats(&self) -> &DistributionStats {
        self.column.stats()
    }

    fn psi(&self) -> Option<f64> {
        self.verdict.score.map(|(_, psi)| psi)
    }

    /// What fired, by the names of the monitor's alerts.
    fn findings(&self) -> String {
        if !self.verdict.judged {
            return format!("not judged: {} rows, {} needed", self.counts.rows, MonitorConfig::default().min_rows);
        }
        let names: Vec<&str> = self.verdict.findings.iter().map(AlertKind::name).collect();
        if names.is_empty() { "-".to_owned() } else { names.join(", ") }
    }
}

pub fn run(
    model_path: &Path,
    logs: &crate::dataset::Roots,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    out: &Path,
) -> Result<(), CliError> {
    let engine = Engine::new()?;
    let model = Model::from_file(&engine, model_path)?;
    let meta = model.metadata();
    let stats = meta.training_stats.as_ref().ok_or_else(|| CliError::NoTrainingStats { model: meta.name.clone() })?;
    let columns: Vec<(MonitoredColumn, &'static str)> = meta
        .inputs
        .iter()
        .filter_map(|i| stats.inputs.get(&i.name).map(|s| (MonitoredColumn::input(i, s.clone()), "input")))
        .chain(
            meta.outputs
                .iter()
                .filter_map(|o| stats.outputs.get(o).map(|s| (MonitoredColumn::output(o, s.clone()), "output"))),
        )
        .collect();
    let files = fresco::dataset::prediction_files(logs, &meta.name)?;
    let names: Vec<&str> = columns.iter().map(|c| c.0.name()).collect();
    let live = read_logged(&files, meta, &names, from, to)?;
    if live.rows == 0 {
        let sources = logs.sources.join(", ");
        return Err(CliError::NoRows { path: format!("{sources} (model {} v{})", meta.name, meta.version) });
    }
    let config = MonitorConfig::default();
    let mut reports: Vec<ColumnReport> = columns
        .into_iter()
        .zip(&live.values)
        .map(|((column, role), values)| {
            let counts = column.count(values, TEST_SAMPLE);
            let verdict = column.judge(&counts, &config);
            ColumnReport { column, role, counts, verdict }
        })
        .collect();
    // Worst first: drifted columns, then by PSI.
    reports.sort_by(|a, b| {
        b.verdict.drifted().cmp(&a.verdict.drifted()).then(b.psi().unwrap_or(0.0).total_cmp(&a.psi().unwrap_or(0.0)))
    });
    let html = render(meta, &live, &reports)?;
    let io = |source| CliError::Io { path: out.display().to_string(), source };
    std::fs::write(out, html).map_err(io)?;
    let drifted: Vec<&str> = reports.iter().filter(|r| r.verdict.drifted()).map(ColumnReport::name).collect();
    println!(
        "{} v{}: {} logged predictions from {} files; {} of {} columns drifted{}; report: {}",
        meta.name,
        meta.version,
        live.rows,
        live.files,
        drifted.len(),
        reports.len(),
        if drifted.is_empty() { String::new() } else { format!(" ({})", drifted.join(", ")) },
        out.display()
    );
    Ok(())
}

/// The logged values of each column, in the order asked.
struct Logged {
    values: Vec<Vec<f64>>,
    rows: u64,
    files: usize,
    /// Rows of other versions of the model, left out.
    other_versions: u64,
    first: Option<i64>,
    last: Option<i64>,
}

fn read_logged(
    files: &[std::path::PathBuf],
    meta: &ModelMetadata,
    columns: &[&str],
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> Result<Logged, CliError> {
    let mut logged = Logged {
        values: vec![Vec::new(); columns.len()],
        rows: 0,
        files: 0,
        other_versions: 0,
        first: None,
        last: None,
    };
    let (from, to) = (from.map_or(i64::MIN, Timestamp::as_micros), to.map_or(i64::MAX, Timestamp::as_micros));
    for path in files {
        let name = path.display().to_string();
        let unreadable = |reason: String| CliError::Unreadable { path: name.clone(), reason };
        let file = File::open(path).map_err(|source| CliError::Io { path: name.clone(), source })?;
        let mut reader = guarded(|| open_parquet(file)?.build().map_err(|e| e.to_string())).map_err(unreadable)?;
        logged.files += 1;
        let mut first_row: u64 = 0;
        while let Some(batch) = guarded(|| reader.next().transpose()).map_err(unreadable)? {
            let batch_first_row = first_row;
            first_row = first_row.saturating_add(batch.num_rows() as u64);
            let column = |c: &str, ty: &DataType| -> Result<arrow_array::ArrayRef, CliError> {
                let array = batch.column_by_name(c).ok_or_else(|| CliError::MissingColumn {
                    path: name.clone(),
                    model: meta.name.clone(),
                    input: c.to_owned(),
                    columns: batch.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
                })?;
                arrow_cast::cast(array, ty).map_err(|source| CliError::Arrow { path: name.clone(), source })
            };
            let ts = column("ts", &DataType::Int64)?;
            let version = column("model_version", &DataType::Utf8)?;
            let (Some(ts), Some(version)) =
                (ts.as_any().downcast_ref::<Int64Array>(), version.as_any().downcast_ref::<StringArray>())
            else {
                continue;
            };
            let arrays = columns
                .iter()
                .map(|c| float_column(&batch, c, &name, &meta.name, batch_first_row))
                .collect::<Result<Vec<_>, _>>()?;
            for r in 0..batch.num_rows() {
                let t = if ts.is_null(r) { continue } else { ts.value(r) };
                if t < from || t >= to {
                    continue;
                }
                if version.is_null(r) || version.value(r) != meta.version {
                    logged.other_versions += 1;
                    continue;
                }
                logged.rows += 1;
                logged.first = Some(logged.first.map_or(t, |f| f.min(t)));
                logged.last = Some(logged.last.map_or(t, |l| l.max(t)));
                for (values, array) in logged.values.iter_mut().zip(&arrays) {
                    values.push(value(array, r));
                }
            }
        }
    }
    Ok(logged)
}

/// `YYYY-MM-DD HH:MM UTC`.
fn utc_minute(micros: i64) -> String {
    let minute_of_day = micros.div_euclid(60_000_000).rem_euclid(24 * 60);
    format!("{} {:02}:{:02} UTC", Timestamp::from_micros(micros).utc_date(), minute_of_day / 60, minute_of_day % 60)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn render(meta: &ModelMetadata, live: &Logged, reports: &[ColumnReport]) -> Result<String, CliError> {
    let span = match (live.first, live.last) {
        (Some(f), Some(l)) => format!("{} to {}", utc_minute(f), utc_minute(l)),
        _ => String::new(),
    };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Drift: {name} v{version}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
         tr.drifted td{{background:#fde2e2}}figure{{margin:1.5em 0}}figcaption{{font-weight:bold}}</style></head><body>\n\
         <h1>Drift report: {name} v{version}</h1>\n<p>{rows} logged predictions ({span}) from {files} files, against the \
         statistics of the training data{others}, by the rules of the online monitor (a drift test with a PSI of at \
         least 0.1, values out of range, a changed missing rate, new categories, a constant, fractions for an \
         integer). Worst first.</p>\n<table><tr><th>column</th><th>role</th><th>test</th><th>score</th>\
         <th>threshold</th><th>drifted</th><th>findings</th><th>PSI (training bins)</th>\
         <th>missing live / training</th><th>out of training range</th></tr>\n",
        name = escape(&meta.name),
        version = escape(&meta.version),
        rows = live.rows,
        files = live.files,
        others = if live.other_versions > 0 {
            format!("; {} rows of other versions left out", live.other_versions)
        } else {
            String::new()
        },
    );
    for r in reports {
        let (test, score, threshold) = match r.verdict.score {
            Some((t, _)) => (t.method.name().to_owned(), score_text(t.score), format!("{}", t.threshold)),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let _ = writeln!(
            html,
            "<tr class=\"{class}\"><td>{name}</td><td>{role}</td><td>{test}</td><td>{score}</td><td>{threshold}</td>\
             <td>{drifted}</td><td>{findings}</td><td>{psi}</td><td>{ml:.3} / {mt:.3}</td><td>{oor:.2} %</td></tr>",
            class = if r.verdict.drifted() { "drifted" } else { "stable" },
            name = escape(r.name()),
            role = r.role,
            drifted = if r.verdict.drifted() { "yes" } else { "no" },
            findings = escape(&r.findings()),
            psi = r.psi().map_or("-".to_owned(), |p| format!("{p:.4}")),
            ml = r.counts.missing_rate(),
            mt = r.stats().missing_rate,
            oor = 100.0 * r.counts.out_of_range_rate(),
        );
    }
    html.push_str("</table>\n");
    for r in reports {
        let svg =
            chart(r).map_err(|reason| CliError::Report { reason: format!("chart of `{}`: {reason}", r.name()) })?;
        let _ = writeln!(
            html,
            "<figure data-column=\"{name}\"><figcaption>{name} ({role})</figcaption>\n{svg}</figure>",
            name = escape(r.name()),
            role = r.role
        );
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

/// Training and live shares per training bin, drawn over each other.
fn chart(r: &ColumnReport) -> Result<String, String> {
    let share = |counts: &[u64]| {
        let total: u64 = counts.iter().sum();
        counts.iter().map(|c| if total == 0 { 0.0 } else { *c as f64 / total as f64 }).collect::<Vec<f64>>()
    };
    let (training, live) = (share(&r.stats().counts), share(&r.counts.bins));
    let top = training.iter().chain(&live).copied().fold(0.0f64, f64::max).max(1e-3) * 1.1;
    let bins = training.len().max(1);
    let edges = &r.stats().bin_edges;
    let label = |x: &f64| -> String {
        let i = x.round() as usize;
        match (r.stats().kind, i) {
            (StatsKind::Categorical, _) => category_label(r.stats(), i),
            (_, 0) => format!("< {}", short(edges.first().copied().unwrap_or(f64::NAN))),
            (_, i) if i >= edges.len() => format!("≥ {}", short(edges.last().copied().unwrap_or(f64::NAN))),
            (_, i) => short(edges[i - 1]),
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..bins as f64 - 0.5, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bins.min(24))
            .x_label_formatter(&label)
            .y_desc("share of rows")
            .y_label_formatter(&|y| format!("{:.0} %", 100.0 * y))
            .draw()
            .map_err(|e| e.to_string())?;
        let bars = |shares: Vec<f64>, offset: f64, color: RGBColor| {
            shares.into_iter().enumerate().map(move |(i, s)| {
                let x = i as f64 + offset;
                Rectangle::new([(x - 0.2, 0.0), (x + 0.2, s)], color.mix(0.75).filled())
            })
        };
        let training_color = RGBColor(66, 114, 196);
        let live_color = RGBColor(237, 125, 49);
        chart
            .draw_series(bars(training, -0.1, training_color))
            .map_err(|e| e.to_string())?
            .label("training")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], training_color.filled()));
        chart
            .draw_series(bars(live, 0.1, live_color))
            .map_err(|e| e.to_string())?
            .label("live")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], live_color.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The category a categorical bin holds: the training value below its upper edge.
fn category_label(stats: &DistributionStats, bin: usize) -> String {
    let mut values: Vec<f64> = stats.categories.keys().filter_map(|k| k.parse().ok()).collect();
    values.sort_by(f64::total_cmp);
    values.get(bin).map_or_else(|| "?".to_owned(), |v| short(*v))
}

/// A p-value or distance: four decimals, or two significant digits when tiny.
fn score_text(x: f64) -> String {
    if x != 0.0 && x.abs() < 1e-3 { format!("{x:.1e}") } else { format!("{x:.4}") }
}

fn short(x: f64) -> String {
    if x.abs() >= 1e5 || (x != 0.0 && x.abs() < 1e-3) {
        format!("{x:.2e}")
    } else {
        format!("{}", (x * 1000.0).round() / 1000.0)
    }
}
