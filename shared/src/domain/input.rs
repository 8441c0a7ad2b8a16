//! The rules of a job's definition (create and PATCH): a typed [`JobDraft`] becomes a
//! `JobSpec`, collecting every problem of every field. Wrong JSON types are found earlier,
//! where the API reads the draft (`InputError::Types`, 400 "Invalid JSON"); values that
//! break a rule, unknown fields and missing fields are an `InputError::Invalid` (422).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::filter::Tags;
use super::job::{
    Body, FiringPolicy, HeaderList, HttpMethod, JobName, JobSpec, MaxRetries, TargetUrl, TimeoutMs,
    WebhookSpec,
};
use super::overlap::{Jitter, Overlap};
use super::policy::{
    AlertPolicy, Backoff, CatchUpWindow, ExpectBody, FailureCount, NoticeFormat, NoticeSpec,
    RetryMs, RetrySpec, StatusMatch, SuccessRule,
};
use crate::schedule::{Schedule, ScheduleType, Timezone, Window};

/// Field name → every message for it, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&[String]> {
        self.0.get(field).map(Vec::as_slice)
    }
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    /// Records `message` for `field` and returns `None`: for parsers that go on after a
    /// bad value.
    pub fn refuse<T>(&mut self, field: &str, message: &str) -> Option<T> {
        self.add(field, message);
        None
    }
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("the request body has fields of the wrong JSON type")]
    Types(FieldErrors),
    #[error("the request body failed validation")]
    Invalid(FieldErrors),
}

/// The fields a client may write, in the order they are checked.
pub const WRITABLE_FIELDS: [&str; 27] = [
    "name",
    "schedule_type",
    "schedule",
    "timezone",
    "url",
    "method",
    "headers",
    "body",
    "timeout_ms",
    "max_retries",
    "enabled",
    "failure_notify",
    "retry_backoff",
    "retry_base_ms",
    "retry_max_ms",
    "expect_status",
    "expect_body",
    "tags",
    "notify_after_failures",
    "auto_disable_after_failures",
    "notify_url",
    "notify_format",
    "starts_at",
    "ends_at",
    "catchup_window_s",
    "overlap",
    "jitter_s",
];
const READ_ONLY: [&str; 8] = [
    "id",
    "last_status",
    "last_run_at",
    "next_run_at",
    "created_at",
    "updated_at",
    "consecutive_failures",
    "paused_reason",
];

/// A job as a request gives it (create or PATCH), typed but not yet checked against any
/// rule: `None` is a field the request left out. The API reads it from JSON
/// (`api::read_job_draft`); [`JobDraft::check_new`] and [`JobDraft::check_patch`] apply the
/// rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobDraft {
    pub name: Option<String>,
    pub schedule_type: Option<String>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub url: Option<String>,
    pub method: Option<String>,
    /// In the order given.
    pub headers: Option<Vec<(String, String)>>,
    /// `Some(None)`: `"body": null`, no body.
    pub body: Option<Option<String>>,
    pub timeout_ms: Option<i64>,
    pub max_retries: Option<i64>,
    pub enabled: Option<bool>,
    pub failure_notify: Option<bool>,
    pub retry_backoff: Option<String>,
    /// `Some(None)`: `null`, back to the default.
    pub retry_base_ms: Option<Option<i64>>,
    pub retry_max_ms: Option<Option<i64>>,
    pub expect_status: Option<Option<Vec<String>>>,
    pub expect_body: Option<Option<String>>,
    /// `Some(None)`: `null`, no tags.
    pub tags: Option<Option<Vec<String>>>,
    pub notify_after_failures: Option<i64>,
    /// `Some(None)`: `null`, never.
    pub auto_disable_after_failures: Option<Option<i64>>,
    /// `Some(None)`: `null`, the deployment's.
    pub notify_url: Option<Option<String>>,
    pub notify_format: Option<String>,
    /// The window the job fires in: RFC 3339; `Some(None)`: `null`, open.
    pub starts_at: Option<Option<String>>,
    pub ends_at: Option<Option<String>>,
    /// `Some(None)`: `null`, the deployment's behaviour.
    pub catchup_window_s: Option<Option<i64>>,
    pub overlap: Option<String>,
    pub jitter_s: Option<i64>,
    /// Names the request gave that are not writable fields (read-only or unknown).
    pub other_fields: Vec<String>,
}

/// A schedule to preview, checked.
#[derive(Clone, Debug)]
pub struct Preview {
    pub schedule: Schedule,
    pub jitter: Jitter,
}

/// A PATCH, checked and merged over the stored definition.
#[derive(Clone, Debug)]
pub struct JobPatch {
    pub spec: JobSpec,
    pub enabled: Option<bool>,
    /// The schedule type, text or timezone was given: the next run must be recomputed.
    pub schedule_changed: bool,
}

/// The draft's URL as the service hands it back after vetting the target: parsed, or
/// refused with a message (a rule of the URL's form, or the target check's).
pub type GivenUrl = Option<Result<TargetUrl, &'static str>>;

/// The draft's URLs as the service hands them back: the target, and the notice URL
/// (`Some(None)`: `null`, back to the deployment's).
#[derive(Clone, Debug, Default)]
pub struct GivenUrls {
    pub url: GivenUrl,
    pub notify_url: Option<GivenUrl>,
}

impl JobDraft {
    /// The URL the draft gives, parsed. The service vets the target (a check that may
    /// need DNS) and hands the result to `check_new` / `check_patch`, so that its error
    /// joins the other fields' errors.
    pub fn parse_urls(&self) -> GivenUrls {
        GivenUrls {
            url: self.url.as_deref().map(TargetUrl::parse),
            notify_url: self
                .notify_url
                .as_ref()
                .map(|u| u.as_deref().map(TargetUrl::parse)),
        }
    }

    /// A new job: every required field must be given; the others take their defaults.
    pub fn check_new(&self, urls: GivenUrls, now: DateTime<Utc>) -> Result<JobPatch, InputError> {
        self.check(None, urls, now)
    }

    /// A partial update: fields that are absent keep their stored value; the merged job
    /// must pass the same rules as a new one.
    pub fn check_patch(
        &self,
        current: &JobSpec,
        urls: GivenUrls,
        now: DateTime<Utc>,
    ) -> Result<JobPatch, InputError> {
        self.check(Some(current), urls, now)
    }

    fn check(
        &self,
        base: Option<&JobSpec>,
        urls: GivenUrls,
        now: DateTime<Utc>,
    ) -> Result<JobPatch, InputError> {
        let mut errs = self.refused_fields();
        let name = self.check_name(base, &mut errs);
        let (schedule, schedule_changed) = self.check_schedule(base, now, &mut errs);
        let notices = self.check_notices(base, urls.notify_url, &mut errs);
        let url = match urls.url {
            Some(given) => ok_or_add(given, "url", &mut errs),
            None => required(base.map(|b| b.request.url.clone()), "url", &mut errs),
        };
        let request = self.check_request(base, url, &mut errs);
        let max_retries = match self.max_retries {
            Some(n) => ok_or_add(MaxRetries::parse(n), "max_retries", &mut errs),
            None => Some(base.map_or(MaxRetries::DEFAULT, |b| b.max_retries)),
        };
        let failure_notify = self
            .failure_notify
            .unwrap_or(base.is_some_and(|b| b.failure_notify));
        let retry = self.check_retry(base, &mut errs);
        let success = self.check_success(base, &mut errs);
        let tags = self.check_tags(base, &mut errs);
        let alerts = self.check_alerts(base, &mut errs);
        let firing = self.check_firing(base, &mut errs);
        let notices = notices.zip(firing);
        let policies = retry.zip(success).zip(tags.zip(alerts.zip(notices)));
        match (name, schedule, request, max_retries, policies) {
            (
                Some(name),
                Some(schedule),
                Some(request),
                Some(max_retries),
                Some(((retry, success), (tags, (alerts, (notices, firing))))),
            ) if errs.is_empty() => Ok(JobPatch {
                spec: JobSpec {
                    name,
                    schedule,
                    request,
                    max_retries,
                    failure_notify,
                    retry,
                    success,
                    tags,
                    alerts,
                    notices,
                    firing,
                },
                enabled: self.enabled,
                schedule_changed,
            }),
            // Every `None` above recorded an error.
            _ => Err(InputError::Invalid(errs)),
        }
    }

    /// A schedule not yet saved (a preview): its type, text, timezone, window and jitter
    /// checked with the rules and messages of a create; any other field is not a known field.
    pub fn check_preview(&self, now: DateTime<Utc>) -> Result<Preview, InputError> {
        let mut errs = FieldErrors::default();
        for key in &self.other_fields {
            errs.add(key, "is not a known field");
        }
        let (schedule, _) = self.check_schedule(None, now, &mut errs);
        let jitter = match self.jitter_s {
            Some(n) => ok_or_add(Jitter::parse(n), "jitter_s", &mut errs),
            None => Some(Jitter::default()),
        };
        match (schedule, jitter) {
            (Some(schedule), Some(jitter)) if errs.is_empty() => Ok(Preview { schedule, jitter }),
            _ => Err(InputError::Invalid(errs)),
        }
    }

    fn refused_fields(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        for key in &self.other_fields {
            if READ_ONLY.contains(&key.as_str()) {
                errs.add(key, "is read-only");
            } else {
                errs.add(key, "is not a known field");
            }
        }
        errs
    }

    /// When runs fire and start: each field given replaces the stored one.
    fn check_firing(&self, base: Option<&JobSpec>, errs: &mut FieldErrors) -> Option<FiringPolicy> {
        let old = base.map(|b| b.firing).unwrap_or_default();
        let catch_up = match self.catchup_window_s {
            Some(Some(n)) => ok_or_add(CatchUpWindow::parse(n), "catchup_window_s", errs).map(Some),
            Some(None) => Some(None),
            None => Some(old.catch_up),
        };
        let overlap = match &self.overlap {
            Some(o) => ok_or_add(Overlap::parse(o), "overlap", errs),
            None => Some(old.overlap),
        };
        let jitter = match self.jitter_s {
            Some(n) => ok_or_add(Jitter::parse(n), "jitter_s", errs),
            None => Some(old.jitter),
        };
        Some(FiringPolicy {
            catch_up: catch_up?,
            overlap: overlap?,
            jitter: jitter?,
        })
    }

    /// The retry policy: each field given replaces the stored one (`null`: the default).
    fn check_retry(&self, base: Option<&JobSpec>, errs: &mut FieldErrors) -> Option<RetrySpec> {
        let old = base.map(|b| b.retry).unwrap_or_default();
        let backoff = match &self.retry_backoff {
            Some(b) => ok_or_add(Backoff::parse(b), "retry_backoff", errs),
            None => Some(old.backoff),
        };
        let ms = |given: &Option<Option<i64>>,
                  kept: Option<RetryMs>,
                  field: &str,
                  errs: &mut FieldErrors| {
            match given {
                Some(Some(n)) => ok_or_add(RetryMs::parse(*n), field, errs).map(Some),
                Some(None) => Some(None),
                None => Some(kept),
            }
        };
        let base_ms = ms(&self.retry_base_ms, old.base, "retry_base_ms", errs);
        let max_ms = ms(&self.retry_max_ms, old.max, "retry_max_ms", errs);
        ok_or_add(
            RetrySpec::new(backoff?, base_ms?, max_ms?),
            "retry_max_ms",
            errs,
        )
    }

    /// The success rule: `expect_status` (default `["2xx"]`) and `expect_body`.
    fn check_success(&self, base: Option<&JobSpec>, errs: &mut FieldErrors) -> Option<SuccessRule> {
        let old = base.map(|b| b.success.clone()).unwrap_or_default();
        let statuses = match &self.expect_status {
            Some(Some(given)) => {
                let parsed: Vec<_> = given.iter().map(|s| StatusMatch::parse(s)).collect();
                for e in parsed.iter().filter_map(|p| p.as_ref().err()) {
                    errs.add("expect_status", e.clone());
                }
                parsed.into_iter().collect::<Result<Vec<_>, _>>().ok()
            }
            Some(None) => Some(SuccessRule::default().statuses().to_vec()),
            None => Some(old.statuses().to_vec()),
        };
        let body = match &self.expect_body {
            Some(Some(b)) => ok_or_add(ExpectBody::parse(b).map(Some), "expect_body", errs),
            Some(None) => Some(None),
            None => Some(old.body().cloned()),
        };
        ok_or_add(SuccessRule::new(statuses?, body?), "expect_status", errs)
    }

    fn check_alerts(&self, base: Option<&JobSpec>, errs: &mut FieldErrors) -> Option<AlertPolicy> {
        let old = base.map(|b| b.alerts).unwrap_or_default();
        let notify_after = match self.notify_after_failures {
            Some(n) => ok_or_add(FailureCount::parse(n), "notify_after_failures", errs),
            None => Some(old.notify_after),
        };
        let disable_after = match self.auto_disable_after_failures {
            Some(Some(n)) => {
                ok_or_add(FailureCount::parse(n), "auto_disable_after_failures", errs).map(Some)
            }
            Some(None) => Some(None),
            None => Some(old.disable_after),
        };
        Some(AlertPolicy {
            notify_after: notify_after?,
            disable_after: disable_after?,
        })
    }

    fn check_notices(
        &self,
        base: Option<&JobSpec>,
        url: Option<GivenUrl>,
        errs: &mut FieldErrors,
    ) -> Option<NoticeSpec> {
        let old = base.map(|b| b.notices.clone()).unwrap_or_default();
        let url = match url {
            Some(Some(given)) => ok_or_add(given, "notify_url", errs).map(Some),
            Some(None) => Some(None),
            None => Some(old.url),
        };
        let format = match &self.notify_format {
            Some(f) => ok_or_add(NoticeFormat::parse(f), "notify_format", errs),
            None => Some(old.format),
        };
        Some(NoticeSpec {
            url: url?,
            format: format?,
        })
    }

    fn check_tags(&self, base: Option<&JobSpec>, errs: &mut FieldErrors) -> Option<Tags> {
        match &self.tags {
            Some(Some(given)) => Tags::parse(given)
                .map_err(|messages| messages.into_iter().for_each(|m| errs.add("tags", m)))
                .ok(),
            Some(None) => Some(Tags::default()),
            None => Some(base.map(|b| b.tags.clone()).unwrap_or_default()),
        }
    }

    fn check_name(&self, base: Option<&JobSpec>, errs: &mut FieldErrors) -> Option<JobName> {
        match &self.name {
            Some(n) => ok_or_add(JobName::parse(n), "name", errs),
            None => required(base.map(|b| b.name.clone()), "name", errs),
        }
    }

    /// The schedule, and whether it changed (always, for a new job).
    fn check_schedule(
        &self,
        base: Option<&JobSpec>,
        now: DateTime<Utc>,
        errs: &mut FieldErrors,
    ) -> (Option<Schedule>, bool) {
        let tz = match &self.timezone {
            Some(t) => ok_or_add(
                Timezone::parse(t).map_err(|e| e.message()),
                "timezone",
                errs,
            ),
            None => Some(base.map_or(Timezone::UTC, |b| b.schedule.timezone())),
        };
        let kind = match &self.schedule_type {
            Some(k) => ok_or_add(
                k.parse::<ScheduleType>()
                    .map_err(|_| "is not included in the list (cron, interval, once)"),
                "schedule_type",
                errs,
            ),
            None => required(base.map(|b| b.schedule.kind()), "schedule_type", errs),
        };
        let text = match &self.schedule {
            Some(s) => Some(s.clone()),
            None => required(base.map(|b| b.schedule.text().to_owned()), "schedule", errs),
        };
        let changed = base.is_none()
            || self.schedule_type.is_some()
            || self.schedule.is_some()
            || self.timezone.is_some();
        let window = self.check_window(base, now, errs);
        let schedule = match (kind, text) {
            // With a bad timezone the expression is still checked (in UTC) so that every
            // bad field is reported at once.
            (Some(kind), Some(text)) if changed => {
                new_schedule(kind, &text, tz.unwrap_or(Timezone::UTC), now, errs)
            }
            (Some(_), Some(_)) => base.map(|b| b.schedule.clone()),
            _ => None,
        };
        let changed = changed || self.starts_at.is_some() || self.ends_at.is_some();
        (schedule.zip(window).map(|(s, w)| s.with_window(w)), changed)
    }

    /// `starts_at` and `ends_at`: each given replaces the stored one (`null`: open).
    fn check_window(
        &self,
        base: Option<&JobSpec>,
        now: DateTime<Utc>,
        errs: &mut FieldErrors,
    ) -> Option<Window> {
        let old = base.map(|b| b.schedule.window()).unwrap_or_default();
        let mut time = |given: &Option<Option<String>>, kept, field: &str| match given {
            Some(Some(text)) => match DateTime::parse_from_rfc3339(text) {
                Ok(t) => Some(Some(t.with_timezone(&Utc))),
                Err(_) => errs.refuse(
                    field,
                    "must be an ISO 8601 timestamp (2026-01-31T09:00:00Z)",
                ),
            },
            Some(None) => Some(None),
            None => Some(kept),
        };
        let starts_at = time(&self.starts_at, old.starts_at, "starts_at");
        let ends_at = time(&self.ends_at, old.ends_at, "ends_at");
        let (starts_at, ends_at) = (starts_at?, ends_at?);
        if let (Some(s), Some(e)) = (starts_at, ends_at)
            && e <= s
        {
            return errs.refuse("ends_at", "must be after starts_at");
        }
        if matches!(self.ends_at, Some(Some(_))) && ends_at.is_some_and(|e| e <= now) {
            return errs.refuse("ends_at", "must be in the future");
        }
        Some(Window { starts_at, ends_at })
    }

    fn check_request(
        &self,
        base: Option<&JobSpec>,
        url: Option<TargetUrl>,
        errs: &mut FieldErrors,
    ) -> Option<WebhookSpec> {
        let old = base.map(|b| &b.request);
        let method = match &self.method {
            Some(m) => ok_or_add(HttpMethod::parse(m), "method", errs),
            None => Some(old.map_or(HttpMethod::Get, |r| r.method)),
        };
        let headers = match &self.headers {
            Some(h) => HeaderList::parse(h.clone())
                .map_err(|messages| messages.into_iter().for_each(|m| errs.add("headers", m)))
                .ok(),
            None => Some(old.map(|r| r.headers.clone()).unwrap_or_default()),
        };
        let body = match &self.body {
            Some(Some(b)) => ok_or_add(Body::parse(b.clone()).map(Some), "body", errs),
            Some(None) => Some(None),
            None => Some(old.and_then(|r| r.body.clone())),
        };
        if let (Some(HttpMethod::Head), Some(Some(_))) = (method, &body) {
            errs.add("body", "must be empty for HEAD requests");
        }
        let timeout = match self.timeout_ms {
            Some(t) => ok_or_add(TimeoutMs::parse(t), "timeout_ms", errs),
            None => Some(old.map_or(TimeoutMs::DEFAULT, |r| r.timeout)),
        };
        Some(WebhookSpec {
            url: url?,
            method: method?,
            headers: headers?,
            body: body?,
            timeout: timeout?,
        })
    }
}

/// A schedule given now: valid, and for `once`, in the future.
fn new_schedule(
    kind: ScheduleType,
    text: &str,
    tz: Timezone,
    now: DateTime<Utc>,
    errs: &mut FieldErrors,
) -> Option<Schedule> {
    match Schedule::parse(kind, text, tz) {
        Ok(s) if kind == ScheduleType::Once && s.first_run(now).is_none() => {
            errs.add("schedule", "must be in the future");
            None
        }
        Ok(s) => Some(s),
        Err(e) => {
            errs.add("schedule", e.message());
            None
        }
    }
}

/// A new job: the definition and whether it starts enabled (default true), without the
/// target check that needs DNS (the service's).
pub fn parse_new_job(draft: &JobDraft, now: DateTime<Utc>) -> Result<(JobSpec, bool), InputError> {
    let patch = draft.check_new(draft.parse_urls(), now)?;
    Ok((patch.spec, patch.enabled.unwrap_or(true)))
}

/// A partial update merged over `current` (see [`JobDraft::check_patch`]).
pub fn parse_job_patch(
    draft: &JobDraft,
    current: &JobSpec,
    now: DateTime<Utc>,
) -> Result<JobPatch, InputError> {
    draft.check_patch(current, draft.parse_urls(), now)
}

fn ok_or_add<T>(r: Result<T, &'static str>, field: &str, errs: &mut FieldErrors) -> Option<T> {
    r.map_err(|m| errs.add(field, m)).ok()
}

fn required<T>(v: Option<T>, field: &str, errs: &mut FieldErrors) -> Option<T> {
    if v.is_none() {
        errs.add(field, "can't be blank");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()
    }
    fn obj(v: Value) -> JobDraft {
        crate::api::read_job_draft(v.as_object().unwrap()).unwrap()
    }
    fn quickstart() -> JobDraft {
        obj(json!({
            "name": "Health Check",
            "schedule_type": "interval",
            "schedule": "every_5m",
            "url": "https://example.com/api/health",
            "method": "GET"
        }))
    }
    fn invalid(r: Result<impl std::fmt::Debug, InputError>) -> FieldErrors {
        match r {
            Err(InputError::Invalid(e)) => e,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_quickstart_body_parses_with_the_published_defaults() {
        let (spec, enabled) = parse_new_job(&quickstart(), now()).unwrap();
        assert!(enabled);
        assert_eq!(spec.name.as_str(), "Health Check");
        assert_eq!(spec.schedule.timezone(), Timezone::UTC);
        assert_eq!(spec.request.method, HttpMethod::Get);
        assert!(spec.request.headers.is_empty());
        assert_eq!(spec.request.body, None);
        assert_eq!(spec.request.timeout.get(), 30_000);
        assert_eq!(spec.max_retries.get(), 3);
        assert!(!spec.failure_notify);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let e = invalid(parse_new_job(
            &obj(json!({
                "name": " ",
                "schedule_type": "cron",
                "schedule": "61 * * * *",
                "timezone": "Mars/Olympus",
                "url": "ftp://x",
                "method": "FETCH",
                "timeout_ms": 5,
                "max_retries": 11,
                "colour": "blue",
                "id": "x"
            })),
            now(),
        ));
        let fields: Vec<&str> = e.fields().collect();
        assert_eq!(
            fields,
            [
                "colour",
                "id",
                "max_retries",
                "method",
                "name",
                "schedule",
                "timeout_ms",
                "timezone",
                "url"
            ]
        );
        assert_eq!(
            e.get("schedule").unwrap(),
            ["is not a valid cron expression"]
        );
        assert_eq!(e.get("timezone").unwrap(), ["is not a valid IANA timezone"]);
        assert_eq!(e.get("method").unwrap(), ["is invalid"]);
        assert_eq!(e.get("colour").unwrap(), ["is not a known field"]);
    }

    #[test]
    fn missing_required_fields_cant_be_blank() {
        let e = invalid(parse_new_job(&JobDraft::default(), now()));
        for f in ["name", "schedule_type", "schedule", "url"] {
            assert_eq!(e.get(f).unwrap(), ["can't be blank"], "{f}");
        }
    }

    #[test]
    fn a_once_job_must_be_in_the_future() {
        let mut b = quickstart();
        b.schedule_type = Some("once".into());
        b.schedule = Some("2025-01-15T09:59:59Z".into());
        let e = invalid(parse_new_job(&b, now()));
        assert_eq!(e.get("schedule").unwrap(), ["must be in the future"]);
        b.schedule = Some("2025-01-15T10:00:01Z".into());
        assert!(parse_new_job(&b, now()).is_ok());
    }

    #[test]
    fn a_patch_keeps_absent_fields_and_revalidates_the_merge() {
        let (spec, _) = parse_new_job(&quickstart(), now()).unwrap();
        let p = parse_job_patch(&obj(json!({"name": "Renamed"})), &spec, now()).unwrap();
        assert_eq!(p.spec.name.as_str(), "Renamed");
        assert_eq!(p.spec.schedule.text(), "every_5m");
        assert!(!p.schedule_changed);
        // Changing only the type re-checks the stored expression against the new type.
        let e = invalid(parse_job_patch(
            &obj(json!({"schedule_type": "cron"})),
            &spec,
            now(),
        ));
        assert_eq!(
            e.get("schedule").unwrap(),
            ["is not a valid cron expression"]
        );
        let p =
            parse_job_patch(&obj(json!({"body": "x", "method": "POST"})), &spec, now()).unwrap();
        assert_eq!(p.spec.request.body.as_ref().unwrap().as_str(), "x");
        let p = parse_job_patch(&obj(json!({"body": null})), &p.spec, now()).unwrap();
        assert_eq!(p.spec.request.body, None);
    }

    #[test]
    fn a_head_request_carries_no_body() {
        let mut b = quickstart();
        b.method = Some("HEAD".into());
        b.body = Some(Some("x".into()));
        let e = invalid(parse_new_job(&b, now()));
        assert_eq!(e.get("body").unwrap(), ["must be empty for HEAD requests"]);
    }
}
