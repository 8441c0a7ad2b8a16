//! Failure and recovery notices: POSTed as JSON to `KRAFTER_NOTIFY_URL` when set; always logged.

use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

use crate::ports::{Notice, Notifier};

/// Only logs notices (when no notice URL is configured).
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, notice: &Notice) {
        info!(job_id = %notice.job_id, event = ?notice.event, "failure notice (no notice URL configured)");
    }
}

/// POSTs each notice as JSON to one URL, trying up to three times.
pub struct WebhookNotifier {
    client: reqwest::Client,
    url: url::Url,
}

impl WebhookNotifier {
    pub fn new(url: url::Url) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, notice: &Notice) {
        let body = match serde_json::to_vec(notice) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "could not encode a notice");
                return;
            }
        };
        for attempt in 1..=3u64 {
            let sent = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::USER_AGENT, super::http::USER_AGENT)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    info!(job_id = %notice.job_id, event = ?notice.event, "notice sent");
                    return;
                }
                Ok(r) => {
                    warn!(job_id = %notice.job_id, status = r.status().as_u16(), attempt, "notice refused")
                }
                Err(e) => warn!(job_id = %notice.job_id, error = %e, attempt, "notice failed"),
            }
            tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
        }
    }
}
