//! The client's error type.

use crate::features::StoreError;
use crate::log::LogError;
use crate::model::ModelError;
use crate::value::ConversionError;

/// Why a [`Client`](crate::Client) call failed. Every variant names the model and, where
/// one is concerned, the feature and the row of the batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A deploy or rollback of one process asked for a model that follows its
    /// registry's manifest ([`Client::watch`](crate::Client::watch) runs): the watcher
    /// would undo it within one interval, so it is refused. Change the manifest instead.
    #[error(
        "model `{model}` follows its registry's manifest (Client::watch runs): deploy or roll back through the registry (`fresco registry deploy|rollback`, Registry::deploy), which every replica follows"
    )]
    FollowsRegistry {
        /// The model.
        model: String,
    },
    /// No model of that name is registered.
    #[error("no model named `{model}` is registered")]
    UnknownModel {
        /// The name asked for.
        model: String,
    },
    /// The request carries a value the model does not take from requests (a typo, or a
    /// feature that comes from the store).
    #[error("model `{model}`: the request value `{name}` (row {row}) is not a request input of this model")]
    UnknownRequestValue {
        /// The model.
        model: String,
        /// The value's name.
        name: String,
        /// Row in the batch.
        row: usize,
    },
    /// The request lacks an entity key the model needs (for a feature view or a holdout).
    #[error("model `{model}`: the request (row {row}) has no entity key `{entity}`")]
    MissingEntity {
        /// The model.
        model: String,
        /// The entity key's name.
        entity: String,
        /// Row in the batch.
        row: usize,
    },
    /// A value has the wrong type for the model input it feeds.
    #[error("model `{model}`, feature `{feature}` (row {row}): {source}")]
    InvalidValue {
        /// The model.
        model: String,
        /// The model input.
        feature: String,
        /// Row in the batch.
        row: usize,
        /// What was wrong.
        #[source]
        source: ConversionError,
    },
    /// A feature is missing and the model's policy for it is to refuse.
    #[error("model `{model}`, feature `{feature}` (row {row}): missing, and the model requires it")]
    MissingFeature {
        /// The model.
        model: String,
        /// The model input.
        feature: String,
        /// Row in the batch.
        row: usize,
    },
    /// A treatment was logged for a prediction whose entity is held out: a holdout is
    /// never treated, so that its outcomes stay the untreated baseline.
    #[error(
        "model `{model}`: prediction {prediction_id} is in holdout `{holdout}`; held-out entities are never treated, \
         so the treatment `{treatment}` is refused"
    )]
    HeldOutTreatment {
        /// The model.
        model: String,
        /// The prediction.
        prediction_id: String,
        /// The holdout its entity is in.
        holdout: String,
        /// The treatment refused.
        treatment: String,
    },
    /// A treatment name that cannot be logged.
    #[error("model `{model}`: the treatment name must not be empty")]
    EmptyTreatment {
        /// The model.
        model: String,
    },
    /// The batch is larger than the client accepts in one call.
    #[error("model `{model}`: a batch of {rows} rows is larger than the limit of {max}; split it")]
    BatchTooLarge {
        /// The model.
        model: String,
        /// Rows offered.
        rows: usize,
        /// The limit ([`ClientBuilder::max_batch_rows`](crate::ClientBuilder::max_batch_rows)).
        max: usize,
    },
    /// The model failed to score.
    #[error("model `{model}`: {source}")]
    Model {
        /// The model.
        model: String,
        /// The backend's error (boxed: it is large and rare).
        #[source]
        source: Box<ModelError>,
    },
    /// The prediction could not be logged, so it was not returned.
    #[error("model `{model}`: prediction not logged: {source}")]
    Log {
        /// The model.
        model: String,
        /// The sink's error.
        #[source]
        source: LogError,
    },
    /// The client's configuration is inconsistent (raised by
    /// [`ClientBuilder::build`](crate::ClientBuilder::build)).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An async call could not run (no tokio runtime, or the task failed).
    #[error("async prediction failed: {reason}")]
    Async {
        /// Why.
        reason: String,
    },
    /// A model version was refused: the serving version goes on serving
    /// ([`ClientStats::versions_refused`](crate::ClientStats::versions_refused) counts it).
    #[error("model `{model}`: version `{version}` refused: {reason}")]
    VersionRefused {
        /// The model.
        model: String,
        /// The version refused.
        version: String,
        /// Why (boxed: it is large and rare).
        #[source]
        reason: Box<Refusal>,
    },
    /// A rollback with no previous version loaded.
    #[error("model `{model}` has no previous version to roll back to")]
    NoPreviousVersion {
        /// The model.
        model: String,
    },
    /// An event was not taken ([`Client::record_event`](crate::Client::record_event)):
    /// the publisher's buffer is full, or the event is invalid.
    #[error(transparent)]
    Events(#[from] crate::events::StreamError),
    /// An event was not recorded into the client's own aggregate store.
    #[error(transparent)]
    Aggregates(#[from] crate::aggregates::AggregateError),
    /// [`Client::record_event`](crate::Client::record_event) with neither an event
    /// publisher nor an aggregate store configured.
    #[error(
        "no event publisher or aggregate store configured: call ClientBuilder::events or ClientBuilder::aggregates"
    )]
    NoEventSink,
}

/// Why a model version was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Its artifact could not be read from the registry.
    #[error(transparent)]
    Registry(Box<crate::registry::RegistryError>),
    /// It did not load (corrupt file, bad module, metadata).
    #[error("it does not load: {0}")]
    Load(#[source] Box<ModelError>),
    /// It declares another model's name.
    #[error("its metadata names model `{declared}`")]
    Name {
        /// The name in its metadata.
        declared: String,
    },
    /// It declares another version than the one asked for.
    #[error("its metadata declares version `{declared}`")]
    Version {
        /// The version in its metadata.
        declared: String,
    },
    /// Its inputs do not fit the model's feature mapping.
    #[error(transparent)]
    Plan(Box<ConfigError>),
    /// It lacks an output the serving version has (callers read it).
    #[error("it has no output `{output}`, which the serving version has")]
    MissingOutput {
        /// The output.
        output: String,
    },
    /// It takes a request input that the serving version does not (callers do not send
    /// it); map it to a stored feature, or serve a version that does not need it.
    #[error("it takes request input `{input}`, which callers of the serving version do not send")]
    UnsentInput {
        /// The input.
        input: String,
    },
    /// It failed to score a plain row (each input's default, else 0).
    #[error("it fails on a smoke row: {0}")]
    Smoke(#[source] Box<ModelError>),
    /// It answered a plain row with NaN or infinity.
    #[error("it answers a smoke row with a non-finite `{output}`")]
    NonFinite {
        /// The output.
        output: String,
    },
    /// A tree model's file that is not text (LightGBM and XGBoost files are UTF-8).
    #[error("it is not a {kind} model: byte {at} is not UTF-8 text")]
    NotText {
        /// The kind it was given as.
        kind: String,
        /// The offset of the first byte that is not UTF-8.
        at: usize,
    },
    /// The version is not loaded and the model has no registry to load it from.
    #[error("it is not loaded, and the model was not registered from a registry")]
    NotLoaded,
}

/// Why [`ClientBuilder::build`](crate::ClientBuilder::build) refused a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No prediction log was configured.
    #[error("no prediction log configured: call ClientBuilder::log_to")]
    NoPredictionLog,
    /// A drift monitor configuration the monitor cannot run with.
    #[error(transparent)]
    Monitor(#[from] fresco_drift::MonitorConfigError),
    /// A model's registry could not be read.
    #[error("model `{model}`: {source}")]
    Registry {
        /// The model.
        model: String,
        /// The registry's error.
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    /// A model has a rollout flag but the client has no flag source.
    #[error("a model is rolled out by flag `{flag}`, but no flag source is configured: call ClientBuilder::flags")]
    NoFlagSource {
        /// The flag.
        flag: String,
    },
    /// A fallback version without a rollout flag (it would never answer).
    #[error("a model declares a fallback version but no rollout flag")]
    FallbackWithoutFlag,
    /// A model failed to load.
    #[error("loading a model: {source}")]
    Load {
        /// The backend's error (boxed: it is large and rare).
        #[source]
        source: Box<ModelError>,
    },
    /// Two models have the same name.
    #[error("two models are named `{model}`")]
    DuplicateModel {
        /// The name.
        model: String,
    },
    /// The model's interval spec does not fit its outputs.
    #[error("model `{model}`: {source}")]
    Interval {
        /// The model.
        model: String,
        /// What is wrong.
        #[source]
        source: crate::interval::IntervalError,
    },
    /// A windowed feature is mapped but the client has no aggregate store that defines it.
    #[error(
        "model `{model}`, input `{input}` reads windowed feature `{feature}`, which no aggregate store given to the client defines"
    )]
    UnknownWindowedFeature {
        /// The model.
        model: String,
        /// The input.
        input: String,
        /// The windowed feature.
        feature: String,
    },
    /// A mapping names an input the model does not declare.
    #[error("model `{model}` has no input `{input}`")]
    UnknownInput {
        /// The model.
        model: String,
        /// The input named in the mapping.
        input: String,
    },
    /// A stored feature is mapped but no feature store is configured.
    #[error("model `{model}`, input `{input}` reads feature view `{view}`, but no feature store is configured")]
    NoFeatureStore {
        /// The model.
        model: String,
        /// The input.
        input: String,
        /// The view.
        view: String,
    },
    /// A stored feature does not exist in the store.
    #[error("model `{model}`, input `{input}`: {source}")]
    Feature {
        /// The model.
        model: String,
        /// The input.
        input: String,
        /// The store's answer (boxed: it is large and rare).
        #[source]
        source: Box<StoreError>,
    },
    /// A model's prediction log columns clash, or its name is not path-safe.
    #[error(transparent)]
    LogSchema {
        /// What clashes.
        source: LogError,
    },
    /// A model names a holdout that is not configured.
    #[error("model `{model}` uses holdout `{holdout}`, which is not configured")]
    UnknownHoldout {
        /// The model.
        model: String,
        /// The holdout.
        holdout: String,
    },
}
