//! `fresco serve`: the HTTP service (fresco-http) from a configuration file, until
//! SIGTERM or SIGINT.

use std::path::Path;

use fresco_http::{ServeConfig, Service};

use crate::CliError;

pub fn run(config_path: &Path) -> Result<(), CliError> {
    let config = ServeConfig::from_file(config_path)?;
    let metrics =
        fresco_http::install_metrics().map_err(|e| CliError::Serve { reason: format!("the metrics recorder: {e}") })?;
    let serving = config.start()?;
    let service = Service::new(serving.client.clone())
        .metrics(metrics)
        .max_body_bytes(config.max_body_bytes)
        .readiness_checks(serving.readiness_checks());
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| CliError::Io { path: what, source }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(io("the runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(io(&config.listen))?;
        let address = listener.local_addr().map_err(io(&config.listen))?;
        println!("fresco serve: models {} on http://{address}", service.client().models().join(", "));
        axum::serve(listener, service.router()).with_graceful_shutdown(stop_signal()).await.map_err(io(&config.listen))
    })?;
    // No request is in flight any more: publish what they logged.
    drop(runtime);
    let predictions = serving.client.stats().predictions;
    serving
        .shutdown(std::time::Duration::from_secs(5))
        .map_err(|e| CliError::Serve { reason: format!("the final flush of the log: {e}") })?;
    println!("fresco serve: stopped; {predictions} predictions logged and published");
    Ok(())
}

/// SIGTERM (what orchestrators send) or SIGINT (Ctrl-C): stop accepting, finish what is
/// in flight.
async fn stop_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    eprintln!("fresco serve: stopping: finishing requests in flight");
}
