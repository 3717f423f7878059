//! `fresco`: inspect and score fresco models from the command line.

mod backfill;
mod compile;
mod dataset;
mod drift;
mod events;
mod flags;
mod holdout;
mod inspect;
mod intervals;
mod materialize;
mod registry;
mod score;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inspect and score fresco models (.wasm, ABI v1).
#[derive(Debug, Parser)]
#[command(name = "fresco", version, about)]
struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace (default: warnings).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Errors only on stderr (no warnings).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

/// Sends the SDK's `tracing` events (warnings by default) to stderr, so that a refused
/// flag state or a skipped file is said, not lost.
fn install_log_output(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, 2) => tracing::Level::DEBUG,
        (false, _) => tracing::Level::TRACE,
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .finish();
    // Only fails when a subscriber is already installed, which main does not do.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve models over HTTP (fresco-http) as a configuration file describes them
    /// (see examples/serve/fresco.toml): predict, outcomes, treatments, /metrics,
    /// /healthz, /readyz. SIGTERM or SIGINT stop it gracefully: no new connections,
    /// requests in flight finish, the log is published (and uploaded), exit 0.
    Serve {
        /// The configuration (TOML). FRESCO_LISTEN, FRESCO_LOG_ROOT, FRESCO_LOG_UPLOAD_TO
        /// and FRESCO_REGISTRY override it.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a model's metadata.
    Inspect {
        /// The model file.
        model: PathBuf,
        /// Print the raw metadata JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Compare a model's logged predictions with its training statistics: a
    /// self-contained HTML report, per input and output the training and live histograms
    /// drawn over each other and the drift test, worst first.
    Drift {
        /// The model file (compiled with --train-data).
        #[arg(long)]
        model: PathBuf,
        #[command(flatten)]
        logs: dataset::LogSources,
        /// Keep predictions made at or after this time (YYYY-MM-DD, RFC 3339 UTC, or epoch seconds).
        #[arg(long)]
        from: Option<fresco::Timestamp>,
        /// Keep predictions made before this time.
        #[arg(long)]
        to: Option<fresco::Timestamp>,
        /// The report to write (HTML).
        #[arg(long)]
        out: PathBuf,
    },
    /// Compile LightGBM / XGBoost models into one .wasm model (ABI v1).
    ///
    /// Several models over the same inputs (e.g. quantile models for q10, q50, q90) are
    /// packed into one module, their outputs in the order given.
    Compile {
        /// Model files: LightGBM text (`model.txt`) or XGBoost JSON (`model.json`).
        #[arg(required = true)]
        models: Vec<PathBuf>,
        /// Where to write the module.
        #[arg(long, short)]
        output: PathBuf,
        /// Model name recorded in the metadata (default: the first file's stem).
        #[arg(long)]
        name: Option<String>,
        /// Model version recorded in the metadata.
        #[arg(long, default_value = "1")]
        version: String,
        /// Input format; detected from each file when omitted.
        #[arg(long)]
        format: Option<fresco_compiler::Format>,
        /// A calibrated interval over the outputs, as JSON: `{"coverage": 0.8,
        /// "lower": "q10", "mid": "q50", "upper": "q90", "lower_offset": 0.4,
        /// "upper_offset": 0.4}` (conformal offsets widen the quantile bounds), with
        /// optional `"segments"` for offsets per segment of the inputs (see docs/intervals.md).
        #[arg(long, value_name = "JSON_FILE")]
        interval: Option<PathBuf>,
        /// Training data (Parquet, a column per input): its statistics per input and per
        /// output (as the model scores it) go into the metadata, for drift monitoring.
        #[arg(long, value_name = "PARQUET")]
        train_data: Option<PathBuf>,
        /// Quantile bins per numeric column of the training statistics.
        #[arg(long, default_value_t = fresco::drift::DEFAULT_BINS, requires = "train_data")]
        bins: usize,
        /// Also compile the module ahead of time, for devices that should not compile at
        /// start-up: writes `OUTPUT` with the extension `<target>.cwasm` beside it
        /// (`fresco score` and `Model::from_precompiled` load it).
        #[arg(long)]
        precompile: bool,
        /// The precompiled artifact's target: `native` (this machine's CPU), `pulley`
        /// (bytecode for wasmtime's interpreter, for hosts that may not JIT), or a
        /// target triple this build's Cranelift supports.
        #[arg(long, default_value = "native", requires = "precompile")]
        target: String,
    },
    /// Score the rows of a CSV file.
    ///
    /// The input CSV has a header; columns are matched to the model's inputs by name
    /// (other columns are ignored). An empty cell or `NaN` is a missing value, handled as
    /// the model declares. The output has one column per model output.
    Score {
        /// The model file.
        model: PathBuf,
        /// Input CSV.
        #[arg(long, short)]
        input: PathBuf,
        /// Output CSV (standard output when omitted).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Also write each row's calibrated range (`low`, `high` columns) by the
        /// interval rule the model declares.
        #[arg(long)]
        interval: bool,
        /// Run the model as native code (`native`) or on wasmtime's Pulley interpreter
        /// (`pulley`). A precompiled artifact (`fresco compile --precompile`) runs on
        /// the target it was made for.
        #[arg(long, default_value = "native")]
        engine: String,
    },
    /// Measure a model's calibrated intervals on labeled rows: coverage and mean width
    /// overall and per segment.
    ///
    /// DATA is CSV (as for `score`, plus the label column) or Parquet (`.parquet`, e.g. a
    /// training set from `fresco dataset`). Rows are reported by the segments the model
    /// calibrates its offsets on, then by each --segment.
    Intervals {
        /// The model file (its metadata must declare an interval).
        #[arg(long)]
        model: PathBuf,
        /// Labeled rows: CSV or Parquet, a local file or an object's URL
        /// (`s3://bucket/train.parquet`, credentials from the environment).
        #[arg(long, value_name = "FILE|URL")]
        data: String,
        /// The column holding the actual outcome.
        #[arg(long, default_value = "label")]
        label: String,
        /// Also report by this input cut at these edges: `distance_km=2,4,6`. Repeatable.
        #[arg(long, value_parser = intervals::parse_segment, value_name = "INPUT=EDGES")]
        segment: Vec<fresco::abi::SegmentFeature>,
    },
    /// Show holdout assignments: each id's bucket and whether it is held out.
    ///
    /// Answers "why was this user not treated?": an id is in the holdout when its bucket
    /// (murmur3 of `salt:id`, mod 10000) is below round(fraction × 10000).
    Holdout {
        /// The holdout's salt.
        #[arg(long)]
        salt: String,
        /// The held-out fraction, in [0, 1].
        #[arg(long)]
        fraction: f64,
        /// Entity ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Show a flag's decision for each id (as the Unleash context's `userId`): whether it
    /// is on, and the variant and payload (the model version) chosen.
    ///
    /// Answers "which model did this user get, and why?" from a snapshot of the flag
    /// state (the body of the Unleash server's `GET /api/client/features`).
    Flags {
        /// The flag state snapshot (JSON).
        #[arg(long)]
        snapshot: PathBuf,
        /// The flag.
        #[arg(long)]
        flag: String,
        /// Entity ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Drive a model registry: versioned artifacts and the manifest naming the serving
    /// version.
    Registry {
        /// The registry: a directory, or an object-store prefix shared by a fleet
        /// (`s3://bucket/registry`; credentials and endpoint from the environment).
        #[arg(long, value_name = "DIR|URL")]
        root: String,
        #[command(subcommand)]
        action: registry::Action,
    },
    /// Build a training set: logged predictions joined with their outcomes.
    ///
    /// For each prediction of MODEL made in [--from, --to), the latest outcome within the
    /// label window after it; predictions without one are left out. --policy chooses the
    /// rows: holdout-only (never treated: clean labels), untreated, or
    /// all-with-treatment (every row, with its `treated` column). Prints the row count of
    /// every policy.
    Dataset {
        #[command(flatten)]
        logs: dataset::LogSources,
        /// The model.
        #[arg(long)]
        model: String,
        /// Keep predictions made at or after this time (YYYY-MM-DD, RFC 3339 UTC, or epoch seconds).
        #[arg(long)]
        from: Option<fresco::Timestamp>,
        /// Keep predictions made before this time.
        #[arg(long)]
        to: Option<fresco::Timestamp>,
        /// Days after a prediction during which an outcome counts.
        #[arg(long, default_value_t = 30)]
        label_window_days: u64,
        /// holdout-only, untreated or all-with-treatment.
        #[arg(long)]
        policy: fresco::dataset::TreatmentPolicy,
        /// Outcomes held in memory per pass (bounds memory on logs larger than RAM).
        #[arg(long, default_value_t = 5_000_000)]
        max_outcomes_in_memory: usize,
        /// The training set to write (Parquet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Compute windowed features point-in-time for every row of a Parquet table.
    ///
    /// Each row (its `ts` and entity columns) gets, per feature of the definitions file,
    /// the value an online aggregate store read at that time would have returned: the
    /// event logs are replayed in arrival order (`arrival` column, else `ts`), events
    /// beyond a stream's late tolerance dropped the same way.
    Backfill {
        /// The stream and feature definitions (TOML: `[[stream]]`, `[[feature]]`).
        #[arg(long)]
        definitions: PathBuf,
        /// A stream's event log: STREAM=PATH (Parquet: entity column, `ts`, optional
        /// `value` and `arrival`). Repeat for several streams.
        #[arg(long = "events", value_parser = backfill::parse_event_log, required_unless_present_any = ["archive", "redis"])]
        events: Vec<fresco::aggregates::EventLog>,
        /// An archive of the shared event stream (`fresco events archive`).
        #[arg(long, conflicts_with = "events")]
        archive: Option<PathBuf>,
        /// The shared event stream's Redis server (`redis://host:port`): its entries
        /// after what --archive holds, if given.
        #[arg(long, conflicts_with = "events")]
        redis: Option<String>,
        /// The stream's key, with --redis.
        #[arg(long, default_value = "fresco:events")]
        stream_key: String,
        /// With --redis: replay the stream only through this position (HI-LO), e.g.
        /// what the replicas had applied.
        #[arg(long, requires = "redis")]
        until: Option<fresco::events::Position>,
        /// The table (Parquet with `ts` and the streams' entity columns).
        #[arg(long)]
        table: PathBuf,
        /// Where to write the table with the feature columns added.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// The shared event stream of windowed aggregates (Redis Streams): archive it to
    /// Parquet, trim it, show where it stands.
    Events {
        #[command(subcommand)]
        action: events::Action,
    },
    /// Load feature rows from a Parquet file into an embedded feature store.
    ///
    /// The view is created from the file's columns when the store does not have it yet
    /// (every column but the entity and event-time columns is a feature); the latest
    /// event per entity wins.
    Materialize {
        /// The store file (created if absent).
        #[arg(long)]
        store: PathBuf,
        /// The feature view.
        #[arg(long)]
        view: String,
        /// The entity key column.
        #[arg(long)]
        entity: String,
        /// The event-time column.
        #[arg(long, default_value = "event_timestamp")]
        timestamp: String,
        /// Time to live for a new view, in seconds.
        #[arg(long)]
        ttl_secs: Option<u64>,
        /// The Parquet file.
        parquet: PathBuf,
    },
}

/// Everything the command line can report.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The runtime refused or failed the model.
    #[error(transparent)]
    Runtime(#[from] fresco_runtime::Error),
    /// Reading or writing a CSV failed.
    #[error("{path}: {source}")]
    Csv {
        /// The file concerned.
        path: String,
        /// What the CSV reader or writer said.
        #[source]
        source: csv::Error,
    },
    /// An input column the model needs is absent.
    #[error("{path}: no column `{input}`, which model `{model}` needs (columns: {columns})")]
    MissingColumn {
        /// The input CSV.
        path: String,
        /// The model.
        model: String,
        /// The input it needs.
        input: String,
        /// The header found.
        columns: String,
    },
    /// A cell is not a number.
    #[error("{path}: line {line}, column `{column}`: `{value}` is not a number")]
    NotANumber {
        /// The input CSV.
        path: String,
        /// 1-based line in the file.
        line: u64,
        /// Column name.
        column: String,
        /// The cell's text.
        value: String,
    },
    /// A required value is missing.
    #[error("{path}: line {line}: {source}")]
    Missing {
        /// The input CSV.
        path: String,
        /// 1-based line in the file.
        line: u64,
        /// Which input.
        #[source]
        source: fresco_abi::MissingInput,
    },
    /// The model's interval cannot be applied to these rows.
    #[error("model `{model}`: {source}")]
    Interval {
        /// The model.
        model: String,
        /// What is wrong.
        #[source]
        source: fresco::interval::IntervalError,
    },
    /// The model declares no interval.
    #[error("model `{model}` declares no interval (compile it with --interval)")]
    NoInterval {
        /// The model.
        model: String,
    },
    /// The model has no training statistics to compare with.
    #[error("model `{model}` carries no training statistics (compile it with --train-data)")]
    NoTrainingStats {
        /// The model.
        model: String,
    },
    /// The drift report could not be drawn.
    #[error("drift report: {reason}")]
    Report {
        /// Why.
        reason: String,
    },
    /// A data file holds no rows.
    #[error("{path}: no rows")]
    NoRows {
        /// The file.
        path: String,
    },
    /// A Parquet file the reader refused, or that made it fail (malformed metadata).
    #[error("{path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A column that cannot be read as numbers without losing values.
    #[error("{path}: {source}")]
    Column {
        /// The file.
        path: String,
        /// Which column, row and value.
        #[source]
        source: fresco::untrusted::ColumnError,
    },
    /// A prediction log's `ts` or `model_version` column could not be cast.
    #[error("{path}: {source}")]
    Arrow {
        /// The file.
        path: String,
        /// What Arrow said.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// Compiling a model failed.
    #[error(transparent)]
    Compile(#[from] fresco_compiler::CompileError),
    /// The holdout is invalid.
    #[error(transparent)]
    Holdout(#[from] fresco::holdout::HoldoutError),
    /// Building a training set failed.
    #[error(transparent)]
    Dataset(#[from] fresco::dataset::DatasetError),
    /// Windowed aggregates: bad definitions, event logs or tables.
    #[error(transparent)]
    Aggregates(#[from] fresco::aggregates::AggregateError),
    /// The feature store refused or failed.
    #[error(transparent)]
    Store(#[from] fresco::StoreError),
    /// A JSON document could not be read.
    #[error("{path}: {source}")]
    Json {
        /// The file concerned.
        path: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The model registry refused.
    #[error(transparent)]
    Registry(#[from] fresco::registry::RegistryError),
    /// `fresco serve`'s configuration could not be used.
    #[error(transparent)]
    ServeConfig(#[from] fresco_http::ConfigError),
    /// `fresco serve` could not start or stop cleanly.
    #[error("fresco serve: {reason}")]
    Serve {
        /// Why.
        reason: String,
    },
    /// An object-store location could not be read or written.
    #[error(transparent)]
    Bucket(#[from] fresco::bucket::BucketError),
    /// A client refused a version or a configuration.
    #[error(transparent)]
    Client(#[from] fresco::Error),
    /// Flag state that could not be read.
    #[error(transparent)]
    Flags(#[from] fresco_unleash::FlagError),
    /// The shared event stream failed.
    #[error(transparent)]
    Stream(#[from] fresco::events::StreamError),
    /// Archiving the event stream failed.
    #[error(transparent)]
    Archive(#[from] fresco::events::archive::ArchiveError),
    /// A flag the snapshot does not hold (every id would read it as off).
    #[error("{snapshot}: no flag `{flag}` (flags: {known})")]
    UnknownFlag {
        /// The flag asked for.
        flag: String,
        /// The snapshot file.
        snapshot: String,
        /// The flags it holds.
        known: String,
    },
    /// A file that is not a known artifact.
    #[error("{path}: not a model artifact (.wasm, .onnx, LightGBM .txt, XGBoost .json)")]
    UnknownArtifact {
        /// The file.
        path: String,
    },
    /// A registry version whose module declares another model or version.
    #[error("{model} {version}: the module declares model `{declared}` version `{declared_version}`")]
    Mislabelled {
        /// The model directory.
        model: String,
        /// The version directory.
        version: String,
        /// The model its metadata names.
        declared: String,
        /// The version its metadata names.
        declared_version: String,
    },
    /// An ONNX file published without its metadata.
    #[error("an ONNX model needs --metadata (its inputs and outputs)")]
    OnnxMetadata,
    /// Writing the output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    // A malformed input file can make a reader panic; `guarded` turns that into the
    // error printed below, so the panic itself is not reported twice.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !fresco::untrusted::inside_guard() {
            default_hook(info);
        }
    }));
    let cli = Cli::parse();
    install_log_output(cli.verbose, cli.quiet);
    let result = match cli.command {
        Command::Inspect { model, json } => inspect::run(&model, json),
        Command::Compile { models, output, name, version, format, interval, train_data, bins, precompile, target } => {
            let precompile = precompile.then_some(target.as_str());
            let extras =
                compile::Extras { interval: interval.as_deref(), train_data: train_data.as_deref(), bins, precompile };
            compile::run(&models, &output, name, &version, format, extras)
        }
        Command::Drift { model, logs, from, to, out } => {
            logs.roots().and_then(|roots| drift::run(&model, &roots, from, to, &out))
        }
        Command::Score { model, input, output, interval, engine } => {
            score::run(&model, &engine, &input, output.as_deref(), interval)
        }
        Command::Intervals { model, data, label, segment } => intervals::run_on(&model, &data, &label, &segment),
        Command::Holdout { salt, fraction, ids } => holdout::run(&salt, fraction, &ids),
        Command::Flags { snapshot, flag, ids } => flags::run(&snapshot, &flag, &ids),
        Command::Registry { root, action } => registry::run(&root, action),
        Command::Serve { config } => serve::run(&config),
        Command::Dataset { logs, model, from, to, label_window_days, policy, max_outcomes_in_memory, out } => {
            logs.roots().and_then(|roots| {
                dataset::run(&roots, &model, from, to, label_window_days, policy, max_outcomes_in_memory, &out)
            })
        }
        Command::Backfill { definitions, events, archive, redis, stream_key, until, table, out } => {
            let stream = redis.map(|redis| events::StreamArgs { redis, stream_key });
            let source =
                backfill::Source { logs: &events, archive: archive.as_deref(), stream: stream.as_ref(), until };
            backfill::run(&definitions, source, &table, &out)
        }
        Command::Events { action } => events::run(action),
        Command::Materialize { store, view, entity, timestamp, ttl_secs, parquet } => {
            materialize::run(&store, &view, &entity, &timestamp, ttl_secs, &parquet)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fresco: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// A file's bytes; an error names the file.
fn read_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io { path: path.display().to_string(), source })
}

/// A progress bar of `len` steps drawn with `template` (indicatif's syntax).
fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The bar of commands that go through rows of a file.
const ROWS_BAR: &str = "{spinner} {bar:40} {pos}/{len} rows ({per_sec}, {eta})";

/// The error and its causes on one line.
fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}
