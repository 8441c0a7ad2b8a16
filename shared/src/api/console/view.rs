//! What the console's pages show, made from the REST API's JSON, and the templates that
//! render them (askama: checked at compile time, every value HTML-escaped).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::error;

use super::assets::{CSS, JS};
use super::fields::{FIELDS, Kind, shown};
use crate::schedule::words::describe;

/// Renders a page, or (if a template fails, which it should not) a plain 500.
pub trait Page: Template {
    fn html(&self) -> Response {
        match self.render() {
            Ok(body) => Html(body).into_response(),
            Err(e) => {
                error!(error = %e, "a console page did not render");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
            }
        }
    }
}

impl<T: Template> Page for T {}

/// The frame of every page: assets, and who is signed in.
pub struct Chrome {
    /// The path prefix of every link (`KRAFTER_CONSOLE_BASE`: `""`, or `/a/b`).
    pub base: String,
    pub css: &'static str,
    pub js: &'static str,
    pub nav: Option<Nav>,
}

pub struct Nav {
    pub team: String,
    pub scope: &'static str,
}

impl Chrome {
    pub fn signed_out(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            css: &CSS.name,
            js: &JS.name,
            nav: None,
        }
    }

    pub fn for_team(base: &str, team: &str, can_write: bool) -> Self {
        let scope = if can_write { "cron:write" } else { "cron:read" };
        Self {
            nav: Some(Nav {
                team: team.to_owned(),
                scope,
            }),
            ..Self::signed_out(base)
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignIn {
    pub chrome: Chrome,
    pub error: Option<String>,
}

impl SignIn {
    pub fn new(base: &str, error: Option<String>) -> Self {
        Self {
            chrome: Chrome::signed_out(base),
            error,
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub chrome: Chrome,
    pub title: String,
    pub text: String,
}

impl Message {
    pub fn new(base: &str, title: &str, text: &str) -> Self {
        Self {
            chrome: Chrome::signed_out(base),
            title: title.to_owned(),
            text: text.to_owned(),
        }
    }
}

/// A moment, in UTC (for the script that shows it in the viewer's time) and in a zone.
pub struct When {
    pub utc: String,
    pub shown: String,
    /// The zone `shown` is in (the script adds the viewer's time when theirs differs).
    pub zone: String,
}

impl When {
    pub fn of(value: &Value, zone: &str) -> Option<Self> {
        let at: DateTime<Utc> = value.as_str()?.parse().ok()?;
        let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
        Some(Self {
            utc: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            shown: at
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            zone: tz.name().to_owned(),
        })
    }
}

/// A job's state in words, and the class that colours it.
pub struct State {
    pub label: String,
    pub class: &'static str,
}

impl State {
    pub fn of(job: &Value) -> Self {
        let reason = job["paused_reason"].as_str();
        let (label, class) = match (job["enabled"].as_bool(), reason) {
            (Some(true), _) => ("enabled".to_owned(), "ok"),
            (_, Some(r)) if r.starts_with("auto-disabled") => {
                (format!("auto-disabled: {r}"), "bad")
            }
            (_, Some(r)) => (format!("paused: {r}"), "warn"),
            _ if job["next_run_at"].is_null() && job["schedule_type"] == "once" => {
                ("ended".to_owned(), "muted")
            }
            _ => ("paused".to_owned(), "warn"),
        };
        Self { label, class }
    }
}

/// One run's outcome in a strip.
pub struct Dot {
    pub class: &'static str,
    pub title: String,
}

pub fn status_class(status: &str) -> &'static str {
    match status {
        "success" => "ok",
        "failed" | "interrupted" => "bad",
        "skipped" => "muted",
        _ => "warn",
    }
}

pub struct JobRow {
    pub id: String,
    pub name: String,
    pub schedule: String,
    pub state: State,
    pub last_status: String,
    pub next_run: Option<When>,
    pub strip: Vec<Dot>,
}

impl JobRow {
    pub fn of(job: &Value, runs: &[Value]) -> Self {
        let zone = job["timezone"].as_str().unwrap_or("UTC");
        Self {
            id: text(&job["id"]),
            name: text(&job["name"]),
            schedule: schedule_words(job),
            state: State::of(job),
            last_status: job["last_status"]
                .as_str()
                .unwrap_or("never ran")
                .to_owned(),
            next_run: When::of(&job["next_run_at"], zone),
            strip: runs
                .iter()
                .rev()
                .map(|r| Dot {
                    class: status_class(r["status"].as_str().unwrap_or_default()),
                    title: format!("{} at {}", text(&r["status"]), text(&r["started_at"])),
                })
                .collect(),
        }
    }
}

pub fn schedule_words(job: &Value) -> String {
    describe(
        job["schedule_type"].as_str().unwrap_or_default(),
        job["schedule"].as_str().unwrap_or_default(),
        job["timezone"].as_str().unwrap_or("UTC"),
    )
}

pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The filters of the jobs list, as the query asked for them.
#[derive(Default, serde::Deserialize)]
pub struct Filters {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub last_status: String,
    #[serde(default)]
    pub cursor: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
pub struct JobsPage {
    pub chrome: Chrome,
    pub can_write: bool,
    pub filters: Filters,
    pub rows: Vec<JobRow>,
    /// The query of the next page, if there is one.
    pub next: Option<String>,
    pub error: Option<String>,
}

/// One attempt in the history.
pub struct ExecRow {
    pub id: String,
    pub status: String,
    pub class: &'static str,
    pub http_status: String,
    pub duration: String,
    pub attempt: String,
    pub trigger: String,
    pub started: Option<When>,
    pub response_body: String,
    pub error: String,
}

impl ExecRow {
    pub fn of(e: &Value, zone: &str) -> Self {
        let status = text(&e["status"]);
        Self {
            id: text(&e["id"]),
            class: status_class(&status),
            status,
            http_status: text(&e["http_status"]),
            duration: e["duration_ms"]
                .as_u64()
                .map(|d| format!("{d} ms"))
                .unwrap_or_default(),
            attempt: text(&e["attempt"]),
            trigger: text(&e["trigger"]),
            started: When::of(&e["started_at"], zone),
            response_body: text(&e["response_body"]),
            error: text(&e["error"]),
        }
    }
}

/// Durations and outcomes of the latest attempts as SVG bars (oldest on the left).
pub struct Chart {
    pub bars: Vec<Bar>,
    pub width: u32,
    pub height: u32,
    pub longest: String,
}

pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub h: u32,
    pub class: &'static str,
    pub title: String,
}

impl Chart {
    const HEIGHT: u32 = 80;
    const STEP: u32 = 6;

    pub fn of(executions: &[Value]) -> Self {
        let durations: Vec<u64> = executions
            .iter()
            .map(|e| e["duration_ms"].as_u64().unwrap_or(0))
            .collect();
        let longest = durations.iter().copied().max().unwrap_or(0).max(1);
        let bars = executions
            .iter()
            .rev()
            .zip(durations.iter().rev())
            .enumerate()
            .map(|(i, (e, d))| {
                let h = ((*d as f64 / longest as f64) * f64::from(Self::HEIGHT - 2)) as u32 + 2;
                Bar {
                    x: i as u32 * Self::STEP,
                    y: Self::HEIGHT - h,
                    h,
                    class: status_class(e["status"].as_str().unwrap_or_default()),
                    title: format!("{}: {d} ms, {}", text(&e["started_at"]), text(&e["status"])),
                }
            })
            .collect::<Vec<_>>();
        Self {
            width: (bars.len() as u32 * Self::STEP).max(Self::STEP),
            height: Self::HEIGHT,
            longest: format!("{longest} ms"),
            bars,
        }
    }
}

#[derive(Template)]
#[template(path = "history.html")]
pub struct History {
    pub job_id: String,
    pub rows: Vec<ExecRow>,
    pub chart: Chart,
    /// A run is under way: the page keeps refreshing this part.
    pub live: bool,
}

impl History {
    /// The history of `job` (its JSON) from its latest `executions`, newest first.
    pub fn of(job: &Value, executions: &[Value], now: DateTime<Utc>) -> Self {
        let zone = job["timezone"].as_str().unwrap_or("UTC");
        let job_id = text(&job["id"]);
        let live = retry_pending(job, executions) || fires_soon(job, now);
        Self {
            job_id: job_id.to_owned(),
            rows: executions
                .iter()
                .take(25)
                .map(|e| ExecRow::of(e, zone))
                .collect(),
            chart: Chart::of(executions),
            live,
        }
    }
}

/// The latest attempt failed and the job allows another: a retry is coming. (Attempts in
/// flight are not listed; what the page can see coming is a retry or the next run.)
fn retry_pending(job: &Value, executions: &[Value]) -> bool {
    let Some(latest) = executions.first() else {
        return false;
    };
    let attempts = job["max_retries"].as_u64().unwrap_or(0) + 1;
    latest["status"] == "failed" && latest["attempt"].as_u64().is_some_and(|a| a < attempts)
}

/// The job's next run is due within two minutes.
fn fires_soon(job: &Value, now: DateTime<Utc>) -> bool {
    let next = job["next_run_at"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok());
    next.is_some_and(|at| at - now < chrono::Duration::minutes(2))
}

/// A name and its value, for the definition list of a job.
pub struct Detail {
    pub name: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    pub chrome: Chrome,
    pub can_write: bool,
    pub id: String,
    pub name: String,
    pub schedule: String,
    pub state: State,
    pub enabled: bool,
    pub details: Vec<Detail>,
    pub upcoming: Vec<When>,
    /// The rendered `History` (also served alone, for the page's refresh).
    pub history: String,
    pub notice: Option<String>,
}

impl JobPage {
    pub fn details(job: &Value) -> Vec<Detail> {
        FIELDS
            .iter()
            .filter(|f| !matches!(f.name, "name" | "enabled"))
            .map(|f| Detail {
                name: f.label,
                value: shown(f, job),
            })
            .filter(|d| !d.value.is_empty())
            .collect()
    }
}

/// A form field with its value and the API's messages about it.
pub struct FieldView {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub options: Vec<(&'static str, bool)>,
    pub value: String,
    pub help: &'static str,
    pub errors: Vec<String>,
}

pub struct Group {
    pub name: &'static str,
    pub fields: Vec<FieldView>,
}

/// The form's groups, with `values` (a job's JSON, or the submitted form as JSON-ish
/// strings) and `errors` (the API's `details`).
pub fn groups(values: &Value, errors: &Value, editing: bool) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for f in FIELDS.iter().filter(|f| !(editing && f.create_only)) {
        let value = shown(f, values);
        let view = FieldView {
            name: f.name,
            label: f.label,
            kind: kind_name(f.kind),
            options: match f.kind {
                Kind::Select(opts) => {
                    let chosen = if value.is_empty() {
                        opts[0]
                    } else {
                        value.as_str()
                    };
                    opts.iter().map(|o| (*o, *o == chosen)).collect()
                }
                _ => Vec::new(),
            },
            errors: messages(&errors[f.name]),
            value,
            help: f.help,
        };
        match out.last_mut() {
            Some(g) if g.name == f.group => g.fields.push(view),
            _ => out.push(Group {
                name: f.group,
                fields: vec![view],
            }),
        }
    }
    out
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Area | Kind::Headers => "area",
        Kind::Number => "number",
        Kind::Select(_) => "select",
        Kind::Checkbox => "checkbox",
        Kind::List => "text",
    }
}

pub fn messages(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "job_form.html")]
pub struct FormPage {
    pub chrome: Chrome,
    pub title: String,
    pub action: String,
    pub groups: Vec<Group>,
    /// Messages about no field of the form (the quota, an unknown field).
    pub general: Vec<String>,
    pub preview: Vec<When>,
    pub preview_errors: Vec<String>,
    pub cancel: String,
}

#[derive(Template)]
#[template(path = "team.html")]
pub struct TeamPage {
    pub chrome: Chrome,
    pub team: String,
    pub can_write: bool,
    pub secret: Option<String>,
    pub previous_until: Option<String>,
    pub notice: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_history_refreshes_while_a_retry_or_the_next_run_is_coming() {
        let now: DateTime<Utc> = "2030-01-01T10:00:00Z".parse().unwrap();
        let job = |next: &str| json!({"id": "j", "max_retries": 2, "next_run_at": next});
        let failed = |attempt: u64| json!({"status": "failed", "attempt": attempt});
        let later = job("2030-01-01T11:00:00Z");
        assert!(
            History::of(&later, &[failed(2)], now).live,
            "a third attempt is coming"
        );
        assert!(
            !History::of(&later, &[failed(3)], now).live,
            "the last attempt failed"
        );
        let ok = json!({"status": "success", "attempt": 1});
        assert!(!History::of(&later, std::slice::from_ref(&ok), now).live);
        let soon = job("2030-01-01T10:01:00Z");
        assert!(
            History::of(&soon, &[ok], now).live,
            "the next run is a minute away"
        );
    }

    #[test]
    fn a_job_state_names_a_pause_and_its_reason() {
        let paused = json!({"enabled": false, "paused_reason": "deploy"});
        assert_eq!(State::of(&paused).label, "paused: deploy");
        let ended = json!({"enabled": false, "schedule_type": "once", "next_run_at": null});
        assert_eq!(State::of(&ended).label, "ended");
        let auto = json!({"enabled": false,
                          "paused_reason": "auto-disabled after 3 consecutive failed runs"});
        assert_eq!(State::of(&auto).class, "bad");
    }
}
