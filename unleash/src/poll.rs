//! The background poll: fetch the flag state every refresh interval, apply it, post
//! the SDK's usage metrics (beside the polls, so a slow metrics endpoint never delays
//! a flag change). A failed poll keeps the last state.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::oneshot;
use unleash_api_client::api::Metrics;
use unleash_api_client::api::features_endpoint;

use crate::flags::{FlagError, Shared};

/// Stops its thread when dropped (at once, even mid-request).
pub(crate) struct Poller {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    pub(crate) fn start(shared: Arc<Shared>) -> Result<Self, FlagError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FlagError::Client { reason: format!("tokio runtime: {e}") })?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("fresco-unleash".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        () = run(shared) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| FlagError::Client { reason: format!("polling thread: {e}") })?;
        Ok(Poller { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(shared: Arc<Shared>) {
    let endpoint = features_endpoint(&shared.api_url);
    let metrics_endpoint = Metrics::endpoint(&shared.api_url);
    let interval_ms = u64::try_from(shared.refresh.as_millis()).unwrap_or(u64::MAX);
    if let Err(error) = shared.client.register().await {
        tracing::warn!(url = %shared.api_url, %error, "unleash registration failed; polling anyway");
    }
    loop {
        let fetched = shared.client.http.get_json::<Value>(&endpoint, Some(interval_ms)).await;
        match fetched.map_err(|e| e.to_string()).and_then(|body| shared.apply(&body).map_err(|e| e.to_string())) {
            Ok(metrics) => {
                shared.stats.fetches.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = metrics {
                    // Posted beside the polls, not before the next one: a slow metrics
                    // endpoint (up to the request timeout) must not delay flag changes.
                    let (shared, endpoint) = (shared.clone(), metrics_endpoint.clone());
                    tokio::spawn(async move {
                        let posted = shared.client.http.post_json(&endpoint, metrics, Some(interval_ms)).await;
                        if !matches!(posted, Ok(true)) {
                            tracing::debug!(url = %shared.api_url, "unleash metrics not accepted");
                        }
                    });
                }
            }
            Err(reason) => {
                shared.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %shared.api_url, %reason, "flag poll failed; the last state keeps serving");
            }
        }
        tokio::time::sleep(shared.refresh).await;
    }
}
