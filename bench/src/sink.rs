//! The webhook sink: a keep-alive HTTP server on 127.0.0.1 that answers 200 at once (or after
//! `?delay_ms=N`) and records when each request arrived, its path and its execution id.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};

#[derive(Clone, Debug)]
pub struct Arrival {
    pub at: DateTime<Utc>,
    pub path: String,
    pub execution: Option<String>,
}

#[derive(Clone)]
pub struct Sink {
    pub base: String,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl Sink {
    pub async fn start() -> Self {
        let arrivals: Arc<Mutex<Vec<Arrival>>> = Arc::default();
        let log = arrivals.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let at = Utc::now();
            let log = log.clone();
            async move {
                let execution = headers
                    .get("x-krafter-execution-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                log.lock().unwrap().push(Arrival {
                    at,
                    path: uri.path().to_owned(),
                    execution,
                });
                let delay = uri
                    .query()
                    .and_then(|q| q.strip_prefix("delay_ms="))
                    .and_then(|d| d.parse().ok());
                if let Some(ms) = delay {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, arrivals }
    }

    /// A position in the record: arrivals after it are read with [`Sink::since`].
    pub fn mark(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    /// Arrivals after `mark` whose path starts with `prefix`.
    pub fn since(&self, mark: usize, prefix: &str) -> Vec<Arrival> {
        self.arrivals.lock().unwrap()[mark..]
            .iter()
            .filter(|a| a.path.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub fn count_since(&self, mark: usize, prefix: &str) -> usize {
        self.arrivals.lock().unwrap()[mark..]
            .iter()
            .filter(|a| a.path.starts_with(prefix))
            .count()
    }

    /// Waits until `n` arrivals under `prefix` came after `mark`, `timeout` passed, or
    /// nothing more came for 30 s after something did (the rest is lost). Returns how many
    /// came.
    pub async fn wait_for(&self, mark: usize, prefix: &str, n: usize, timeout: Duration) -> usize {
        let now = tokio::time::Instant::now;
        let deadline = now() + timeout;
        let (mut last, mut moved) = (0, now());
        loop {
            let got = self.count_since(mark, prefix);
            if got != last {
                (last, moved) = (got, now());
            }
            let stalled = got > 0 && now() - moved > Duration::from_secs(30);
            if got >= n || now() >= deadline || stalled {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
