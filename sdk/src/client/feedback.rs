//! What happened after a prediction: outcomes and treatments, into the log.

use super::{Client, Prediction, PredictionId};
use crate::error::Error;
use crate::features::Timestamp;
use crate::log::{OutcomeRecord, TreatmentRecord};

impl Client {
    /// Logs the outcome (label) observed for a prediction of `model`, for training sets
    /// that join predictions with outcomes. Outcomes are partitioned by model, like
    /// predictions, hence the model name.
    ///
    /// ```
    /// # use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request, Timestamp};
    /// # let log = std::sync::Arc::new(MemorySink::new());
    /// # let client = Client::builder()
    /// #     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
    /// #     .shared_log(log.clone()).build()?;
    /// let p = client.predict("linear", &Request::new().value("a", 1.0).value("b", 1.0))?;
    /// // ... later, when the truth is known:
    /// client.log_outcome("linear", p.id(), 1.0, Timestamp::now())?;
    /// assert_eq!(log.outcomes().len(), 1);
    /// # Ok::<(), fresco::Error>(())
    /// ```
    pub fn log_outcome(
        &self,
        model: &str,
        prediction_id: PredictionId,
        label: f64,
        ts: Timestamp,
    ) -> Result<(), Error> {
        self.plan(model)?;
        let record = OutcomeRecord { prediction_id: prediction_id.to_string(), ts, label };
        self.inner
            .sink
            .append_outcomes(model, vec![record])
            .map_err(|source| Error::Log { model: model.into(), source })
    }

    /// Logs a treatment the app applied because of `prediction` (the discount sent, the
    /// message shown), at `ts`. Training sets use it to tell treated rows from the rest
    /// ([`dataset`](crate::dataset)). A prediction whose entity is held out is never
    /// treated: the call is refused with [`Error::HeldOutTreatment`], nothing is logged,
    /// and [`ClientStats::treatments_refused`](crate::ClientStats::treatments_refused) counts it.
    ///
    /// ```
    /// # use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request, Timestamp};
    /// # use fresco::holdout::Holdout;
    /// # let log = std::sync::Arc::new(MemorySink::new());
    /// let client = Client::builder()
    ///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())).holdout("promo"))
    ///     .holdout(Holdout::new("promo", "promo-2026", 0.5)?, "user_id")
    ///     .shared_log(log.clone())
    ///     .build()?;
    /// for user in ["u-1", "u-2", "u-3", "u-4"] {
    ///     let p = client.predict("linear", &Request::new().entity("user_id", user).value("a", 1.0).value("b", 1.0))?;
    ///     let logged = client.log_treatment(&p, "discount-10", Timestamp::now());
    ///     assert_eq!(logged.is_ok(), p.may_treat());
    /// }
    /// let stats = client.stats();
    /// assert_eq!(log.treatments().len() as u64, stats.treatments);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn log_treatment(&self, prediction: &Prediction, treatment: &str, ts: Timestamp) -> Result<(), Error> {
        self.log_treatments(std::iter::once(prediction), treatment, ts)
    }

    /// Logs the same treatment for several predictions (of one model or several), in
    /// one append per model. If any of them is held out, none is logged.
    pub fn log_treatments<'a>(
        &self,
        predictions: impl IntoIterator<Item = &'a Prediction>,
        treatment: &str,
        ts: Timestamp,
    ) -> Result<(), Error> {
        let mut by_model: Vec<(&str, Vec<TreatmentRecord>)> = Vec::new();
        let mut refused = None;
        let mut n_refused = 0u64;
        for p in predictions {
            self.plan(p.model())?;
            if treatment.is_empty() {
                return Err(Error::EmptyTreatment { model: p.model().into() });
            }
            if let Some(h) = p.holdout.as_ref().filter(|h| h.in_holdout) {
                n_refused += 1;
                refused.get_or_insert_with(|| Error::HeldOutTreatment {
                    model: p.model().into(),
                    prediction_id: p.id().to_string(),
                    holdout: h.name.to_string(),
                    treatment: treatment.to_owned(),
                });
                continue;
            }
            let record = TreatmentRecord { prediction_id: p.id().to_string(), ts, treatment: treatment.to_owned() };
            match by_model.iter_mut().find(|(m, _)| *m == p.model()) {
                Some((_, records)) => records.push(record),
                None => by_model.push((p.model(), vec![record])),
            }
        }
        if let Some(error) = refused {
            if let Error::HeldOutTreatment { model, .. } = &error {
                self.inner.stats.treatments_held_out(model, n_refused);
            }
            tracing::warn!(refused = n_refused, %error, "treatment of held-out predictions refused");
            return Err(error);
        }
        for (model, records) in by_model {
            self.append_treatments(model, records)?;
        }
        Ok(())
    }

    fn append_treatments(&self, model: &str, records: Vec<TreatmentRecord>) -> Result<(), Error> {
        let n = records.len() as u64;
        self.inner
            .sink
            .append_treatments(model, records)
            .map_err(|source| Error::Log { model: model.into(), source })?;
        self.inner.stats.treated(model, n);
        Ok(())
    }

    /// Logs a treatment for a prediction known only by its id, as a campaign job that
    /// reads the prediction log has it: `entity_key` is the key of the model's holdout
    /// entity, from which the holdout decision is recomputed (it is deterministic), and
    /// a held-out entity is refused as in [`log_treatment`](Self::log_treatment).
    pub fn log_treatment_by_id(
        &self,
        model: &str,
        prediction_id: PredictionId,
        entity_key: &str,
        treatment: &str,
        ts: Timestamp,
    ) -> Result<(), Error> {
        let plan = self.plan(model)?;
        if treatment.is_empty() {
            return Err(Error::EmptyTreatment { model: model.into() });
        }
        if let Some((holdout, _)) = &plan.holdout
            && holdout.contains(entity_key)
        {
            self.inner.stats.treatments_held_out(model, 1);
            return Err(Error::HeldOutTreatment {
                model: model.into(),
                prediction_id: prediction_id.to_string(),
                holdout: holdout.name().into(),
                treatment: treatment.into(),
            });
        }
        let record = TreatmentRecord { prediction_id: prediction_id.to_string(), ts, treatment: treatment.to_owned() };
        self.append_treatments(model, vec![record])
    }
}
