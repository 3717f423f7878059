//! A registered model's plan: where each input comes from, resolved once at build time,
//! and the assembly of feature vectors for a batch of requests.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fresco_abi::{InputSpec, InputType, MissingPolicy};
use fresco_drift::TypeViolation;

use super::metrics::PredictionMetrics;
use super::{Counters, Request};
use crate::Value;
use crate::aggregates::AggregateStore;
use crate::error::{ConfigError, Error};
use crate::features::{FeatureStatus, FeatureStore, FeatureValue, FeatureView, InputSource, Timestamp};
use crate::holdout::Holdout;
use crate::interval::IntervalRule;
use crate::log::LogSchema;
use crate::model::Backend;

/// Stored features of one view that a model reads, fetched in one batched call.
struct ViewFetch {
    /// The store that holds the view.
    store: Arc<dyn FeatureStore>,
    view: Arc<str>,
    entity: Arc<str>,
    features: Vec<Arc<str>>,
    /// Model input fed by each feature.
    inputs: Vec<usize>,
}

/// Where a model's features can come from.
pub(crate) struct Stores<'a> {
    pub(crate) features: Option<&'a Arc<dyn FeatureStore>>,
    pub(crate) aggregates: Option<&'a Arc<AggregateStore>>,
}

pub(crate) struct ModelPlan {
    pub(crate) backend: Backend,
    pub(crate) meta: Arc<fresco_abi::ModelMetadata>,
    pub(crate) name: Arc<str>,
    pub(crate) version: Arc<str>,
    pub(crate) input_names: Arc<[String]>,
    pub(crate) output_names: Arc<[String]>,
    /// The model's calibrated interval, when its metadata declares one.
    pub(crate) interval: Option<Arc<IntervalRule>>,
    specs: Vec<InputSpec>,
    /// Input index by request-value name, looked up for every value of every request:
    /// foldhash, not SipHash (a fifth of assembling an ETA row went to hashing names).
    /// Request names are only looked up, never inserted, so chosen names cannot grow
    /// collisions.
    request_inputs: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    fetches: Vec<ViewFetch>,
    pub(crate) holdout: Option<(Arc<Holdout>, Arc<str>)>,
    /// The per-call metrics' keys.
    pub(crate) metrics: PredictionMetrics,
    /// Columns of this model's prediction log rows.
    pub(crate) log_schema: Arc<LogSchema>,
    /// Drift monitoring, when asked for and the metadata has training statistics.
    pub(crate) monitor: Option<Arc<fresco_drift::Monitor>>,
}

/// Feature vectors for a batch, row-major, with each input's status.
pub(crate) struct Assembled {
    pub(crate) rows: Vec<f64>,
    pub(crate) statuses: Vec<FeatureStatus>,
}

/// Adds `feature` of `view` (in `store`) for input `input` to the view's fetch.
fn add_fetch(
    fetches: &mut Vec<ViewFetch>,
    store: Arc<dyn FeatureStore>,
    view: &FeatureView,
    feature: Arc<str>,
    input: usize,
) {
    let fetch = match fetches.iter().position(|f| *f.view == *view.name && Arc::ptr_eq(&f.store, &store)) {
        Some(ix) => &mut fetches[ix],
        None => {
            fetches.push(ViewFetch {
                store,
                view: view.name.as_str().into(),
                entity: view.entity.as_str().into(),
                features: Vec::new(),
                inputs: Vec::new(),
            });
            let last = fetches.len() - 1;
            &mut fetches[last]
        }
    };
    fetch.features.push(feature);
    fetch.inputs.push(input);
}

impl ModelPlan {
    pub(crate) fn new(
        backend: Backend,
        mappings: &HashMap<String, InputSource>,
        holdout: Option<&str>,
        stores: Stores<'_>,
        holdouts: &HashMap<String, (Arc<Holdout>, Arc<str>)>,
    ) -> Result<Self, ConfigError> {
        let meta = backend.metadata().clone();
        let model = meta.name.clone();
        for input in mappings.keys() {
            if meta.input_index(input).is_none() {
                return Err(ConfigError::UnknownInput { model: model.clone(), input: input.clone() });
            }
        }
        let mut request_inputs = HashMap::default();
        let mut fetches: Vec<ViewFetch> = Vec::new();
        for (i, spec) in meta.inputs.iter().enumerate() {
            let source = mappings.get(&spec.name).cloned().unwrap_or_else(|| InputSource::request(&spec.name));
            match source {
                InputSource::Request { name } => {
                    request_inputs.insert(name, i);
                }
                InputSource::Stored { view, feature } => {
                    let store = stores.features.ok_or_else(|| ConfigError::NoFeatureStore {
                        model: model.clone(),
                        input: spec.name.clone(),
                        view: view.to_string(),
                    })?;
                    let feature_err = |e| ConfigError::Feature {
                        model: model.clone(),
                        input: spec.name.clone(),
                        source: Box::new(e),
                    };
                    let def = store.view(&view).map_err(feature_err)?;
                    if def.position(&feature).is_none() {
                        return Err(feature_err(crate::StoreError::UnknownFeature {
                            view: view.to_string(),
                            feature: feature.to_string(),
                        }));
                    }
                    add_fetch(&mut fetches, store.clone(), &def, feature, i);
                }
                InputSource::Windowed { feature } => {
                    let unknown = || ConfigError::UnknownWindowedFeature {
                        model: model.clone(),
                        input: spec.name.clone(),
                        feature: feature.to_string(),
                    };
                    let aggregates = stores.aggregates.ok_or_else(unknown)?;
                    let defs = aggregates.definitions();
                    let def = defs.features().iter().find(|f| *f.name == *feature).ok_or_else(unknown)?;
                    let view = aggregates.view(&def.stream).map_err(|_| unknown())?;
                    let store: Arc<dyn FeatureStore> = aggregates.clone();
                    add_fetch(&mut fetches, store, &view, feature, i);
                }
            }
        }
        let holdout = match holdout {
            None => None,
            Some(name) => Some(
                holdouts
                    .get(name)
                    .cloned()
                    .ok_or_else(|| ConfigError::UnknownHoldout { model: model.clone(), holdout: name.to_owned() })?,
            ),
        };
        let mut entities: Vec<String> = Vec::new();
        let used = fetches.iter().map(|f| &f.entity).chain(holdout.as_ref().map(|(_, e)| e));
        for entity in used {
            if !entities.iter().any(|e| **e == **entity) {
                entities.push(entity.to_string());
            }
        }
        let log_schema = LogSchema {
            model: meta.name.clone(),
            version: meta.version.clone(),
            entities,
            inputs: meta.inputs.iter().map(|i| (i.name.clone(), i.ty)).collect(),
            outputs: meta.outputs.clone(),
        };
        log_schema.validate().map_err(|source| ConfigError::LogSchema { source })?;
        let interval = IntervalRule::for_model(&meta)
            .map_err(|source| ConfigError::Interval { model: model.clone(), source })?
            .map(Arc::new);
        let (name, version): (Arc<str>, Arc<str>) = (meta.name.as_str().into(), meta.version.as_str().into());
        Ok(ModelPlan {
            interval,
            log_schema: Arc::new(log_schema),
            metrics: PredictionMetrics::new(&name, &version),
            name,
            version,
            input_names: meta.inputs.iter().map(|i| i.name.clone()).collect(),
            output_names: meta.outputs.clone().into(),
            specs: meta.inputs.clone(),
            request_inputs,
            fetches,
            holdout,
            backend,
            meta: Arc::new(meta),
            monitor: None,
        })
    }

    /// Watches this version with `config`, when given and the metadata has training
    /// statistics.
    pub(crate) fn monitored(mut self, config: Option<&fresco_drift::MonitorConfig>) -> Self {
        self.monitor = config.and_then(|c| fresco_drift::Monitor::new(&self.meta, c.clone())).map(Arc::new);
        self
    }

    /// Names of the inputs this plan reads from requests.
    pub(crate) fn request_input_names(&self) -> impl Iterator<Item = &str> {
        self.request_inputs.keys().map(|k| &**k)
    }

    pub(crate) fn has_request_input(&self, name: &str) -> bool {
        self.request_inputs.contains_key(name)
    }

    pub(crate) fn n_inputs(&self) -> usize {
        self.specs.len()
    }

    pub(crate) fn n_outputs(&self) -> usize {
        self.output_names.len()
    }

    /// Builds the feature vectors of `requests`, made at `times` (one per request):
    /// stored features in one batched lookup per view and distinct time (usually one),
    /// request values checked against their declared types, then each input's
    /// missing-value policy.
    pub(crate) fn assemble(
        &self,
        requests: &[Request],
        times: &[Timestamp],
        stats: &Counters,
    ) -> Result<Assembled, Error> {
        let n_in = self.n_inputs();
        let mut rows = vec![f64::NAN; requests.len() * n_in];
        let mut statuses = vec![FeatureStatus::Missing; requests.len() * n_in];

        for (r, request) in requests.iter().enumerate() {
            for (name, value) in &request.values {
                let i = *self.request_inputs.get(name.as_str()).ok_or_else(|| Error::UnknownRequestValue {
                    model: self.name.to_string(),
                    name: name.clone(),
                    row: r,
                })?;
                self.put(&mut rows, &mut statuses, (r, times[r]), i, value, FeatureStatus::Present)?;
            }
        }

        // Rows in order of their request time, so that each lookup is made at one time.
        // (A single request, the usual call, is its own order: no vector to allocate.)
        let by_time: Cow<'_, [usize]> = if requests.len() == 1 {
            Cow::Borrowed(&[0])
        } else {
            let mut rows: Vec<usize> = (0..requests.len()).collect();
            rows.sort_by_key(|&r| times[r]);
            Cow::Owned(rows)
        };
        for fetch in &self.fetches {
            let mut keys = Vec::with_capacity(requests.len());
            for (r, request) in requests.iter().enumerate() {
                keys.push(request.entity_key(&fetch.entity).ok_or_else(|| Error::MissingEntity {
                    model: self.name.to_string(),
                    entity: fetch.entity.to_string(),
                    row: r,
                })?);
            }
            let features: Vec<&str> = fetch.features.iter().map(|f| &**f).collect();
            for group in by_time.chunk_by(|a, b| times[*a] == times[*b]) {
                // One time for the whole batch (the usual case): the sort was stable, so
                // the group is the rows in order and their keys are `keys` itself.
                let regrouped: Vec<&str>;
                let group_keys: &[&str] = if group.len() == keys.len() {
                    &keys
                } else {
                    regrouped = group.iter().map(|&r| keys[r]).collect();
                    &regrouped
                };
                let now = times[group[0]];
                let _span = tracing::debug_span!("fresco.fetch", view = %fetch.view, rows = group.len()).entered();
                let fetched = fetch
                    .store
                    .get_features(&fetch.view, group_keys, &features, now)
                    .map_err(|e| e.to_string())
                    .and_then(|rows| {
                        let shaped = rows.len() == group.len() && rows.iter().all(|r| r.len() == features.len());
                        if shaped { Ok(rows) } else { Err("the store answered with the wrong number of values".into()) }
                    });
                match fetched {
                    Ok(values) => {
                        for (&r, row) in group.iter().zip(values) {
                            for (FeatureValue { value, status, .. }, &i) in row.into_iter().zip(&fetch.inputs) {
                                self.put(&mut rows, &mut statuses, (r, times[r]), i, &value, status)?;
                            }
                        }
                    }
                    Err(reason) => {
                        // docs/design.md §7: a failing store degrades to the model's declared
                        // defaults, counted and logged, never an error or a hang.
                        stats.degraded_fetches.fetch_add(1, Ordering::Relaxed);
                        super::metrics::degraded(&self.name, &fetch.view);
                        tracing::warn!(model = %self.name, view = %fetch.view, %reason, "feature store unavailable; scoring with missing values");
                        for &r in group {
                            for &i in &fetch.inputs {
                                statuses[r * n_in + i] = FeatureStatus::Unavailable;
                            }
                        }
                    }
                }
            }
        }

        for (r, row) in rows.chunks_exact_mut(n_in).enumerate() {
            for ((value, spec), status) in row.iter_mut().zip(&self.specs).zip(&mut statuses[r * n_in..]) {
                if value.is_nan() {
                    if *status == FeatureStatus::Present {
                        *status = FeatureStatus::Missing;
                    }
                    match spec.missing {
                        MissingPolicy::Nan => {}
                        MissingPolicy::Default(default) => *value = default,
                        MissingPolicy::Error => {
                            return Err(Error::MissingFeature {
                                model: self.name.to_string(),
                                feature: spec.name.clone(),
                                row: r,
                            });
                        }
                    }
                }
            }
        }
        Ok(Assembled { rows, statuses })
    }

    /// Checks `value` against input `i`'s type and places it in row `r` (made at `at`);
    /// a value of another type than declared is reported to the monitor, refused or not.
    fn put(
        &self,
        rows: &mut [f64],
        statuses: &mut [FeatureStatus],
        (r, at): (usize, Timestamp),
        i: usize,
        value: &Value,
        status: FeatureStatus,
    ) -> Result<(), Error> {
        let spec = &self.specs[i];
        let converted = value.to_model_input(spec.ty);
        if let Some(monitor) = &self.monitor {
            let integral = matches!(spec.ty, InputType::I64 | InputType::Categorical | InputType::Bool);
            let violation = match (value, &converted) {
                (Value::F64(x), _) if integral && !x.is_nan() => Some(TypeViolation::FloatForInteger),
                (_, Err(_)) => Some(TypeViolation::WrongType),
                _ => None,
            };
            if let Some(violation) = violation {
                monitor.type_violation(at.as_micros(), i, violation);
            }
        }
        let x = converted.map_err(|source| Error::InvalidValue {
            model: self.name.to_string(),
            feature: spec.name.clone(),
            row: r,
            source,
        })?;
        let slot = r * self.specs.len() + i;
        rows[slot] = x;
        statuses[slot] = if x.is_nan() && status == FeatureStatus::Present { FeatureStatus::Missing } else { status };
        Ok(())
    }
}
