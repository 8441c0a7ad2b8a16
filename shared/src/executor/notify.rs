//! Notices (a job failed, recovered, or disabled itself): POSTed to the job's own notice
//! URL, else to the deployment's (`KRAFTER_NOTIFY_URL`), as Krafter's JSON or in a body a
//! Slack incoming webhook accepts; signed like webhooks (`X-Krafter-Signature`) with one
//! `Idempotency-Key` per notice; always logged. A job's own URL is reached only through
//! the target guard, like its webhook.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{info, warn};

use crate::domain::{NoticeFormat, time};
use crate::ports::{Clock, Notice, NoticeEvent, NoticeRoute, Notifier};
use crate::targets::TargetGuard;

/// POSTs each notice, trying up to three times.
pub struct WebhookNotifier {
    /// For the deployment's URL (the operator's, trusted).
    client: reqwest::Client,
    /// For jobs' own URLs: through the target guard.
    guarded: reqwest::Client,
    guard: TargetGuard,
    default_url: Option<url::Url>,
    clock: Arc<dyn Clock>,
}

impl WebhookNotifier {
    pub fn new(
        default_url: Option<url::Url>,
        guard: TargetGuard,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let timeout = Duration::from_secs(10);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let guarded = super::http::guarded_client(&guard)
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            guarded,
            guard,
            default_url,
            clock,
        })
    }
}

/// The body of a notice in `format`.
pub fn render(notice: &Notice, format: NoticeFormat) -> Vec<u8> {
    match format {
        NoticeFormat::Json => serde_json::to_vec(notice).unwrap_or_default(),
        NoticeFormat::Slack => {
            serde_json::to_vec(&serde_json::json!({ "text": slack_text(notice) }))
                .unwrap_or_default()
        }
    }
}

fn slack_text(n: &Notice) -> String {
    let what = match n.event {
        NoticeEvent::JobFailed => ":red_circle: failed",
        NoticeEvent::JobRecovered => ":large_green_circle: recovered",
        NoticeEvent::JobDisabled => ":no_entry: disabled itself after failing again and again",
    };
    let error = n
        .error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    format!(
        "Krafter Cron job *{}* {what} (run scheduled at {}, {} attempt(s)){error}",
        n.job_name,
        time::format(n.scheduled_at),
        n.attempts,
    )
}

/// One key per notice: the same for its retries, different for each event of a run.
fn idempotency_key(n: &Notice) -> String {
    let name = format!("{}:{:?}", n.run_id, n.event);
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, notice: &Notice, route: &NoticeRoute) {
        let (client, url) = match (&route.url, &self.default_url) {
            (Some(own), _) => {
                if let Some(ip) = self.guard.literal_refused(own.url()) {
                    warn!(job_id = %notice.job_id, %ip, "notice refused: a private or internal address");
                    return;
                }
                (&self.guarded, own.url().clone())
            }
            (None, Some(default)) => (&self.client, default.clone()),
            (None, None) => {
                info!(job_id = %notice.job_id, event = ?notice.event, "notice (no notice URL configured)");
                return;
            }
        };
        let body = render(notice, route.format);
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, super::http::USER_AGENT)
            .header("idempotency-key", idempotency_key(notice));
        if let Some(secrets) = &route.secrets {
            request = request.header(
                "x-krafter-signature",
                secrets.signature_header(self.clock.now(), &body),
            );
        }
        for attempt in 1..=3u64 {
            let sent = request.try_clone().map(|r| r.body(body.clone()).send());
            let Some(sent) = sent else { return };
            match sent.await {
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
