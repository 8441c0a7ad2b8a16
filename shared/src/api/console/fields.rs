//! Every field of a job as the console's form shows it: one table, read to render the form
//! (with a job's current values) and to turn a submitted form into the API's JSON body. The
//! rules stay the API's: the form sends what was typed, and shows the API's messages.

use serde_json::{Map, Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Several lines (`body`, `expect_body`).
    Area,
    Number,
    Select(&'static [&'static str]),
    Checkbox,
    /// Comma-separated values, sent as an array (`tags`, `expect_status`).
    List,
    /// `Name: value` lines, sent as an object.
    Headers,
}

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// Whether an emptied field is sent as `null` (back to its default) in a change.
    pub nullable: bool,
    /// Shown on the create form only (`enabled`: pause and resume are buttons).
    pub create_only: bool,
    pub group: &'static str,
    pub help: &'static str,
}

const fn field(name: &'static str, label: &'static str, kind: Kind, group: &'static str) -> Field {
    Field {
        name,
        label,
        kind,
        nullable: false,
        create_only: false,
        group,
        help: "",
    }
}

const fn nullable(mut f: Field) -> Field {
    f.nullable = true;
    f
}

const fn help(mut f: Field, help: &'static str) -> Field {
    f.help = help;
    f
}

const SCHEDULE: &str = "Schedule";
const REQUEST: &str = "Request";
const RETRIES: &str = "Retries and success";
const ALERTS: &str = "Alerts";
const FIRING: &str = "Firing";

pub const FIELDS: [Field; 27] = [
    field("name", "Name", Kind::Text, SCHEDULE),
    field(
        "schedule_type",
        "Schedule type",
        Kind::Select(&["cron", "interval", "once"]),
        SCHEDULE,
    ),
    help(
        field("schedule", "Schedule", Kind::Text, SCHEDULE),
        "cron: 5 fields or @daily; interval: every_5m, every_1h, every_30s; once: 2030-01-15T10:00:00Z",
    ),
    help(
        field("timezone", "Timezone", Kind::Text, SCHEDULE),
        "An IANA name, e.g. Europe/Berlin (default UTC)",
    ),
    help(
        nullable(field("starts_at", "Starts at", Kind::Text, SCHEDULE)),
        "Optional, RFC 3339",
    ),
    help(
        nullable(field("ends_at", "Ends at", Kind::Text, SCHEDULE)),
        "Optional, RFC 3339",
    ),
    field("url", "URL", Kind::Text, REQUEST),
    field(
        "method",
        "Method",
        Kind::Select(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
        REQUEST,
    ),
    help(
        field("headers", "Headers", Kind::Headers, REQUEST),
        "One per line: Name: value",
    ),
    nullable(field("body", "Body", Kind::Area, REQUEST)),
    help(
        field("timeout_ms", "Timeout (ms)", Kind::Number, REQUEST),
        "1000 to 300000 (default 30000)",
    ),
    help(
        field("max_retries", "Retries", Kind::Number, RETRIES),
        "0 to 10 (default 3)",
    ),
    field(
        "retry_backoff",
        "Backoff",
        Kind::Select(&["linear", "exponential"]),
        RETRIES,
    ),
    nullable(field(
        "retry_base_ms",
        "First retry after (ms)",
        Kind::Number,
        RETRIES,
    )),
    nullable(field(
        "retry_max_ms",
        "Longest wait (ms)",
        Kind::Number,
        RETRIES,
    )),
    help(
        nullable(field(
            "expect_status",
            "Success statuses",
            Kind::List,
            RETRIES,
        )),
        "e.g. 2xx, 404 (default 2xx)",
    ),
    help(
        nullable(field(
            "expect_body",
            "Body must contain",
            Kind::Area,
            RETRIES,
        )),
        "Optional",
    ),
    field(
        "failure_notify",
        "Send failure notices",
        Kind::Checkbox,
        ALERTS,
    ),
    help(
        field(
            "notify_after_failures",
            "Notify after failed runs",
            Kind::Number,
            ALERTS,
        ),
        "1 to 100 (default 1)",
    ),
    help(
        nullable(field(
            "auto_disable_after_failures",
            "Pause after failed runs",
            Kind::Number,
            ALERTS,
        )),
        "Optional, 1 to 100",
    ),
    nullable(field("notify_url", "Notice URL", Kind::Text, ALERTS)),
    field(
        "notify_format",
        "Notice format",
        Kind::Select(&["json", "slack"]),
        ALERTS,
    ),
    help(
        nullable(field(
            "catchup_window_s",
            "Catch-up window (s)",
            Kind::Number,
            FIRING,
        )),
        "Optional, 0 to 86400",
    ),
    field(
        "overlap",
        "Overlapping runs",
        Kind::Select(&["allow", "skip", "buffer_one"]),
        FIRING,
    ),
    help(
        field("jitter_s", "Jitter (s)", Kind::Number, FIRING),
        "0 to 900",
    ),
    help(
        nullable(field("tags", "Tags", Kind::List, FIRING)),
        "Comma-separated, e.g. ops, nightly",
    ),
    Field {
        create_only: true,
        ..field("enabled", "Enabled", Kind::Checkbox, FIRING)
    },
];

/// A field's value as the form shows it, from a job's JSON (`Null` for a new job).
pub fn shown(field: &Field, job: &Value) -> String {
    let v = &job[field.name];
    match (field.kind, v) {
        (_, Value::Null) => default_shown(field),
        (Kind::List, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        (Kind::Headers, Value::Object(h)) => h
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n"),
        (Kind::Checkbox, Value::Bool(b)) => if *b { "on" } else { "" }.to_owned(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// What a new job's form starts with.
fn default_shown(field: &Field) -> String {
    match field.name {
        "enabled" => "on".into(),
        _ => String::new(),
    }
}

/// The submitted `form` as the API's JSON body: for a new job, the fields filled in; for a
/// change (`patch`), every field of the form, an emptied nullable one as `null`.
pub fn body_of(form: &[(String, String)], patch: bool) -> Value {
    let value = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Map::new();
    for f in FIELDS.iter().filter(|f| !(patch && f.create_only)) {
        let raw = value(f.name).unwrap_or_default();
        let sent = match f.kind {
            Kind::Checkbox => Some(json!(value(f.name).is_some())),
            _ if raw.trim().is_empty() => (patch && f.nullable).then_some(Value::Null),
            Kind::Number => Some(number(raw)),
            Kind::List => Some(json!(list(raw))),
            Kind::Headers => Some(headers(raw)),
            Kind::Area => Some(json!(raw.replace("\r\n", "\n"))),
            Kind::Text | Kind::Select(_) => Some(json!(raw.trim())),
        };
        if let Some(v) = sent {
            body.insert(f.name.to_owned(), v);
        }
    }
    Value::Object(body)
}

/// A whole number as a JSON number; anything else as typed, for the API to refuse with its
/// own message.
fn number(raw: &str) -> Value {
    raw.trim()
        .parse::<i64>()
        .map_or_else(|_| json!(raw.trim()), |n| json!(n))
}

fn list(raw: &str) -> Vec<&str> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn headers(raw: &str) -> Value {
    let mut out = Map::new();
    for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        out.insert(name.trim().to_owned(), json!(value.trim()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_new_jobs_form_sends_only_what_was_filled_in() {
        let form = pairs(&[
            ("name", " Nightly "),
            ("schedule_type", "cron"),
            ("schedule", "0 3 * * *"),
            ("headers", "X-A: 1\r\nX-B:two"),
            ("timeout_ms", "5000"),
            ("max_retries", "three"),
            ("tags", "ops, nightly,"),
            ("retry_base_ms", ""),
            ("enabled", "on"),
        ]);
        let body = body_of(&form, false);
        assert_eq!(body["name"], "Nightly");
        assert_eq!(body["headers"], json!({"X-A": "1", "X-B": "two"}));
        assert_eq!(body["timeout_ms"], 5000);
        assert_eq!(
            body["max_retries"], "three",
            "the API says what is wrong with it"
        );
        assert_eq!(body["tags"], json!(["ops", "nightly"]));
        assert_eq!(
            (body["enabled"].clone(), body["failure_notify"].clone()),
            (json!(true), json!(false))
        );
        assert!(body.get("retry_base_ms").is_none());
    }

    #[test]
    fn a_change_resets_an_emptied_optional_field_and_leaves_pausing_to_its_buttons() {
        let body = body_of(
            &pairs(&[("name", "x"), ("tags", ""), ("timezone", "")]),
            true,
        );
        assert_eq!(body["tags"], Value::Null);
        assert!(body.get("timezone").is_none(), "not nullable: kept");
        assert!(body.get("enabled").is_none());
    }

    #[test]
    fn a_jobs_values_are_shown_as_typed() {
        let job = json!({"headers": {"A": "1", "B": "2"}, "tags": ["x", "y"], "timeout_ms": 5000,
                         "failure_notify": true});
        let by = |n: &str| FIELDS.iter().find(|f| f.name == n).unwrap();
        assert_eq!(shown(by("headers"), &job), "A: 1\nB: 2");
        assert_eq!(shown(by("tags"), &job), "x, y");
        assert_eq!(shown(by("timeout_ms"), &job), "5000");
        assert_eq!(shown(by("failure_notify"), &job), "on");
        assert_eq!(shown(by("body"), &job), "");
    }
}
