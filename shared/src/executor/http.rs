//! Webhook calls over reqwest: one shared client (connection reuse), no redirects, the
//! job's timeout over the whole attempt, the first 16 KiB of the response kept.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::domain::{AttemptOutcome, RunStatus, SuccessRule, time::whole_seconds};
use crate::ports::{Clock, WebhookCall, WebhookClient, WebhookResponse};
use crate::targets::TargetGuard;

/// How much of a response body is recorded.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

pub const USER_AGENT: &str = concat!("krafter-cron/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug)]
pub struct WebhookClientConfig {
    /// Idle connections kept per host, for bursts to the same target.
    pub max_idle_per_host: usize,
}

impl Default for WebhookClientConfig {
    fn default() -> Self {
        Self {
            max_idle_per_host: 256,
        }
    }
}

pub struct ReqwestWebhookClient {
    client: reqwest::Client,
    guard: TargetGuard,
    clock: Arc<dyn Clock>,
}

impl ReqwestWebhookClient {
    /// Names resolve through `guard`'s resolver, and a call connects only to the addresses
    /// its policy allows. No proxy (a proxy would resolve the name, out of the guard's
    /// sight) and no redirects.
    pub fn new(
        config: &WebhookClientConfig,
        guard: TargetGuard,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let client = guarded_client(&guard)
            .pool_max_idle_per_host(config.max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            client,
            guard,
            clock,
        })
    }
}

/// A client that reaches only what `guard` allows: names resolve through the guard and
/// keep only allowed addresses; no proxy (a proxy would resolve the name, out of the
/// guard's sight), no redirects.
pub(crate) fn guarded_client(guard: &TargetGuard) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedDns(guard.clone())))
}

/// reqwest's resolver: resolves with the guard's resolver and keeps only allowed addresses,
/// so the address checked is the address connected to (no DNS rebinding window).
struct GuardedDns(TargetGuard);

/// A name whose every address is refused by the target policy.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to private or internal addresses")]
struct RefusedTarget(String);

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            let host = name.as_str();
            let found = guard.resolver().resolve(host).await?;
            let allowed = guard.allowed(found);
            if allowed.is_empty() {
                return Err(Box::new(RefusedTarget(host.to_owned())) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What came back from a target, as far as it was read.
struct Received {
    status: u16,
    retry_after: Option<u64>,
    /// The first `MAX_RESPONSE_BYTES` of the body.
    body: Vec<u8>,
}

#[async_trait]
impl WebhookClient for ReqwestWebhookClient {
    async fn call(&self, call: &WebhookCall) -> WebhookResponse {
        let spec = &call.job.spec.request;
        if let Some(ip) = self.guard.literal_refused(spec.url.url()) {
            return WebhookResponse::failed_before_sending(
                format!("refused: {ip} is a private or internal address"),
                self.clock.now(),
            );
        }
        let started = Instant::now();
        let timeout = Duration::from_millis(u64::from(spec.timeout.get()));
        let result = tokio::time::timeout(timeout, self.send(self.request(call))).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let finished_at = whole_seconds(self.clock.now());
        let ended = Ended {
            duration_ms,
            finished_at,
        };
        let timed_out = || format!("timeout after {} ms", spec.timeout.get());
        match result {
            Ok(Ok(received)) => ended.answered(received, &call.job.spec.success),
            Ok(Err(e)) if e.is_timeout() => ended.not_answered(timed_out()),
            Ok(Err(e)) => ended.not_answered(describe(&e)),
            Err(_) => ended.not_answered(timed_out()),
        }
    }
}

impl ReqwestWebhookClient {
    /// The job's request, with Krafter's headers: user agent, ids, idempotency key and
    /// signature (over the body, signed now).
    fn request(&self, call: &WebhookCall) -> reqwest::RequestBuilder {
        let spec = &call.job.spec.request;
        let method = reqwest::Method::from_bytes(spec.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET);
        let mut headers = HeaderMap::with_capacity(spec.headers.len() + 6);
        for (name, value) in spec.headers.iter() {
            // Names and values were checked when the job was saved.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        }
        headers.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        let body = spec.body.as_ref().map(|b| b.as_str().as_bytes().to_vec());
        let signature = call
            .secrets
            .signature_header(self.clock.now(), body.as_deref().unwrap_or_default());
        let ids = [
            ("x-krafter-job-id", call.job.id.to_string()),
            ("x-krafter-execution-id", call.execution_id.to_string()),
            ("x-krafter-attempt", call.attempt.to_string()),
            // The same for every attempt of a run, so receivers can drop repeats.
            ("idempotency-key", call.run_id.to_string()),
            ("x-krafter-signature", signature),
        ];
        for (name, value) in ids {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        let request = self
            .client
            .request(method, spec.url.url().clone())
            .headers(headers);
        match body {
            Some(body) => request.body(body),
            None => request,
        }
    }

    /// Sends the request and reads the response: its status, `Retry-After`, and the first
    /// `MAX_RESPONSE_BYTES` of its body.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Received, reqwest::Error> {
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = retry_after(&response, self.clock.now());
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(MAX_RESPONSE_BYTES);
        Ok(Received {
            status,
            retry_after,
            body,
        })
    }
}

/// When and after how long an attempt ended.
struct Ended {
    duration_ms: u64,
    finished_at: chrono::DateTime<Utc>,
}

impl Ended {
    /// A response: a success if the job's rule says so (by default, a 2xx).
    fn answered(self, r: Received, rule: &SuccessRule) -> WebhookResponse {
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let verdict = rule.judge(r.status, &body);
        WebhookResponse {
            outcome: AttemptOutcome {
                status: match verdict {
                    Ok(()) => RunStatus::Success,
                    Err(_) => RunStatus::Failed,
                },
                http_status: Some(r.status),
                response_body: Some(body),
                error: verdict.err(),
                duration_ms: self.duration_ms,
                finished_at: self.finished_at,
            },
            retry_after: r.retry_after,
        }
    }

    /// No response: a failure with the reason.
    fn not_answered(self, error: String) -> WebhookResponse {
        WebhookResponse {
            outcome: AttemptOutcome {
                status: RunStatus::Failed,
                http_status: None,
                response_body: None,
                error: Some(error),
                duration_ms: self.duration_ms,
                finished_at: self.finished_at,
            },
            retry_after: None,
        }
    }
}

/// `Retry-After` on a 429 or 503, in seconds (delta-seconds or an HTTP date).
fn retry_after(response: &reqwest::Response, now: chrono::DateTime<Utc>) -> Option<u64> {
    if !matches!(response.status().as_u16(), 429 | 503) {
        return None;
    }
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).num_seconds().max(0) as u64)
}

/// A short human text for a failed connection: `connection refused`, `dns lookup failed`...
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<RefusedTarget>() {
            return format!("refused: {refused}");
        }
        source = s.source();
    }
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    let mut innermost = e.to_string();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => return "connection refused".to_owned(),
                K::ConnectionReset => return "connection reset".to_owned(),
                K::ConnectionAborted => return "connection aborted".to_owned(),
                K::HostUnreachable | K::NetworkUnreachable => {
                    return "host unreachable".to_owned();
                }
                _ => {}
            }
        }
        let text = s.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return format!(
                "dns lookup failed: {}",
                e.url().and_then(|u| u.host_str()).unwrap_or("?")
            );
        }
        innermost = text;
        source = s.source();
    }
    if e.is_connect() {
        format!("connection failed: {innermost}")
    } else if e.is_body() || e.is_decode() {
        format!("response body error: {innermost}")
    } else {
        format!("request failed: {innermost}")
    }
}
