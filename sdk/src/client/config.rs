//! How one model is registered: `ModelConfig`.

use std::collections::HashMap;

use crate::features::InputSource;
use crate::model::ModelSource;
use crate::registry::Registry;

/// How one model is registered: where it comes from, where each input comes from, and
/// which holdout and flag apply.
///
/// Inputs not mapped explicitly come from the request, under the input's own name.
///
/// ```
/// use fresco::{InputSource, ModelConfig, ModelSource};
///
/// let config = ModelConfig::new(ModelSource::wasm_file("eta.wasm"))
///     .input("prep_min", InputSource::stored("restaurants", "prep_min"))
///     .holdout("eta-2026q4");
/// # let _ = config;
/// ```
#[derive(Debug)]
pub struct ModelConfig {
    pub(super) origin: Origin,
    pub(super) inputs: HashMap<String, InputSource>,
    pub(super) holdout: Option<String>,
    pub(super) rollout: Option<(String, String)>,
    pub(super) fallback: Option<String>,
}

#[derive(Debug)]
pub(super) enum Origin {
    Source(ModelSource),
    Registry(Registry, String),
}

impl ModelConfig {
    /// A model from `source`, every input taken from the request.
    pub fn new(source: ModelSource) -> Self {
        Self::with_origin(Origin::Source(source))
    }

    /// The model `model` of a [`Registry`]: its serving version (from the manifest),
    /// with the previous one loaded for rollback. [`Client::deploy`](crate::Client::deploy) and
    /// [`Client::watch`](crate::Client::watch) load further versions from the registry.
    ///
    /// ```
    /// use fresco::{Client, MemorySink, ModelConfig, registry::Registry};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.publish_wasm("linear", "1", &fresco_test_models::linear())?;
    /// registry.deploy("linear", "1")?;
    ///
    /// let client = Client::builder()
    ///     .model(ModelConfig::from_registry(&registry, "linear"))
    ///     .log_to(MemorySink::new())
    ///     .build()?;
    /// assert_eq!(client.serving_version("linear")?, "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_registry(registry: &Registry, model: impl Into<String>) -> Self {
        Self::with_origin(Origin::Registry(registry.clone(), model.into()))
    }

    fn with_origin(origin: Origin) -> Self {
        ModelConfig { origin, inputs: HashMap::new(), holdout: None, rollout: None, fallback: None }
    }

    /// Feeds model input `input` from `source`.
    pub fn input(mut self, input: impl Into<String>, source: InputSource) -> Self {
        self.inputs.insert(input.into(), source);
        self
    }

    /// Applies the named holdout (configured with [`ClientBuilder::holdout`](crate::ClientBuilder::holdout)).
    pub fn holdout(mut self, name: impl Into<String>) -> Self {
        self.holdout = Some(name.into());
        self
    }

    /// Lets `flag` choose the version per request (the [`FlagSource`](crate::rollout::FlagSource) configured with
    /// [`ClientBuilder::flags`](crate::ClientBuilder::flags)), sticky on the request's entity key named `entity`:
    /// a variant whose payload names a version routes the request there; the flag
    /// off routes it to the [`fallback_version`](Self::fallback_version), or to the
    /// serving version when none is declared. See [`rollout`](crate::rollout).
    pub fn rollout(mut self, flag: impl Into<String>, entity: impl Into<String>) -> Self {
        self.rollout = Some((flag.into(), entity.into()));
        self
    }

    /// The version that answers while the model's flag is off (loaded at build, from
    /// the registry).
    pub fn fallback_version(mut self, version: impl Into<String>) -> Self {
        self.fallback = Some(version.into());
        self
    }
}
