//! The background thread behind [`Client::watch`](super::Client::watch).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Inner;
use crate::error::Error;

/// Follows registry manifests and flags while alive; dropping it stops the thread
/// (within one interval) and waits for it.
#[derive(Debug)]
pub struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    inner: Weak<Inner>,
}

impl Watcher {
    pub(super) fn start(inner: Weak<Inner>, interval: Duration) -> Self {
        if let Some(inner) = inner.upgrade() {
            inner.watchers.fetch_add(1, Ordering::AcqRel);
        }
        let watched = inner.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("fresco-watch".into())
            .spawn(move || {
                // Per model, the manifest version last refused (retried with backoff),
                // and the flagged versions refused (not retried while the watcher runs).
                let mut refused = Refused { interval, ..Refused::default() };
                loop {
                    match inner.upgrade() {
                        Some(inner) => look(&inner, &mut refused),
                        None => return,
                    }
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("could not start the registry and flag watcher thread");
        }
        Watcher { stop: Some(stop), thread, inner: watched }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.watchers.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A manifest version the watcher could not deploy, and when to try it again.
struct Retry {
    version: String,
    failures: u32,
    next_at: Instant,
}

impl Retry {
    const MAX_DELAY: Duration = Duration::from_secs(300);

    /// The wait after `failures` failures: the interval doubled per failure, at most
    /// 32 intervals or 5 minutes, jittered so replicas do not retry in step.
    fn delay(interval: Duration, failures: u32) -> Duration {
        let base = interval.saturating_mul(1 << failures.clamp(1, 6).saturating_sub(1)).min(Self::MAX_DELAY);
        crate::sync::jitter(base.saturating_mul(2)).min(Self::MAX_DELAY).max(interval)
    }
}

#[derive(Default)]
struct Refused {
    interval: Duration,
    manifest: HashMap<String, Retry>,
    flagged: HashSet<(String, String)>,
    /// Rollout flags found missing from the flag state (said once until they appear).
    unknown_flags: HashSet<String>,
}

/// One look at every model's manifest and flag.
fn look(inner: &Arc<Inner>, refused: &mut Refused) {
    for (name, slot) in &inner.models {
        if let Some(registry) = &slot.registry {
            match registry.manifest(name) {
                Ok(manifest) => {
                    let serving = slot.current().serving.version.to_string();
                    let now = Instant::now();
                    let waiting = refused
                        .manifest
                        .get(name)
                        .is_some_and(|retry| retry.version == manifest.serving && now < retry.next_at);
                    if manifest.serving != serving && !waiting {
                        let deployed =
                            inner.change(slot, |s| s.deploy(&inner.loader, &manifest.serving, None).map(drop));
                        if deployed.is_ok() {
                            refused.manifest.remove(name);
                        } else {
                            let failures = match refused.manifest.get(name) {
                                Some(retry) if retry.version == manifest.serving => retry.failures.saturating_add(1),
                                _ => 1,
                            };
                            let next_at = now + Retry::delay(refused.interval, failures);
                            refused
                                .manifest
                                .insert(name.clone(), Retry { version: manifest.serving, failures, next_at });
                        }
                    } else if manifest.serving == serving {
                        refused.manifest.remove(name);
                    }
                }
                Err(error) => tracing::warn!(model = %name, %error, "registry manifest unreadable"),
            }
        }
        if let (Some(rollout), Some(flags)) = (&slot.rollout, &inner.flags) {
            if flags.knows(&rollout.flag) {
                refused.unknown_flags.remove(&rollout.flag);
            } else if refused.unknown_flags.insert(rollout.flag.clone()) {
                tracing::warn!(model = %name, flag = %rollout.flag,
                    "the rollout flag is not in the flag state: requests are served as with the flag off");
            }
            let wanted: Vec<String> = flags
                .versions(&rollout.flag)
                .into_iter()
                .filter(|v| !refused.flagged.contains(&(name.clone(), v.clone())))
                .collect();
            let missing = wanted.iter().any(|v| !slot.current().loaded.contains_key(v));
            if missing {
                for error in slot.preload(&inner.loader, wanted) {
                    inner.stats.version_refused(name);
                    if let Error::VersionRefused { version, .. } = &error {
                        refused.flagged.insert((name.clone(), version.clone()));
                    }
                    tracing::warn!(model = %name, %error, "flagged version not loaded");
                }
            }
        }
    }
}
