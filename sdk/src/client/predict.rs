//! Scoring: route each request to a version, assemble its inputs, score, log.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::plan::ModelPlan;
use super::versions::{Rollout, Slot, Versions};
use super::{Client, HoldoutDecision, Prediction, PredictionId, Request, Route, SCORE_CHUNK_ROWS};
use crate::error::Error;
use crate::features::Timestamp;
use crate::log::PredictionRow;
use crate::rollout::FlagSource;

impl Client {
    /// Scores one request with `model`: fetches its stored features, applies the
    /// holdout, logs the prediction, and returns it.
    pub fn predict(&self, model: &str, request: &Request) -> Result<Prediction, Error> {
        let mut predictions = self.predict_batch(model, std::slice::from_ref(request))?;
        predictions.pop().ok_or_else(|| Error::UnknownModel { model: model.into() })
    }

    /// Scores a batch with `model`: one feature-store lookup per view, one scoring pass.
    ///
    /// An empty batch returns an empty vector; a batch over
    /// [`ClientBuilder::max_batch_rows`](crate::ClientBuilder::max_batch_rows) is refused with [`Error::BatchTooLarge`]. A bad
    /// row fails the whole batch, and the error names the row.
    pub fn predict_batch(&self, model: &str, requests: &[Request]) -> Result<Vec<Prediction>, Error> {
        let started = Instant::now();
        let slot = self.slot(model)?;
        let _span = tracing::debug_span!("fresco.predict", model, rows = requests.len()).entered();
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if requests.len() > self.inner.max_batch_rows {
            return Err(Error::BatchTooLarge {
                model: model.into(),
                rows: requests.len(),
                max: self.inner.max_batch_rows,
            });
        }
        // One read of the versions for the whole call: a swap meanwhile does not change it.
        let versions = slot.current();
        let (Some(rollout), Some(flags)) = (&slot.rollout, &self.inner.flags) else {
            return self.score(&versions.serving, requests, None, started);
        };
        let routes = self.route(slot, rollout, &**flags, &versions, requests)?;
        let first = routes[0].0;
        let variants: Vec<Option<Arc<str>>> = routes.iter().map(|(_, v)| v.clone()).collect();
        if routes.iter().all(|(plan, _)| Arc::ptr_eq(plan, first)) {
            return self.score(first, requests, Some(&variants), started);
        }
        // Rows routed to several versions: score each version's rows together, then
        // answer in the order asked.
        let mut predictions: Vec<Option<Prediction>> = (0..requests.len()).map(|_| None).collect();
        for r in 0..requests.len() {
            if predictions[r].is_some() {
                continue;
            }
            let plan = routes[r].0;
            let rows: Vec<usize> = (r..requests.len()).filter(|&i| Arc::ptr_eq(routes[i].0, plan)).collect();
            let group: Vec<Request> = rows.iter().map(|&i| requests[i].clone()).collect();
            let group_variants: Vec<Option<Arc<str>>> = rows.iter().map(|&i| variants[i].clone()).collect();
            for (i, p) in rows.iter().zip(self.score(plan, &group, Some(&group_variants), started)?) {
                predictions[*i] = Some(p);
            }
        }
        Ok(predictions.into_iter().flatten().collect())
    }

    /// Which loaded version answers each request, and the flag variant that chose it.
    fn route<'v>(
        &self,
        slot: &Slot,
        rollout: &Rollout,
        flags: &dyn FlagSource,
        versions: &'v Versions,
        requests: &[Request],
    ) -> Result<Vec<Route<'v>>, Error> {
        let mut routes = Vec::with_capacity(requests.len());
        for (row, request) in requests.iter().enumerate() {
            let key = request.entity_key(&rollout.entity).ok_or_else(|| Error::MissingEntity {
                model: slot.name.clone(),
                entity: rollout.entity.to_string(),
                row,
            })?;
            let decision = flags.decide(&rollout.flag, key);
            let wanted = if decision.enabled { decision.payload.as_deref() } else { rollout.fallback.as_deref() };
            let plan = match wanted.map(|v| versions.loaded.get(v)) {
                Some(Some(plan)) => plan,
                Some(None) => {
                    self.inner.stats.flag_version_missing(&slot.name);
                    &versions.serving
                }
                None => &versions.serving,
            };
            routes.push((plan, decision.variant.map(Arc::from)));
        }
        Ok(routes)
    }

    /// Scores `requests` with one version, logs them, and returns the predictions.
    fn score(
        &self,
        plan: &ModelPlan,
        requests: &[Request],
        variants: Option<&[Option<Arc<str>>]>,
        started: Instant,
    ) -> Result<Vec<Prediction>, Error> {
        let model = &*plan.name;
        let holdouts = self.assign_holdouts(plan, requests)?;
        let now = Timestamp::now();
        let times: Vec<Timestamp> = requests.iter().map(|r| r.at.unwrap_or(now)).collect();
        let assembled = plan.assemble(requests, &times, &self.inner.stats)?;

        let (n_in, n_out) = (plan.n_inputs(), plan.n_outputs());
        let mut outputs = vec![0.0; requests.len() * n_out];
        {
            let _span = tracing::debug_span!("fresco.score", backend = plan.backend.kind()).entered();
            for (rows, out) in
                assembled.rows.chunks(SCORE_CHUNK_ROWS * n_in).zip(outputs.chunks_mut(SCORE_CHUNK_ROWS * n_out))
            {
                plan.backend
                    .predict_into(rows, out)
                    .map_err(|e| Error::Model { model: model.into(), source: Box::new(e) })?;
            }
        }
        if let Some(monitor) = &plan.monitor {
            for (r, at) in times.iter().enumerate() {
                monitor.observe(
                    at.as_micros(),
                    &assembled.rows[r * n_in..(r + 1) * n_in],
                    &outputs[r * n_out..(r + 1) * n_out],
                );
            }
        }
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);

        let mut predictions = Vec::with_capacity(requests.len());
        let mut batch = self.inner.sink.empty_batch(plan.log_schema.clone(), requests.len());
        let logging = |source| Error::Log { model: model.into(), source };
        let mut statuses = assembled.statuses.chunks_exact(n_in);
        for (r, request) in requests.iter().enumerate() {
            let holdout = holdouts.as_ref().map(|h| h[r].clone());
            let ts = times[r];
            let prediction = Prediction {
                id: PredictionId::new(),
                ts,
                model: plan.name.clone(),
                version: plan.version.clone(),
                input_names: plan.input_names.clone(),
                output_names: plan.output_names.clone(),
                inputs: assembled.rows[r * n_in..(r + 1) * n_in].to_vec(),
                statuses: statuses.next().map(<[_]>::to_vec).unwrap_or_default(),
                outputs: outputs[r * n_out..(r + 1) * n_out].to_vec(),
                holdout,
                interval: plan.interval.clone(),
                flag_variant: variants.and_then(|v| v[r].clone()),
            };
            let mut id = uuid::Uuid::encode_buffer();
            batch
                .push(PredictionRow {
                    prediction_id: prediction.id.as_uuid().hyphenated().encode_lower(&mut id),
                    ts,
                    model_version: &plan.version,
                    entities: &request.entities,
                    inputs: &prediction.inputs,
                    outputs: &prediction.outputs,
                    holdout: prediction.holdout.as_ref().map(|h| &*h.name),
                    in_holdout: prediction.holdout.as_ref().is_some_and(|h| h.in_holdout),
                    eligible: prediction.may_treat(),
                    flag_variant: prediction.flag_variant.as_deref(),
                    latency_us,
                })
                .map_err(logging)?;
            predictions.push(prediction);
        }
        {
            let _span = tracing::debug_span!("fresco.log", records = batch.len()).entered();
            self.inner.sink.append_batch(batch).map_err(logging)?;
        }
        self.inner.stats.predictions.fetch_add(predictions.len() as u64, Ordering::Relaxed);
        plan.metrics.record(predictions.len(), started.elapsed());
        Ok(predictions)
    }

    fn assign_holdouts(&self, plan: &ModelPlan, requests: &[Request]) -> Result<Option<Vec<HoldoutDecision>>, Error> {
        let Some((holdout, entity)) = &plan.holdout else {
            return Ok(None);
        };
        let name = holdout.shared_name();
        requests
            .iter()
            .enumerate()
            .map(|(row, request)| {
                let id = request.entity_key(entity).ok_or_else(|| Error::MissingEntity {
                    model: plan.name.to_string(),
                    entity: entity.to_string(),
                    row,
                })?;
                let a = holdout.assign(id);
                Ok(HoldoutDecision { name: name.clone(), bucket: a.bucket, in_holdout: a.in_holdout })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
