//! Query strings at the HTTP edge: paging (`limit`, `cursor`) and the list filters, parsed
//! into typed values with every bad parameter reported at once (422, `details` by name).
//! Unknown parameters are ignored.

use chrono::{DateTime, Utc};

use super::ApiError;
use super::views::decode_cursor;
use crate::domain::{
    AuditFilter, ExecutionFilter, FieldErrors, JobFilter, LastStatus, RunStatus, Tag, Trigger,
};
use crate::ports::PageRequest;
use crate::schedule::ScheduleType;

/// A query string as name/value pairs, repeated names kept (`?tag=a&tag=b`).
pub type Pairs = Vec<(String, String)>;

fn first<'a>(q: &'a Pairs, name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `?limit=` (1..100) and `?cursor=`; `default_limit` applies when no limit is given.
pub fn page_request(
    q: &Pairs,
    default_limit: Option<u32>,
    errors: &mut FieldErrors,
) -> PageRequest<uuid::Uuid> {
    let limit = match first(q, "limit") {
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Some(n),
            _ => {
                errors.add("limit", "must be an integer between 1 and 100");
                None
            }
        },
        None => default_limit,
    };
    let after = first(q, "cursor").and_then(|c| {
        let decoded = decode_cursor(c);
        if decoded.is_none() {
            errors.add("cursor", "is invalid");
        }
        decoded
    });
    // A cursor without a limit pages with the default page size.
    let limit = limit.or(after.map(|_| 20));
    PageRequest { limit, after }
}

/// The job list's filters: `tag` (repeatable: jobs with all of them), `enabled`,
/// `last_status` (`success`, `failed`, `none`), `schedule_type`, `q` (in the name).
pub fn job_filter(q: &Pairs, errors: &mut FieldErrors) -> JobFilter {
    let mut tags = Vec::new();
    for (_, v) in q.iter().filter(|(k, _)| k == "tag") {
        match Tag::parse(v) {
            Ok(t) => tags.push(t),
            Err(m) => errors.add("tag", m),
        }
    }
    let enabled = first(q, "enabled").and_then(|v| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => errors.refuse("enabled", "must be true or false"),
    });
    let last_status = first(q, "last_status").and_then(|v| match v {
        "none" => Some(LastStatus::Never),
        // A job's last run is never `skipped`.
        _ => match RunStatus::parse(v).filter(|s| *s != RunStatus::Skipped) {
            Some(s) => Some(LastStatus::Is(s)),
            None => errors.refuse(
                "last_status",
                "is not included in the list (success, failed, none)",
            ),
        },
    });
    let schedule_type = first(q, "schedule_type").and_then(|v| match v.parse::<ScheduleType>() {
        Ok(k) => Some(k),
        Err(_) => errors.refuse(
            "schedule_type",
            "is not included in the list (cron, interval, once)",
        ),
    });
    let name = first(q, "q").and_then(|v| match v.chars().count() {
        0 => None,
        1..=200 => Some(v.to_owned()),
        _ => errors.refuse("q", "is too long (maximum is 200 characters)"),
    });
    JobFilter {
        tags,
        enabled,
        last_status,
        schedule_type,
        name,
    }
}

/// The execution list's filters: `status`, `trigger`, and a range of `started_at`
/// (`from` inclusive, `until` exclusive).
pub fn execution_filter(q: &Pairs, errors: &mut FieldErrors) -> ExecutionFilter {
    let status = first(q, "status").and_then(|v| match RunStatus::parse(v) {
        Some(s) => Some(s),
        None => errors.refuse(
            "status",
            "is not included in the list (success, failed, skipped)",
        ),
    });
    let trigger = first(q, "trigger").and_then(|v| match Trigger::parse(v) {
        Some(t) => Some(t),
        None => errors.refuse("trigger", "is not included in the list (schedule, manual)"),
    });
    let range = time_range(q, errors);
    ExecutionFilter {
        status,
        trigger,
        from: range.from,
        until: range.until,
    }
}

/// `from` (inclusive) and `until` (exclusive), RFC 3339, `until` after `from`.
struct TimeRange {
    from: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

fn time_range(q: &Pairs, errors: &mut FieldErrors) -> TimeRange {
    let time = |name: &str, errors: &mut FieldErrors| {
        first(q, name).and_then(|v| match DateTime::parse_from_rfc3339(v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => errors.refuse(name, "must be an ISO 8601 timestamp (2026-01-31T09:00:00Z)"),
        })
    };
    let from = time("from", errors);
    let until = time("until", errors);
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        errors.add("until", "must be after from");
    }
    TimeRange { from, until }
}

/// The audit log's filters: `job_id`, and a range of entry times (`from` inclusive,
/// `until` exclusive).
pub fn audit_filter(q: &Pairs, errors: &mut FieldErrors) -> AuditFilter {
    let job_id = first(q, "job_id").and_then(|v| match v.parse() {
        Ok(id) => Some(id),
        Err(_) => errors.refuse("job_id", "is not a job id"),
    });
    let range = time_range(q, errors);
    AuditFilter {
        job_id,
        from: range.from,
        until: range.until,
    }
}

/// All of a list request's parameters, or every bad one at once.
pub fn list_params<F>(
    q: &Pairs,
    default_limit: Option<u32>,
    filter: impl Fn(&Pairs, &mut FieldErrors) -> F,
) -> Result<(PageRequest<uuid::Uuid>, F), ApiError> {
    let mut errors = FieldErrors::default();
    let page = page_request(q, default_limit, &mut errors);
    let filter = filter(q, &mut errors);
    if errors.is_empty() {
        Ok((page, filter))
    } else {
        Err(ApiError::Validation(errors))
    }
}
