//! Parses a job's JSON (create and PATCH) into a `JobSpec`, collecting every problem of
//! every field. Wrong JSON types are an `InputError::Types` (400 "Invalid JSON"); values
//! that break a rule, unknown fields and missing fields are an `InputError::Invalid` (422).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::job::{
    Body, HeaderList, HttpMethod, JobName, JobSpec, MaxRetries, TargetUrl, TimeoutMs, WebhookSpec,
};
use crate::schedule::{Schedule, ScheduleType, Timezone};

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

const WRITABLE: [&str; 12] = [
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
];
const READ_ONLY: [&str; 6] = [
    "id",
    "last_status",
    "last_run_at",
    "next_run_at",
    "created_at",
    "updated_at",
];

/// A PATCH, checked and merged over the stored definition.
#[derive(Clone, Debug)]
pub struct JobPatch {
    pub spec: JobSpec,
    pub enabled: Option<bool>,
    /// The schedule type, text or timezone was given: the next run must be recomputed.
    pub schedule_changed: bool,
}

/// A new job: the definition and whether it starts enabled (default true).
pub fn parse_new_job(
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<(JobSpec, bool), InputError> {
    let parsed = parse(body, None, now)?;
    Ok((parsed.spec, parsed.enabled.unwrap_or(true)))
}

/// A partial update: fields that are absent keep their stored value; the merged job must
/// pass the same rules as a new one.
pub fn parse_job_patch(
    body: &Map<String, Value>,
    current: &JobSpec,
    now: DateTime<Utc>,
) -> Result<JobPatch, InputError> {
    parse(body, Some(current), now)
}

fn parse(
    body: &Map<String, Value>,
    base: Option<&JobSpec>,
    now: DateTime<Utc>,
) -> Result<JobPatch, InputError> {
    let mut r = Reader {
        map: body,
        types: FieldErrors::default(),
        invalid: FieldErrors::default(),
    };
    for key in body.keys() {
        if READ_ONLY.contains(&key.as_str()) {
            r.invalid.add(key, "is read-only");
        } else if !WRITABLE.contains(&key.as_str()) {
            r.invalid.add(key, "is not a known field");
        }
    }

    let name = r.string("name");
    let schedule_type = r.string("schedule_type");
    let schedule = r.string("schedule");
    let timezone = r.string("timezone");
    let url = r.string("url");
    let method = r.string("method");
    let headers = r.string_map("headers");
    let body_text = r.nullable_string("body");
    let timeout_ms = r.integer("timeout_ms");
    let max_retries = r.integer("max_retries");
    let enabled = r.boolean("enabled");
    let failure_notify = r.boolean("failure_notify");
    if !r.types.is_empty() {
        return Err(InputError::Types(r.types));
    }
    let mut errs = r.invalid;

    let name = match name {
        Some(n) => ok_or_add(JobName::parse(n), "name", &mut errs),
        None => required(base.map(|b| b.name.clone()), "name", &mut errs),
    };

    let tz = match timezone {
        Some(t) => ok_or_add(
            Timezone::parse(t).map_err(|e| e.message()),
            "timezone",
            &mut errs,
        ),
        None => Some(base.map_or(Timezone::UTC, |b| b.schedule.timezone())),
    };
    let kind = match schedule_type {
        Some(k) => ok_or_add(
            k.parse::<ScheduleType>()
                .map_err(|_| "is not included in the list (cron, interval, once)"),
            "schedule_type",
            &mut errs,
        ),
        None => required(base.map(|b| b.schedule.kind()), "schedule_type", &mut errs),
    };
    let schedule_text = match schedule {
        Some(s) => Some(s.to_owned()),
        None => required(
            base.map(|b| b.schedule.text().to_owned()),
            "schedule",
            &mut errs,
        ),
    };
    let schedule_changed =
        base.is_none() || schedule_type.is_some() || schedule.is_some() || timezone.is_some();
    let schedule = match (kind, schedule_text) {
        (Some(kind), Some(text)) if schedule_changed => {
            // With a bad timezone the expression is still checked (in UTC) so that every
            // bad field is reported at once.
            match Schedule::parse(kind, &text, tz.unwrap_or(Timezone::UTC)) {
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
        (Some(_), Some(_)) => base.map(|b| b.schedule.clone()),
        _ => None,
    };

    let url = match url {
        Some(u) => ok_or_add(TargetUrl::parse(u), "url", &mut errs),
        None => required(base.map(|b| b.request.url.clone()), "url", &mut errs),
    };
    let method = match method {
        Some(m) => ok_or_add(HttpMethod::parse(m), "method", &mut errs),
        None => Some(base.map_or(HttpMethod::Get, |b| b.request.method)),
    };
    let headers = match headers {
        Some(h) => match HeaderList::parse(h) {
            Ok(h) => Some(h),
            Err(messages) => {
                for m in messages {
                    errs.add("headers", m);
                }
                None
            }
        },
        None => Some(base.map(|b| b.request.headers.clone()).unwrap_or_default()),
    };
    let body_value = match body_text {
        Some(Some(b)) => ok_or_add(Body::parse(b.to_owned()).map(Some), "body", &mut errs),
        Some(None) => Some(None),
        None => Some(base.and_then(|b| b.request.body.clone())),
    };
    if let (Some(HttpMethod::Head), Some(Some(_))) = (method, &body_value) {
        errs.add("body", "must be empty for HEAD requests");
    }
    let timeout = match timeout_ms {
        Some(t) => ok_or_add(TimeoutMs::parse(t), "timeout_ms", &mut errs),
        None => Some(base.map_or(TimeoutMs::DEFAULT, |b| b.request.timeout)),
    };
    let max_retries = match max_retries {
        Some(n) => ok_or_add(MaxRetries::parse(n), "max_retries", &mut errs),
        None => Some(base.map_or(MaxRetries::DEFAULT, |b| b.max_retries)),
    };
    let failure_notify = failure_notify.unwrap_or(base.is_some_and(|b| b.failure_notify));

    if !errs.is_empty() {
        return Err(InputError::Invalid(errs));
    }
    // Every `None` above recorded an error, so all are present here.
    let (
        Some(name),
        Some(schedule),
        Some(url),
        Some(method),
        Some(headers),
        Some(body),
        Some(timeout),
        Some(max_retries),
    ) = (
        name,
        schedule,
        url,
        method,
        headers,
        body_value,
        timeout,
        max_retries,
    )
    else {
        unreachable!("a missing field always records a validation error")
    };
    Ok(JobPatch {
        spec: JobSpec {
            name,
            schedule,
            request: WebhookSpec {
                url,
                method,
                headers,
                body,
                timeout,
            },
            max_retries,
            failure_notify,
        },
        enabled,
        schedule_changed,
    })
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

struct Reader<'a> {
    map: &'a Map<String, Value>,
    types: FieldErrors,
    invalid: FieldErrors,
}

impl<'a> Reader<'a> {
    fn string(&mut self, f: &str) -> Option<&'a str> {
        match self.map.get(f)? {
            Value::String(s) => Some(s),
            _ => {
                self.types.add(f, "must be a string");
                None
            }
        }
    }
    fn nullable_string(&mut self, f: &str) -> Option<Option<&'a str>> {
        match self.map.get(f)? {
            Value::String(s) => Some(Some(s)),
            Value::Null => Some(None),
            _ => {
                self.types.add(f, "must be a string or null");
                None
            }
        }
    }
    fn integer(&mut self, f: &str) -> Option<i64> {
        match self.map.get(f)? {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            Value::Number(n) if n.is_u64() => Some(i64::MAX),
            _ => {
                self.types.add(f, "must be an integer");
                None
            }
        }
    }
    fn boolean(&mut self, f: &str) -> Option<bool> {
        match self.map.get(f)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.types.add(f, "must be a boolean");
                None
            }
        }
    }
    fn string_map(&mut self, f: &str) -> Option<Vec<(String, String)>> {
        match self.map.get(f)? {
            Value::Object(m) => {
                let mut out = Vec::with_capacity(m.len());
                for (k, v) in m {
                    match v {
                        Value::String(s) => out.push((k.clone(), s.clone())),
                        _ => {
                            self.types.add(f, format!("{k} must be a string"));
                        }
                    }
                }
                Some(out)
            }
            _ => {
                self.types.add(f, "must be an object of strings");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()
    }
    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }
    fn quickstart() -> Map<String, Value> {
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
        let e = invalid(parse_new_job(&Map::new(), now()));
        for f in ["name", "schedule_type", "schedule", "url"] {
            assert_eq!(e.get(f).unwrap(), ["can't be blank"], "{f}");
        }
    }

    #[test]
    fn wrong_json_types_are_type_errors() {
        let mut b = quickstart();
        b.insert("timeout_ms".into(), json!("30000"));
        b.insert("enabled".into(), json!(1));
        b.insert("headers".into(), json!({"X-A": 1}));
        match parse_new_job(&b, now()) {
            Err(InputError::Types(e)) => {
                assert_eq!(e.get("timeout_ms").unwrap(), ["must be an integer"]);
                assert_eq!(e.get("enabled").unwrap(), ["must be a boolean"]);
                assert_eq!(e.get("headers").unwrap(), ["X-A must be a string"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_once_job_must_be_in_the_future() {
        let mut b = quickstart();
        b.insert("schedule_type".into(), json!("once"));
        b.insert("schedule".into(), json!("2025-01-15T09:59:59Z"));
        let e = invalid(parse_new_job(&b, now()));
        assert_eq!(e.get("schedule").unwrap(), ["must be in the future"]);
        b.insert("schedule".into(), json!("2025-01-15T10:00:01Z"));
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
        b.insert("method".into(), json!("HEAD"));
        b.insert("body".into(), json!("x"));
        let e = invalid(parse_new_job(&b, now()));
        assert_eq!(e.get("body").unwrap(), ["must be empty for HEAD requests"]);
    }
}
