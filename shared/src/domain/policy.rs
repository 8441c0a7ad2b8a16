//! A job's policies, checked values like the rest of its definition: how its failed
//! attempts are retried (`RetrySpec`), and what counts as a successful response
//! (`SuccessRule`). Every field has a default that is Krafter's behaviour before policies
//! existed: linear retries on the deployment's base, success = any 2xx.

use std::fmt;
use std::time::Duration;

/// How the wait before a retry grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backoff {
    /// `base`, `2 × base`, `3 × base`, ... (the published default).
    #[default]
    Linear,
    /// `base`, `2 × base`, `4 × base`, ...
    Exponential,
}

impl Backoff {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "linear" => Ok(Self::Linear),
            "exponential" => Ok(Self::Exponential),
            _ => Err("is not included in the list (linear, exponential)"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Exponential => "exponential",
        }
    }
}

/// A retry wait given in milliseconds: 100 to 86,400,000 (a day).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetryMs(u32);

impl RetryMs {
    pub const MIN: u32 = 100;
    pub const MAX: u32 = 86_400_000;
    pub fn parse(ms: i64) -> Result<Self, &'static str> {
        if (i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&ms) {
            Ok(Self(ms as u32))
        } else {
            Err("must be between 100 and 86400000")
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
    pub fn duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0))
    }
}

/// How a job's failed attempts are spaced. `base: None` is the deployment's base
/// (`KRAFTER_RETRY_BACKOFF_MS`); `max: None` is no cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetrySpec {
    pub backoff: Backoff,
    pub base: Option<RetryMs>,
    pub max: Option<RetryMs>,
}

impl RetrySpec {
    /// The cap must not be below the base.
    pub fn new(
        backoff: Backoff,
        base: Option<RetryMs>,
        max: Option<RetryMs>,
    ) -> Result<Self, &'static str> {
        match (base, max) {
            (Some(b), Some(m)) if m < b => Err("must be greater than or equal to retry_base_ms"),
            _ => Ok(Self { backoff, base, max }),
        }
    }

    /// The backoff, unless it is the default (linear): how records and responses show it.
    pub fn backoff_if_set(&self) -> Option<Backoff> {
        (self.backoff != Backoff::Linear).then_some(self.backoff)
    }

    /// The wait after failed attempt number `attempt` (1 = the first), before
    /// `Retry-After` is considered.
    pub fn delay(&self, attempt: u32, deployment_base: Duration) -> Duration {
        let base = self.base.map_or(deployment_base, RetryMs::duration);
        let grown = match self.backoff {
            Backoff::Linear => base.saturating_mul(attempt),
            Backoff::Exponential => {
                base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            }
        };
        match self.max {
            Some(cap) => grown.min(cap.duration()),
            None => grown,
        }
    }
}

/// One accepted response status: a code (`404`) or a class (`2xx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    Code(u16),
    /// The hundreds digit: `2` for `2xx`.
    Class(u16),
}

impl StatusMatch {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("has {s:?}, which is not a status code or class (100-599, 1xx-5xx)");
        let bytes = s.as_bytes();
        if bytes.len() != 3 {
            return Err(bad());
        }
        let hundreds = u16::from(bytes[0].wrapping_sub(b'0'));
        if !(1..=5).contains(&hundreds) {
            return Err(bad());
        }
        if s[1..].eq_ignore_ascii_case("xx") {
            return Ok(Self::Class(hundreds));
        }
        match s.parse::<u16>() {
            Ok(code) if s[1..].bytes().all(|b| b.is_ascii_digit()) => Ok(Self::Code(code)),
            _ => Err(bad()),
        }
    }
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(c) => c == status,
            Self::Class(h) => status / 100 == h,
        }
    }
}

impl fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "{c}"),
            Self::Class(h) => write!(f, "{h}xx"),
        }
    }
}

/// A regular expression the response body must match (searched for anywhere in it, so
/// plain text matches as a substring). At most 1,024 characters; compiled with a size
/// limit, and matched in time linear in the body (at most the 16 KiB Krafter reads).
#[derive(Clone, Debug)]
pub struct ExpectBody(regex::Regex);

impl ExpectBody {
    pub const MAX_CHARS: usize = 1024;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("can't be blank");
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err("is too long (maximum is 1024 characters)");
        }
        regex::RegexBuilder::new(s)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map(Self)
            .map_err(|_| "is not a valid regular expression")
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn matches(&self, body: &str) -> bool {
        self.0.is_match(body)
    }
}

impl PartialEq for ExpectBody {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for ExpectBody {}

/// What counts as a successful response. The default: any 2xx, whatever the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuccessRule {
    statuses: Vec<StatusMatch>,
    body: Option<ExpectBody>,
}

impl Default for SuccessRule {
    fn default() -> Self {
        Self {
            statuses: vec![StatusMatch::Class(2)],
            body: None,
        }
    }
}

impl SuccessRule {
    pub const MAX_STATUSES: usize = 20;

    pub fn new(statuses: Vec<StatusMatch>, body: Option<ExpectBody>) -> Result<Self, &'static str> {
        if statuses.is_empty() {
            return Err("can't be blank");
        }
        if statuses.len() > Self::MAX_STATUSES {
            return Err("has too many entries (maximum is 20)");
        }
        Ok(Self { statuses, body })
    }

    pub fn statuses(&self) -> &[StatusMatch] {
        &self.statuses
    }
    pub fn body(&self) -> Option<&ExpectBody> {
        self.body.as_ref()
    }
    pub fn is_default_statuses(&self) -> bool {
        self.statuses == [StatusMatch::Class(2)]
    }

    /// The expected statuses as text, unless they are the default (`["2xx"]`): how records
    /// and responses show them.
    pub fn statuses_if_set(&self) -> Option<Vec<String>> {
        (!self.is_default_statuses())
            .then(|| self.statuses.iter().map(ToString::to_string).collect())
    }

    /// Judges a response: `Ok` when it succeeded, else the error the attempt records,
    /// naming the rule it broke.
    pub fn judge(&self, status: u16, body: &str) -> Result<(), String> {
        if !self.statuses.iter().any(|m| m.matches(status)) {
            if self.is_default_statuses() {
                return Err(format!("HTTP {status}"));
            }
            let expected: Vec<String> = self.statuses.iter().map(ToString::to_string).collect();
            return Err(format!(
                "HTTP {status} is not an expected status (expect_status: {})",
                expected.join(", ")
            ));
        }
        match &self.body {
            Some(rule) if !rule.matches(body) => Err(format!(
                "HTTP {status}: the response body does not match expect_body"
            )),
            _ => Ok(()),
        }
    }
}

/// How late a missed run may still start, per job: 0 to 86,400 seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUpWindow(u32);

impl CatchUpWindow {
    pub fn parse(secs: i64) -> Result<Self, &'static str> {
        if (0..=86_400).contains(&secs) {
            Ok(Self(secs as u32))
        } else {
            Err("must be between 0 and 86400")
        }
    }
    pub fn secs(self) -> u32 {
        self.0
    }
}

/// A number of consecutive failed runs: 1 to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FailureCount(u32);

impl FailureCount {
    pub const ONE: Self = Self(1);
    pub fn parse(n: i64) -> Result<Self, &'static str> {
        if (1..=100).contains(&n) {
            Ok(Self(n as u32))
        } else {
            Err("must be between 1 and 100")
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// What a job's failure streak (its consecutive failed runs) sets off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertPolicy {
    /// A failure notice for each failed run once the streak is this long (1: every failed
    /// run, the published behaviour); one recovery notice for the success that ends it.
    pub notify_after: FailureCount,
    /// The job pauses itself when the streak reaches this (none by default).
    pub disable_after: Option<FailureCount>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            notify_after: FailureCount::ONE,
            disable_after: None,
        }
    }
}

/// What a run's end does to its job's failure streak, as the stores apply it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreakChange {
    /// A failed run: one more.
    Extend,
    /// A successful run: the streak is over.
    Reset,
    /// No run end (a skipped run): the streak stays.
    Keep,
}

impl StreakChange {
    pub fn of(status: super::RunStatus) -> Self {
        match status {
            super::RunStatus::Failed => Self::Extend,
            super::RunStatus::Success => Self::Reset,
            super::RunStatus::Skipped => Self::Keep,
        }
    }
    pub fn apply(self, streak: u32) -> u32 {
        match self {
            Self::Extend => streak.saturating_add(1),
            Self::Reset => 0,
            Self::Keep => streak,
        }
    }
}

impl super::Job {
    /// Whether the end of a run with `status` changes what the job keeps of its runs (its
    /// `last_status` and failure streak), as the job was read: everything but a success
    /// after a success. The executor writes the job only then (a run's end at steady state
    /// writes nothing but its execution); `last_run_at` as shown is the newest finished
    /// attempt's (`Job::ran`).
    pub fn run_end_changes(&self, status: super::RunStatus) -> bool {
        let steady = status == super::RunStatus::Success
            && self.last_status == Some(super::RunStatus::Success)
            && self.consecutive_failures == 0;
        !steady
    }
}

/// What a run's end calls for under a job's alert policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Alerts {
    pub failure_notice: bool,
    pub recovery_notice: bool,
    pub disable: bool,
}

impl AlertPolicy {
    /// `notify_after_failures`, unless it is the default (1).
    pub fn notify_after_if_set(&self) -> Option<u32> {
        (self.notify_after != FailureCount::ONE).then(|| self.notify_after.get())
    }

    /// `previous`: the streak before this run ended; `status`: how it ended.
    pub fn on_run_end(&self, previous: u32, status: super::RunStatus) -> Alerts {
        let streak = StreakChange::of(status).apply(previous);
        let n = self.notify_after.get();
        match status {
            super::RunStatus::Failed => Alerts {
                failure_notice: streak >= n,
                recovery_notice: false,
                disable: self.disable_after.is_some_and(|d| streak == d.get()),
            },
            super::RunStatus::Success => Alerts {
                recovery_notice: previous >= n,
                ..Alerts::default()
            },
            super::RunStatus::Skipped => Alerts::default(),
        }
    }
}

/// How a job's notices are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NoticeFormat {
    /// Krafter's JSON notice (the published default).
    #[default]
    Json,
    /// A body a Slack incoming webhook accepts: `{"text": "..."}`.
    Slack,
}

impl NoticeFormat {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "json" => Ok(Self::Json),
            "slack" => Ok(Self::Slack),
            _ => Err("is not included in the list (json, slack)"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
        }
    }
}

/// Where and how a job's notices go: its own URL (vetted like its target), or the
/// deployment's (`KRAFTER_NOTIFY_URL`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoticeSpec {
    pub url: Option<super::TargetUrl>,
    pub format: NoticeFormat,
}

impl NoticeSpec {
    /// The format, unless it is the default (JSON).
    pub fn format_if_set(&self) -> Option<NoticeFormat> {
        (self.format != NoticeFormat::Json).then_some(self.format)
    }
}

/// Why a job is paused, shown on it until it is resumed: 1 to 200 characters, not blank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseReason(String);

impl PauseReason {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.trim().is_empty() {
            Err("can't be blank")
        } else if s.chars().count() > 200 {
            Err("is too long (maximum is 200 characters)")
        } else {
            Ok(Self(s.to_owned()))
        }
    }
    /// The reason a job gives itself when its streak reaches `auto_disable_after_failures`.
    pub fn auto_disabled(after: FailureCount) -> Self {
        Self(format!(
            "auto-disabled after {} consecutive failed runs",
            after.get()
        ))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(15);

    fn ms(n: i64) -> Option<RetryMs> {
        Some(RetryMs::parse(n).unwrap())
    }

    #[test]
    fn the_default_retry_is_linear_on_the_deployments_base() {
        let d = RetrySpec::default();
        let waits: Vec<_> = (1..=3).map(|a| d.delay(a, BASE).as_secs()).collect();
        assert_eq!(waits, [15, 30, 45]);
    }

    #[test]
    fn exponential_retries_double_up_to_the_cap() {
        let e = RetrySpec::new(Backoff::Exponential, ms(1000), ms(5000)).unwrap();
        let waits: Vec<_> = (1..=5).map(|a| e.delay(a, BASE).as_millis()).collect();
        assert_eq!(waits, [1000, 2000, 4000, 5000, 5000]);
        let uncapped = RetrySpec::new(Backoff::Exponential, ms(100), None).unwrap();
        assert_eq!(uncapped.delay(11, BASE), Duration::from_millis(102_400));
    }

    #[test]
    fn a_cap_below_the_base_is_refused() {
        assert_eq!(
            RetrySpec::new(Backoff::Linear, ms(2000), ms(1000)),
            Err("must be greater than or equal to retry_base_ms")
        );
        assert!(RetryMs::parse(99).is_err());
        assert!(RetryMs::parse(86_400_001).is_err());
    }

    #[test]
    fn status_codes_and_classes_parse_and_match() {
        assert_eq!(StatusMatch::parse("404"), Ok(StatusMatch::Code(404)));
        assert_eq!(StatusMatch::parse("2xx"), Ok(StatusMatch::Class(2)));
        assert_eq!(StatusMatch::parse("5XX"), Ok(StatusMatch::Class(5)));
        for bad in ["", "600", "099", "2x", "20x", "abc", "2xxx", "+20", "1e2"] {
            assert!(StatusMatch::parse(bad).is_err(), "{bad}");
        }
        assert!(StatusMatch::Class(2).matches(204));
        assert!(!StatusMatch::Class(2).matches(300));
        assert!(StatusMatch::Code(404).matches(404));
    }

    #[test]
    fn the_default_rule_is_any_2xx_with_todays_error() {
        let r = SuccessRule::default();
        assert_eq!(r.judge(204, ""), Ok(()));
        assert_eq!(r.judge(500, ""), Err("HTTP 500".to_owned()));
    }

    #[test]
    fn a_broken_rule_is_named_in_the_error() {
        let r = SuccessRule::new(
            vec![StatusMatch::Class(2), StatusMatch::Code(404)],
            Some(ExpectBody::parse(r#""status":\s*"ok""#).unwrap()),
        )
        .unwrap();
        assert_eq!(r.judge(404, r#"{"status": "ok"}"#), Ok(()));
        assert_eq!(
            r.judge(500, ""),
            Err("HTTP 500 is not an expected status (expect_status: 2xx, 404)".to_owned())
        );
        assert_eq!(
            r.judge(200, r#"{"status": "down"}"#),
            Err("HTTP 200: the response body does not match expect_body".to_owned())
        );
    }

    #[test]
    fn notices_start_at_the_streak_and_recovery_is_announced_once() {
        use crate::domain::RunStatus::{Failed, Success};
        let p = AlertPolicy {
            notify_after: FailureCount::parse(3).unwrap(),
            disable_after: FailureCount::parse(5).ok(),
        };
        let notices: Vec<bool> = (0..6)
            .map(|prev| p.on_run_end(prev, Failed).failure_notice)
            .collect();
        assert_eq!(notices, [false, false, true, true, true, true]);
        let disables: Vec<bool> = (0..6)
            .map(|prev| p.on_run_end(prev, Failed).disable)
            .collect();
        assert_eq!(disables, [false, false, false, false, true, false]);
        assert!(p.on_run_end(3, Success).recovery_notice);
        assert!(
            !p.on_run_end(2, Success).recovery_notice,
            "the streak never reached 3"
        );
        let default = AlertPolicy::default();
        assert!(
            default.on_run_end(0, Failed).failure_notice,
            "every failed run, as published"
        );
        assert!(default.on_run_end(1, Success).recovery_notice);
        assert!(!default.on_run_end(0, Success).recovery_notice);
    }

    #[test]
    fn expect_body_is_a_bounded_regular_expression() {
        assert!(ExpectBody::parse("ok").unwrap().matches("all ok here"));
        assert_eq!(
            ExpectBody::parse("("),
            Err("is not a valid regular expression")
        );
        assert_eq!(ExpectBody::parse(""), Err("can't be blank"));
        assert!(ExpectBody::parse(&"a".repeat(1025)).is_err());
        // A pattern whose compiled form is huge is refused, not built.
        assert!(ExpectBody::parse(r"\w{1000}\w{1000}").is_err());
    }
}
