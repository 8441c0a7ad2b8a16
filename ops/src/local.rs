//! A local stand-in for what AWS does around the hosted functions, for trying the hosted
//! path on an emulator that never fires schedules (moto): `krafter aws tick` fires due
//! EventBridge schedules into their SQS target as EventBridge Scheduler would, and hands
//! queued messages to the executor function as Lambda's SQS event source would.

use std::str::FromStr;

use aws_sdk_scheduler::types::ScheduleState;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use krafter_shared::domain::time::format;
use krafter_shared::hosted::AwsClients;
use krafter_shared::ports::{StoreError, StoreResult};
use tracing::{info, warn};

/// The fire times of one EventBridge expression in `(after, until]`, in `timezone`:
/// `cron(...)` evaluated as the Quartz expression it is (with a seconds field), `rate(...)`
/// counted from `start`, `at(...)` once.
pub fn fire_times(
    expression: &str,
    timezone: &str,
    start: Option<DateTime<Utc>>,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    let tz = chrono_tz::Tz::from_str(timezone).map_err(|e| e.to_string())?;
    let inner = |name: &str| {
        expression
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
    };
    let mut times = Vec::new();
    if let Some(fields) = inner("cron") {
        let schedule =
            cron::Schedule::from_str(&format!("0 {fields}")).map_err(|e| e.to_string())?;
        for t in schedule.after(&after.with_timezone(&tz)) {
            let t = t.with_timezone(&Utc);
            if t > until {
                break;
            }
            if t > after && !times.contains(&t) {
                times.push(t);
            }
        }
    } else if let Some(rate) = inner("rate") {
        let (n, unit) = rate.split_once(' ').ok_or("rate(N unit)")?;
        let n: i64 = n.parse().map_err(|_| "rate(N unit)")?;
        let period = match unit.trim_end_matches('s') {
            "minute" => Duration::minutes(n),
            "hour" => Duration::hours(n),
            "day" => Duration::days(n),
            other => return Err(format!("unknown rate unit {other}")),
        };
        let mut t = start.unwrap_or(after);
        if t <= after {
            let behind = (after - t).num_seconds() / period.num_seconds().max(1) + 1;
            t += period * behind as i32;
        }
        while t <= until {
            times.push(t);
            t += period;
        }
    } else if let Some(at) = inner("at") {
        let local =
            NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S").map_err(|e| e.to_string())?;
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            let t = t.with_timezone(&Utc);
            if t > after && t <= until {
                times.push(t);
            }
        }
    } else {
        return Err(format!("not an EventBridge expression: {expression}"));
    }
    Ok(times)
}

/// Fires every enabled schedule of `group` due in `(after, until]` into its target queue,
/// with the scheduled time filled into its input. Returns how many invocations were sent.
pub async fn fire_due_schedules(
    clients: &AwsClients,
    group: &str,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut fired = 0;
    let mut token = None;
    loop {
        let page = clients
            .scheduler
            .list_schedules()
            .group_name(group)
            .set_next_token(token)
            .send()
            .await
            .map_err(StoreError::backend)?;
        for summary in page.schedules() {
            let Some(name) = summary.name() else { continue };
            if summary.state() == Some(&ScheduleState::Disabled) {
                continue;
            }
            fired += fire_schedule(clients, group, name, after, until).await?;
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok(fired),
        }
    }
}

/// Fires one schedule's times due in `(after, until]`. Returns how many.
async fn fire_schedule(
    clients: &AwsClients,
    group: &str,
    name: &str,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<usize> {
    let Ok(s) = clients
        .scheduler
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
    else {
        return Ok(0); // deleted meanwhile
    };
    if s.state == Some(ScheduleState::Disabled) {
        return Ok(0);
    }
    let Some(target) = s.target.as_ref() else {
        return Ok(0);
    };
    let times = match due_times(&s, after, until) {
        Ok(t) => t,
        Err(e) => {
            warn!(schedule = name, error = %e, "schedule skipped: expression not understood");
            return Ok(0);
        }
    };
    if times.is_empty() {
        return Ok(0);
    }
    let queue_name = target.arn.rsplit(':').next().unwrap_or_default();
    let queue_url = clients
        .sqs
        .get_queue_url()
        .queue_name(queue_name)
        .send()
        .await
        .map_err(StoreError::backend)?
        .queue_url
        .unwrap_or_default();
    for t in &times {
        let input = target
            .input
            .as_deref()
            .unwrap_or("{}")
            .replace("<aws.scheduler.scheduled-time>", &format(*t));
        clients
            .sqs
            .send_message()
            .queue_url(&queue_url)
            .message_body(input)
            .send()
            .await
            .map_err(StoreError::backend)?;
        info!(schedule = name, scheduled_at = %format(*t), "schedule fired");
    }
    Ok(times.len())
}

/// The times a schedule fires in `(after, until]`, as EventBridge would: never before the
/// schedule existed (a first tick looks back a whole period, and a schedule made just after
/// a minute must not fire that minute), nothing before its StartDate, nothing from its
/// EndDate on.
fn due_times(
    s: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    let at = |d: &aws_sdk_scheduler::primitives::DateTime| DateTime::from_timestamp(d.secs(), 0);
    let expression = s.schedule_expression.as_deref().ok_or("no expression")?;
    let timezone = s.schedule_expression_timezone.as_deref().unwrap_or("UTC");
    let start = s.start_date.as_ref().and_then(at);
    let end = s.end_date.as_ref().and_then(at);
    let after = s
        .creation_date
        .as_ref()
        .and_then(at)
        .map_or(after, |created| created.max(after));
    let after = start.map_or(after, |st| after.max(st - Duration::seconds(1)));
    let times = fire_times(expression, timezone, start, after, until)?;
    Ok(times
        .into_iter()
        .filter(|t| end.is_none_or(|e| *t < e))
        .collect())
}

/// Takes up to 10 visible messages from the queue and invokes the executor function with
/// them as an SQS event (at `invoke_url`, e.g. `cargo lambda watch`'s invoke endpoint), then
/// deletes the ones it did not report as failed. Returns (delivered, failed).
pub async fn deliver_queued(
    clients: &AwsClients,
    queue_url: &str,
    queue_arn: &str,
    invoke_url: &str,
    http: &reqwest::Client,
) -> StoreResult<(usize, usize)> {
    let out = clients
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .map_err(StoreError::backend)?;
    let messages = out.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok((0, 0));
    }
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
                "attributes": {}, "messageAttributes": {},
            })
        })
        .collect();
    let response = http
        .post(invoke_url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "Records": records }).to_string())
        .send()
        .await
        .map_err(StoreError::backend)?;
    let ok = response.status().is_success();
    let body: serde_json::Value = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let failed: Vec<String> = if ok {
        body["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
            .collect()
    } else {
        // The whole batch failed: every message comes again after its visibility timeout.
        messages
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect()
    };
    for m in &messages {
        if m.message_id.as_ref().is_some_and(|id| failed.contains(id)) {
            continue;
        }
        clients
            .sqs
            .delete_message()
            .queue_url(queue_url)
            .set_receipt_handle(m.receipt_handle.clone())
            .send()
            .await
            .map_err(StoreError::backend)?;
    }
    Ok((messages.len(), failed.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn cron_fire_times_follow_the_schedules_timezone_and_day_rules() {
        // Weekdays at 09:30 in Berlin (UTC+1 in January): SUN=1, so 2-6 is MON-FRI.
        let times = fire_times(
            "cron(30 9 ? * 2-6 *)",
            "Europe/Berlin",
            None,
            t("2025-01-17T00:00:00Z"), // a Friday
            t("2025-01-21T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            times,
            vec![t("2025-01-17T08:30:00Z"), t("2025-01-20T08:30:00Z")]
        );
    }

    #[test]
    fn rate_fire_times_count_from_the_start_date() {
        let times = fire_times(
            "rate(5 minutes)",
            "UTC",
            Some(t("2025-01-15T10:05:00Z")),
            t("2025-01-15T10:06:00Z"),
            t("2025-01-15T10:20:00Z"),
        )
        .unwrap();
        assert_eq!(
            times,
            vec![
                t("2025-01-15T10:10:00Z"),
                t("2025-01-15T10:15:00Z"),
                t("2025-01-15T10:20:00Z")
            ]
        );
    }

    #[test]
    fn an_at_schedule_fires_once_at_its_local_time() {
        let window = |a, b| {
            fire_times(
                "at(2025-07-01T12:00:00)",
                "America/New_York",
                None,
                t(a),
                t(b),
            )
        };
        assert_eq!(
            window("2025-07-01T00:00:00Z", "2025-07-02T00:00:00Z").unwrap(),
            vec![t("2025-07-01T16:00:00Z")]
        );
        assert!(
            window("2025-07-01T16:00:00Z", "2025-07-02T00:00:00Z")
                .unwrap()
                .is_empty()
        );
        assert!(
            fire_times(
                "every(5)",
                "UTC",
                None,
                t("2025-07-01T00:00:00Z"),
                t("2025-07-02T00:00:00Z")
            )
            .is_err()
        );
    }
}
