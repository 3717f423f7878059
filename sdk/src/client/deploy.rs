//! Changing the serving version of one process: deploy, roll back, watch.

use std::sync::Arc;

use super::versions::Slot;
use super::{Client, Watcher};
use crate::error::{Error, Refusal};
use crate::model::ModelSource;

impl Client {
    /// Serves `version` of `model`: loaded from the model's registry (unless already
    /// loaded) off the request path, validated (it loads, fits the feature mapping,
    /// keeps the serving version's outputs, needs no input callers do not send, and
    /// scores a smoke row), then swapped in atomically. Calls in flight finish on the
    /// version they started with; none fails. The version serving until now stays
    /// loaded, for [`rollback`](Self::rollback).
    ///
    /// A model from a registry that a [`watch`](Self::watch) follows is refused with
    /// [`Error::FollowsRegistry`]: its serving version is the manifest's, for every
    /// replica, and changes through [`Registry::deploy`](crate::registry::Registry::deploy).
    ///
    /// A refused version ([`Error::VersionRefused`]) changes nothing: it is counted
    /// ([`ClientStats::versions_refused`](crate::ClientStats::versions_refused)) and logged, and the serving version serves on.
    ///
    /// ```
    /// use fresco::{Client, MemorySink, ModelConfig, Request, registry::Registry};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.publish_wasm("linear", "1", &fresco_test_models::linear())?;
    /// registry.publish_wasm("linear", "2", &fresco_test_models::linear_version("2"))?;
    /// registry.deploy("linear", "1")?;
    /// let client = Client::builder()
    ///     .model(ModelConfig::from_registry(&registry, "linear"))
    ///     .log_to(MemorySink::new())
    ///     .build()?;
    ///
    /// client.deploy("linear", "2")?;
    /// let p = client.predict("linear", &Request::new().value("a", 1.0).value("b", 1.0))?;
    /// assert_eq!(p.model_version(), "2");
    /// assert_eq!(client.rollback("linear")?, "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deploy(&self, model: &str, version: &str) -> Result<(), Error> {
        self.change(model, |slot| slot.deploy(&self.inner.loader, version, None).map(drop))
    }

    /// Refuses a change of one process to a model that follows its registry's manifest.
    fn check_not_following(&self, model: &str) -> Result<(), Error> {
        let watched = self.inner.watchers.load(std::sync::atomic::Ordering::Acquire) > 0;
        if watched && self.slot(model)?.registry.is_some() {
            return Err(Error::FollowsRegistry { model: model.to_owned() });
        }
        Ok(())
    }

    /// Serves a version of `model` from `source` (not from a registry), validated as
    /// [`deploy`](Self::deploy) does; its version is the one its metadata declares.
    ///
    /// ```
    /// use fresco::{Client, Error, MemorySink, ModelConfig, ModelSource, Request};
    ///
    /// let client = Client::builder()
    ///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
    ///     .log_to(MemorySink::new())
    ///     .build()?;
    /// client.deploy_source("linear", ModelSource::wasm_bytes(fresco_test_models::linear_version("2")))?;
    /// let request = Request::new().value("a", 1.0).value("b", 1.0);
    /// assert_eq!(client.predict("linear", &request)?.model_version(), "2");
    ///
    /// // A source that does not load is refused, and version 2 serves on.
    /// let err = client.deploy_source("linear", ModelSource::wasm_bytes(b"not wasm".to_vec())).unwrap_err();
    /// assert!(matches!(err, Error::VersionRefused { .. }), "{err}");
    /// assert_eq!(client.predict("linear", &request)?.model_version(), "2");
    /// assert_eq!(client.rollback("linear")?, "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deploy_source(&self, model: &str, source: ModelSource) -> Result<(), Error> {
        self.check_not_following(model)?;
        let backend = crate::model::Backend::load(&self.inner.loader.engine, source).map_err(|e| {
            self.inner.stats.version_refused(model);
            Error::VersionRefused {
                model: model.into(),
                version: "?".into(),
                reason: Box::new(Refusal::Load(Box::new(e))),
            }
        })?;
        let version = backend.metadata().version.clone();
        self.change(model, |slot| slot.deploy(&self.inner.loader, &version, Some(backend)).map(drop))
    }

    /// Serves the previous version of `model` again (it stayed loaded: nothing is
    /// read or compiled); returns the version now serving. Refused, as
    /// [`deploy`](Self::deploy) is, for a model that follows its registry's manifest.
    pub fn rollback(&self, model: &str) -> Result<String, Error> {
        let mut version = String::new();
        self.change(model, |slot| {
            version = slot.rollback()?;
            Ok(())
        })?;
        Ok(version)
    }

    fn change(&self, model: &str, change: impl FnOnce(&Slot) -> Result<(), Error>) -> Result<(), Error> {
        self.check_not_following(model)?;
        self.inner.change(self.slot(model)?, change)
    }

    /// Follows the registry manifests and the flags in the background: every
    /// `interval`, a model registered [`from_registry`](crate::ModelConfig::from_registry)
    /// whose manifest names another serving version is deployed to it, and the versions
    /// a model's flag names are loaded. A manifest version refused (it does not load
    /// yet, e.g. its artifact is still on its way) is retried with backoff, from one
    /// interval up to 32 intervals or 5 minutes, until it loads or the manifest
    /// changes. While a watcher runs, [`deploy`](Self::deploy) and
    /// [`rollback`](Self::rollback) of those models are refused
    /// ([`Error::FollowsRegistry`]): they change through the registry. Stops when the
    /// returned [`Watcher`] is dropped.
    pub fn watch(&self, interval: std::time::Duration) -> Watcher {
        Watcher::start(Arc::downgrade(&self.inner), interval)
    }
}
