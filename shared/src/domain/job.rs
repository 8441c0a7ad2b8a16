use std::fmt;

use chrono::{DateTime, Utc};

use super::filter::Tags;
use super::overlap::{Jitter, Overlap, RunMarker};
use super::policy::{AlertPolicy, CatchUpWindow, NoticeSpec, PauseReason, RetrySpec, SuccessRule};
use super::{JobId, RunStatus, TeamId};
use crate::schedule::Schedule;

/// A job's name: 1 to 200 characters, not blank.
#[derive(Clone, PartialEq, Eq)]
pub struct JobName(String);

impl JobName {
    pub const MAX_CHARS: usize = 200;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.trim().is_empty() {
            Err("can't be blank")
        } else if s.chars().count() > Self::MAX_CHARS {
            Err("is too long (maximum is 200 characters)")
        } else {
            Ok(Self(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// An absolute `http`/`https` URL with a host, at most 2048 characters. The text is kept as
/// the user wrote it (it is echoed back verbatim); `url()` is the parsed form.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl {
    text: String,
    parsed: url::Url,
}

impl TargetUrl {
    pub const MAX_LEN: usize = 2048;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("can't be blank");
        }
        if s.len() > Self::MAX_LEN {
            return Err("is too long (maximum is 2048 characters)");
        }
        let invalid = "must be an absolute http or https URL";
        // Whitespace and every control character (NUL, ESC, DEL, C1 ...) are refused: a
        // URL that means one thing here and another to a proxy or a log reader is no target.
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid);
        }
        let parsed = url::Url::parse(s).map_err(|_| invalid)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid);
        }
        match parsed.host_str() {
            Some(h) if !h.is_empty() => {}
            _ => return Err(invalid),
        }
        Ok(Self {
            text: s.to_owned(),
            parsed,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn url(&self) -> &url::Url {
        &self.parsed
    }
}

impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl HttpMethod {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Ok(match s {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "HEAD" => Self::Head,
            _ => return Err("is invalid"),
        })
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
        }
    }
}

/// Request headers a job sends: at most 50, valid names and values, unique names
/// (case-insensitively), none that the transport or Krafter itself owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderList(Vec<(String, String)>);

impl HeaderList {
    pub const MAX_ENTRIES: usize = 50;
    const TRANSPORT_OWNED: [&'static str; 11] = [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    ];
    const KRAFTER_OWNED: [&'static str; 2] = ["user-agent", "idempotency-key"];

    /// Checks every entry and returns every problem found.
    pub fn parse(entries: Vec<(String, String)>) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        if entries.len() > Self::MAX_ENTRIES {
            errors.push("has too many entries (maximum is 50)".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for (name, value) in &entries {
            let lower = name.to_ascii_lowercase();
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(format!("has an invalid header name: {name:?}"));
                continue;
            }
            if Self::TRANSPORT_OWNED.contains(&lower.as_str()) {
                errors.push(format!(
                    "must not set {name} (it is managed by the connection)"
                ));
            } else if Self::KRAFTER_OWNED.contains(&lower.as_str())
                || lower.starts_with("x-krafter-")
            {
                errors.push(format!("must not set {name} (Krafter sets it)"));
            }
            if !seen.insert(lower) {
                errors.push(format!("has {name} more than once"));
            }
            if http::HeaderValue::from_str(value).is_err() {
                errors.push(format!("has an invalid value for {name}"));
            }
        }
        if errors.is_empty() {
            Ok(Self(entries))
        } else {
            Err(errors)
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request body: at most 64 KiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body(String);

impl Body {
    pub const MAX_BYTES: usize = 64 * 1024;
    pub fn parse(s: String) -> Result<Self, &'static str> {
        if s.len() > Self::MAX_BYTES {
            Err("is too long (maximum is 65536 bytes)")
        } else {
            Ok(Self(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long one attempt may take: 1,000 to 300,000 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutMs(u32);

impl TimeoutMs {
    pub const DEFAULT: Self = Self(30_000);
    pub fn parse(ms: i64) -> Result<Self, &'static str> {
        if (1_000..=300_000).contains(&ms) {
            Ok(Self(ms as u32))
        } else {
            Err("must be between 1000 and 300000")
        }
    }
    pub fn get(&self) -> u32 {
        self.0
    }
}

/// How many times a failed attempt is retried: 0 to 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxRetries(u8);

impl MaxRetries {
    pub const DEFAULT: Self = Self(3);
    pub fn parse(n: i64) -> Result<Self, &'static str> {
        if (0..=10).contains(&n) {
            Ok(Self(n as u8))
        } else {
            Err("must be between 0 and 10")
        }
    }
    pub fn get(&self) -> u32 {
        u32::from(self.0)
    }
}

/// The HTTP request a job makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSpec {
    pub url: TargetUrl,
    pub method: HttpMethod,
    pub headers: HeaderList,
    pub body: Option<Body>,
    pub timeout: TimeoutMs,
}

/// What a user defines: everything of a job that the API accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    pub name: JobName,
    pub schedule: Schedule,
    pub request: WebhookSpec,
    pub max_retries: MaxRetries,
    pub failure_notify: bool,
    /// How failed attempts are spaced.
    pub retry: RetrySpec,
    /// What counts as a successful response.
    pub success: SuccessRule,
    /// Labels to filter lists by.
    pub tags: Tags,
    /// What a failure streak sets off (notices, auto-disable).
    pub alerts: AlertPolicy,
    /// Where and how its notices go.
    pub notices: NoticeSpec,
    /// When runs fire and whether they may overlap.
    pub firing: FiringPolicy,
}

/// When a job's runs fire and start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FiringPolicy {
    /// How late a missed run may still start (`None`: the deployment's behaviour).
    pub catch_up: Option<CatchUpWindow>,
    /// Whether a run may start while an earlier one is unfinished.
    pub overlap: Overlap,
    /// How far after its time a scheduled run may fire.
    pub jitter: Jitter,
}

/// A stored job: its definition plus the state the service keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub team: TeamId,
    pub spec: JobSpec,
    pub enabled: bool,
    /// Bumped on every pause: a queued run or retry made under an older generation is dropped.
    pub generation: u64,
    /// Bumped on every change of definition or state (optimistic concurrency).
    pub version: u64,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_status: Option<RunStatus>,
    pub last_run_at: Option<DateTime<Utc>>,
    /// Consecutive failed runs up to the last one (0 after a success).
    pub consecutive_failures: u32,
    /// The run whose end `last_status` is.
    pub last_run_id: Option<super::RunId>,
    /// Why the job is paused, when it was paused with a reason (cleared on resume).
    pub paused_reason: Option<PauseReason>,
    /// Run state under an overlap policy: the unfinished run and the one waiting for it.
    pub run_marker: RunMarker,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// A job as it is created at `now`: a fresh id, no runs yet, and its first run planned
    /// from `now` when it starts enabled.
    pub fn new(team: TeamId, spec: JobSpec, enabled: bool, now: DateTime<Utc>) -> Self {
        let next_run_at = if enabled {
            spec.schedule.first_run(now)
        } else {
            None
        };
        Self {
            id: JobId::new(),
            team,
            spec,
            enabled,
            generation: 0,
            version: 1,
            next_run_at,
            last_status: None,
            last_run_at: None,
            consecutive_failures: 0,
            last_run_id: None,
            paused_reason: None,
            run_marker: RunMarker::default(),
            created_at: now,
            updated_at: now,
        }
    }
}

impl Job {
    /// Stops every scheduled run after now, including queued runs and pending retries (the
    /// generation they carry is outdated).
    pub fn pause(&mut self, reason: Option<PauseReason>) {
        self.enabled = false;
        self.generation += 1;
        self.next_run_at = None;
        self.paused_reason = reason;
    }

    /// Enables the job again from `now` (intervals count from now). `None` when its
    /// schedule has no future run (a `once` job whose time has passed).
    pub fn resume(&mut self, now: DateTime<Utc>) -> Option<()> {
        let next = self.spec.schedule.first_run(now)?;
        self.enabled = true;
        self.next_run_at = Some(next);
        self.paused_reason = None;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_or_https() {
        assert!(TargetUrl::parse("https://example.com/api/health").is_ok());
        assert!(TargetUrl::parse("http://127.0.0.1:8080/x?y=1").is_ok());
        for bad in [
            "",
            "example.com",
            "/relative",
            "ftp://example.com",
            "https://",
            "https:// example.com",
            "javascript:alert(1)",
            "http://host/a\u{0}b",
            "http://host/a\u{1}b",
            "http://host/a\u{1b}b",
            "http://host/a\u{7f}b",
            "http://host/a\u{85}b",
            "http://host/a\tb",
        ] {
            assert!(TargetUrl::parse(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(
            TargetUrl::parse(&long).unwrap_err(),
            "is too long (maximum is 2048 characters)"
        );
    }

    #[test]
    fn urls_are_echoed_as_written() {
        let u = TargetUrl::parse("https://EXAMPLE.com").unwrap();
        assert_eq!(u.as_str(), "https://EXAMPLE.com");
    }

    #[test]
    fn headers_reject_transport_and_krafter_owned_names() {
        let h = |n: &str| HeaderList::parse(vec![(n.to_owned(), "v".to_owned())]);
        assert!(h("X-Api-Key").is_ok());
        for bad in [
            "Host",
            "content-length",
            "Connection",
            "Transfer-Encoding",
            "X-Krafter-Signature",
            "User-Agent",
            "bad header",
            "",
        ] {
            assert!(h(bad).is_err(), "{bad}");
        }
        let dup = HeaderList::parse(vec![
            ("X-A".to_owned(), "1".to_owned()),
            ("x-a".to_owned(), "2".to_owned()),
        ]);
        assert!(dup.is_err());
        let bad_value = HeaderList::parse(vec![("X-A".to_owned(), "a\nb".to_owned())]);
        assert!(bad_value.is_err());
        let many = (0..51)
            .map(|i| (format!("X-{i}"), "v".to_owned()))
            .collect();
        assert_eq!(
            HeaderList::parse(many).unwrap_err(),
            vec!["has too many entries (maximum is 50)".to_owned()]
        );
    }

    #[test]
    fn numeric_limits_are_inclusive() {
        assert!(TimeoutMs::parse(1_000).is_ok());
        assert!(TimeoutMs::parse(300_000).is_ok());
        assert!(TimeoutMs::parse(999).is_err());
        assert!(TimeoutMs::parse(300_001).is_err());
        assert!(MaxRetries::parse(0).is_ok());
        assert!(MaxRetries::parse(10).is_ok());
        assert!(MaxRetries::parse(-1).is_err());
        assert!(MaxRetries::parse(11).is_err());
    }

    #[test]
    fn names_are_one_to_two_hundred_characters_and_not_blank() {
        assert!(JobName::parse("Health Check").is_ok());
        assert!(JobName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(JobName::parse("   ").unwrap_err(), "can't be blank");
        assert!(JobName::parse(&"a".repeat(201)).is_err());
    }
}
