//! Prediction and feedback from async code, off the runtime's workers.

use super::{Client, Prediction, PredictionId, Request};
use crate::Timestamp;
use crate::error::Error;

impl Client {
    /// [`predict`](Self::predict) on tokio's blocking pool, so the async workers never
    /// wait on a store or a model. Fails with [`Error::Async`] outside a tokio runtime.
    #[cfg(feature = "tokio")]
    pub async fn predict_async(&self, model: &str, request: Request) -> Result<Prediction, Error> {
        let client = self.clone();
        let model = model.to_owned();
        Self::spawn_blocking(move || client.predict(&model, &request)).await
    }

    /// [`predict_batch`](Self::predict_batch) on tokio's blocking pool.
    #[cfg(feature = "tokio")]
    pub async fn predict_batch_async(&self, model: &str, requests: Vec<Request>) -> Result<Vec<Prediction>, Error> {
        let client = self.clone();
        let model = model.to_owned();
        Self::spawn_blocking(move || client.predict_batch(&model, &requests)).await
    }

    /// [`log_outcome`](Self::log_outcome) on tokio's blocking pool (the log's spool
    /// append may wait on the disk).
    #[cfg(feature = "tokio")]
    pub async fn log_outcome_async(
        &self,
        model: &str,
        prediction_id: PredictionId,
        label: f64,
        ts: Timestamp,
    ) -> Result<(), Error> {
        let client = self.clone();
        let model = model.to_owned();
        Self::spawn_blocking(move || client.log_outcome(&model, prediction_id, label, ts)).await
    }

    /// [`log_treatment_by_id`](Self::log_treatment_by_id) on tokio's blocking pool.
    #[cfg(feature = "tokio")]
    pub async fn log_treatment_by_id_async(
        &self,
        model: &str,
        prediction_id: PredictionId,
        entity_key: &str,
        treatment: &str,
        ts: Timestamp,
    ) -> Result<(), Error> {
        let client = self.clone();
        let (model, entity_key, treatment) = (model.to_owned(), entity_key.to_owned(), treatment.to_owned());
        Self::spawn_blocking(move || client.log_treatment_by_id(&model, prediction_id, &entity_key, &treatment, ts))
            .await
    }

    #[cfg(feature = "tokio")]
    async fn spawn_blocking<T: Send + 'static>(
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::Async { reason: format!("not inside a tokio runtime: {e}") })?;
        handle
            .spawn_blocking(work)
            .await
            .map_err(|e| Error::Async { reason: format!("the prediction task failed: {e}") })?
    }
}
