//! The embedded server's Prometheus endpoint: the metrics of `crate::metrics`, recorded by
//! `metrics-exporter-prometheus` and served at `http://<KRAFTER_METRICS_BIND>/metrics` on a
//! listener of its own (off unless the address is set), with the queue and job gauges
//! sampled every few seconds.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::warn;

use crate::adapters::sqlite::SqliteRunQueue;
use crate::ports::Clock;

/// How often the gauges are sampled (and the histograms' windows kept up).
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// The process's recorder (one per process: the `metrics` facade has one global recorder).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Seconds, from 1 ms to 5 minutes.
        let buckets = [
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            warn!("another metrics recorder is installed: Prometheus sees nothing");
        }
        crate::metrics::describe();
        handle
    })
}

/// Binds the metrics listener (before the server reports that it serves).
pub(crate) async fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics` until `stop`, sampling the gauges meanwhile.
pub(crate) async fn serve(
    listener: TcpListener,
    queue: SqliteRunQueue,
    clock: std::sync::Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let handle = handle().clone();
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    let mut shutdown = stop.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    let sampler = async move {
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => break,
            }
            match queue.depths(clock.now()).await {
                Ok(d) => crate::metrics::depths(d),
                Err(e) => warn!(error = %e, "could not sample the queue for the metrics"),
            }
            self::handle().run_upkeep();
        }
    };
    let (served, ()) = tokio::join!(server, sampler);
    if let Err(e) = served {
        warn!(error = %e, "the metrics listener stopped");
    }
}

/// Installs the recorder (so that what happens from now on is counted).
pub(crate) fn install() {
    let _ = handle();
}
