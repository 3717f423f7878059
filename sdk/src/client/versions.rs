//! The versions of one registered model: the serving one, the previous one (kept
//! loaded for an instant rollback) and any that a flag routes to, swapped atomically.
//!
//! A request loads the current [`Versions`] once (a lock-free `arc-swap` read) and
//! scores on the plans it holds, so a swap never fails or changes a call in flight:
//! it finishes on the version it started with, which stays alive until the last such
//! call drops it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use fresco_abi::MissingPolicy;

use super::plan::{ModelPlan, Stores};
use crate::aggregates::AggregateStore;
use crate::error::{ConfigError, Error, Refusal};
use crate::features::{FeatureStore, InputSource};
use crate::holdout::Holdout;
use crate::model::{Backend, ModelSource};
use crate::registry::Registry;
use crate::sync::lock;

/// What every version of every model is loaded with.
pub(crate) struct Loader {
    pub(crate) engine: fresco_runtime::Engine,
    pub(crate) store: Option<Arc<dyn FeatureStore>>,
    pub(crate) aggregates: Option<Arc<AggregateStore>>,
    pub(crate) holdouts: HashMap<String, (Arc<Holdout>, Arc<str>)>,
    /// Drift monitoring for every version whose metadata carries training statistics.
    pub(crate) monitoring: Option<fresco_drift::MonitorConfig>,
}

/// A model's flag: which flag chooses its version, keyed by which entity.
#[derive(Debug, Clone)]
pub(crate) struct Rollout {
    pub(crate) flag: String,
    pub(crate) entity: Arc<str>,
    /// The version that answers while the flag is off (the kill switch).
    pub(crate) fallback: Option<String>,
}

/// The loaded versions of a model at one moment.
pub(crate) struct Versions {
    pub(crate) serving: Arc<ModelPlan>,
    pub(crate) previous: Option<Arc<ModelPlan>>,
    /// Every loaded version by name, serving and previous included.
    pub(crate) loaded: HashMap<String, Arc<ModelPlan>>,
}

impl Versions {
    fn new(serving: Arc<ModelPlan>) -> Self {
        let loaded = HashMap::from([(serving.version.to_string(), serving.clone())]);
        Versions { serving, previous: None, loaded }
    }
}

/// One registered model.
pub(crate) struct Slot {
    pub(crate) name: String,
    mappings: HashMap<String, InputSource>,
    holdout: Option<String>,
    pub(crate) registry: Option<Registry>,
    pub(crate) rollout: Option<Rollout>,
    versions: ArcSwap<Versions>,
    /// Versions the flag named at its last look, kept loaded.
    flag_versions: Mutex<Vec<String>>,
    /// Deploys, rollbacks and preloads of this model, one at a time.
    changing: Mutex<()>,
}

/// The input for the smoke row: each input's declared default, else zero.
fn smoke_row(backend: &Backend) -> Vec<f64> {
    backend
        .metadata()
        .inputs
        .iter()
        .map(|spec| match spec.missing {
            MissingPolicy::Default(v) => v,
            MissingPolicy::Nan | MissingPolicy::Error => 0.0,
        })
        .collect()
}

/// A version must be the model and version it is loaded as (a file copied into the
/// wrong registry directory is refused, not served under the wrong name).
fn check_identity(backend: &Backend, model: &str, version: Option<&str>) -> Result<(), Refusal> {
    let meta = backend.metadata();
    if meta.name != model {
        return Err(Refusal::Name { declared: meta.name.clone() });
    }
    if let Some(version) = version
        && meta.version != version
    {
        return Err(Refusal::Version { declared: meta.version.clone() });
    }
    Ok(())
}

/// Scores one plain row: a version that traps or answers NaN is refused.
fn smoke(backend: &Backend) -> Result<(), Refusal> {
    let row = smoke_row(backend);
    let outputs = &backend.metadata().outputs;
    let mut out = vec![0.0; outputs.len()];
    backend.predict_into(&row, &mut out).map_err(|e| Refusal::Smoke(Box::new(e)))?;
    if let Some((name, _)) = outputs.iter().zip(&out).find(|(_, v)| !v.is_finite()) {
        return Err(Refusal::NonFinite { output: name.clone() });
    }
    Ok(())
}

/// What a registry checks before it stores a version: the artifact loads, is the model
/// and version it is published as, and scores a smoke row.
pub(crate) fn check_artifact(
    engine: &fresco_runtime::Engine,
    source: ModelSource,
    model: &str,
    version: &str,
) -> Result<(), Refusal> {
    let backend = Backend::load(engine, source).map_err(|e| Refusal::Load(Box::new(e)))?;
    check_identity(&backend, model, Some(version))?;
    smoke(&backend)
}

impl Slot {
    /// Loads the first serving version of a model; a failure here fails the build.
    /// `registry` is the registry with the model name and version the source was read
    /// as, which the module must declare.
    pub(crate) fn new(
        loader: &Loader,
        source: ModelSource,
        mappings: HashMap<String, InputSource>,
        holdout: Option<String>,
        registry: Option<(Registry, &str, &str)>,
        rollout: Option<Rollout>,
    ) -> Result<Self, Error> {
        let backend = Backend::load(&loader.engine, source).map_err(|e| ConfigError::Load { source: Box::new(e) })?;
        let registry = match registry {
            Some((registry, model, version)) => {
                check_identity(&backend, model, Some(version)).map_err(|reason| Error::VersionRefused {
                    model: model.to_owned(),
                    version: version.to_owned(),
                    reason: Box::new(reason),
                })?;
                Some(registry)
            }
            None => None,
        };
        let plan = ModelPlan::new(backend, &mappings, holdout.as_deref(), loader.stores(), &loader.holdouts)?
            .monitored(loader.monitoring.as_ref());
        // The first version is checked as before (it loads and fits the mapping); the
        // smoke row is for versions that replace one that serves.
        Ok(Slot {
            name: plan.name.to_string(),
            mappings,
            holdout,
            registry,
            rollout,
            versions: ArcSwap::from_pointee(Versions::new(Arc::new(plan))),
            flag_versions: Mutex::new(Vec::new()),
            changing: Mutex::new(()),
        })
    }

    /// The versions now (a lock-free read).
    pub(crate) fn current(&self) -> Arc<Versions> {
        self.versions.load_full()
    }

    /// Loads `source` as a candidate version and checks it against the serving one.
    fn candidate(&self, loader: &Loader, backend: Backend, version: Option<&str>) -> Result<ModelPlan, Refusal> {
        check_identity(&backend, &self.name, version)?;
        let plan = ModelPlan::new(backend, &self.mappings, self.holdout.as_deref(), loader.stores(), &loader.holdouts)
            .map_err(|e| Refusal::Plan(Box::new(e)))?
            .monitored(loader.monitoring.as_ref());
        let serving = self.current().serving.clone();
        // Callers read the serving version's outputs by name, and send its request
        // inputs: a version that drops one, or needs one nobody sends, would answer
        // with silently wrong values.
        if let Some(output) = serving.output_names.iter().find(|o| !plan.output_names.contains(o)) {
            return Err(Refusal::MissingOutput { output: output.clone() });
        }
        if let Some(input) = plan.request_input_names().find(|i| !serving.has_request_input(i)) {
            return Err(Refusal::UnsentInput { input: input.to_owned() });
        }
        smoke(&plan.backend)?;
        Ok(plan)
    }

    /// The loaded plan of `version`, loading it from the registry (or `source`) first.
    fn obtain(&self, loader: &Loader, version: &str, loaded: Option<Backend>) -> Result<Arc<ModelPlan>, Error> {
        if loaded.is_none()
            && let Some(plan) = self.current().loaded.get(version)
        {
            return Ok(plan.clone());
        }
        let refused = |reason| Error::VersionRefused {
            model: self.name.clone(),
            version: version.to_owned(),
            reason: Box::new(reason),
        };
        let backend = match loaded {
            Some(backend) => backend,
            None => {
                let registry = self.registry.as_ref().ok_or_else(|| refused(Refusal::NotLoaded))?;
                let source =
                    registry.source(&self.name, version).map_err(|e| refused(Refusal::Registry(Box::new(e))))?;
                Backend::load(&loader.engine, source).map_err(|e| refused(Refusal::Load(Box::new(e))))?
            }
        };
        self.candidate(loader, backend, Some(version)).map(Arc::new).map_err(refused)
    }

    /// Versions to keep loaded besides serving and previous.
    fn pinned(&self) -> HashSet<String> {
        let mut keep: HashSet<String> = lock(&self.flag_versions).iter().cloned().collect();
        keep.extend(self.rollout.as_ref().and_then(|r| r.fallback.clone()));
        keep
    }

    fn swap(&self, serving: Arc<ModelPlan>, previous: Option<Arc<ModelPlan>>, extra: &[Arc<ModelPlan>]) {
        let pinned = self.pinned();
        let old = self.current();
        let mut loaded: HashMap<String, Arc<ModelPlan>> =
            old.loaded.iter().filter(|(v, _)| pinned.contains(*v)).map(|(v, p)| (v.clone(), p.clone())).collect();
        for plan in std::iter::once(&serving).chain(previous.as_ref()).chain(extra) {
            loaded.insert(plan.version.to_string(), plan.clone());
        }
        self.versions.store(Arc::new(Versions { serving, previous, loaded }));
    }

    /// Serves `version` (loaded and validated first unless already loaded); the version
    /// serving until now becomes the previous one. Returns the previous version.
    pub(crate) fn deploy(
        &self,
        loader: &Loader,
        version: &str,
        loaded: Option<Backend>,
    ) -> Result<Option<String>, Error> {
        let _changing = lock(&self.changing);
        let plan = self.obtain(loader, version, loaded)?;
        let old = self.current().serving.clone();
        if Arc::ptr_eq(&old, &plan) {
            return Ok(self.current().previous.as_ref().map(|p| p.version.to_string()));
        }
        tracing::info!(model = %self.name, from = %old.version, to = %plan.version, "deployed");
        let previous = old.version.to_string();
        self.swap(plan, Some(old), &[]);
        Ok(Some(previous))
    }

    /// Serves the previous version again; the one rolled back from becomes the previous.
    pub(crate) fn rollback(&self) -> Result<String, Error> {
        let _changing = lock(&self.changing);
        let now = self.current();
        let previous = now.previous.clone().ok_or_else(|| Error::NoPreviousVersion { model: self.name.clone() })?;
        tracing::info!(model = %self.name, from = %now.serving.version, to = %previous.version, "rolled back");
        let version = previous.version.to_string();
        let serving = now.serving.clone();
        drop(now);
        self.swap(previous, Some(serving), &[]);
        Ok(version)
    }

    /// Loads `versions` (named by the flag, or the fallback) so requests can be routed
    /// to them; each failure is returned, the rest are loaded.
    pub(crate) fn preload(&self, loader: &Loader, versions: Vec<String>) -> Vec<Error> {
        let _changing = lock(&self.changing);
        *lock(&self.flag_versions) = versions.clone();
        let mut extra = Vec::new();
        let mut errors = Vec::new();
        for version in versions.iter().chain(self.rollout.as_ref().and_then(|r| r.fallback.as_ref())) {
            if self.current().loaded.contains_key(version) {
                continue;
            }
            match self.obtain(loader, version, None) {
                Ok(plan) => extra.push(plan),
                Err(e) => errors.push(e),
            }
        }
        let now = self.current();
        let (serving, previous) = (now.serving.clone(), now.previous.clone());
        drop(now);
        self.swap(serving, previous, &extra);
        errors
    }
}

impl Loader {
    pub(crate) fn stores(&self) -> Stores<'_> {
        Stores { features: self.store.as_ref(), aggregates: self.aggregates.as_ref() }
    }
}
