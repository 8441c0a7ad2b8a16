//! `krafter jobs`: the job API from the command line, against any Krafter Cron (the local
//! server, or a hosted deployment's API URL). Tables for people, `--json` for scripts; the
//! API's own error messages; exit status 0, 1 for an API error, 2 for bad usage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::{AnyError, say};

const EXAMPLES: &str = "Examples:
  export KRAFTER_URL=http://127.0.0.1:8080 KRAFTER_KEY=kr_live_...
  krafter jobs create --name 'Health Check' --schedule-type interval --schedule every_5m \\
      --webhook https://example.com/api/health
  krafter jobs create --file job.json
  krafter jobs list --tag billing --enabled true
  krafter jobs update 0190d3f0-... --schedule '*/10 * * * *' --set expect_status='[\"2xx\",\"404\"]'
  krafter jobs pause 0190d3f0-... --reason 'maintenance window'
  krafter jobs executions 0190d3f0-... --status failed --json";

/// Where the API is and who calls it.
#[derive(Args)]
#[command(after_help = EXAMPLES)]
pub struct JobsArgs {
    /// The server's base URL (the API is under /api/v1/cron).
    #[arg(
        long,
        env = "KRAFTER_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// An API key (cron:read for reads, cron:write for changes).
    #[arg(long, env = "KRAFTER_KEY", hide_env_values = true, global = true)]
    key: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first (all pages unless --limit).
    #[command(after_help = "Example: krafter jobs list --tag billing --enabled false")]
    List {
        /// Only jobs with this tag (repeatable: all of them).
        #[arg(long)]
        tag: Vec<String>,
        #[arg(long)]
        enabled: Option<bool>,
        /// Only jobs whose name contains this.
        #[arg(long)]
        name: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one job.
    #[command(after_help = "Example: krafter jobs get 0190d3f0-...")]
    Get { id: String },
    /// Create a job from flags or a JSON file (flags override the file's fields).
    #[command(
        after_help = "Example: krafter jobs create --name nightly --schedule-type cron \
        --schedule '0 2 * * *' --timezone Europe/Berlin --webhook https://example.com/run"
    )]
    Create(JobFields),
    /// Change a job: only the fields given.
    #[command(after_help = "Example: krafter jobs update 0190d3f0-... --enabled false")]
    Update {
        id: String,
        #[command(flatten)]
        fields: JobFields,
    },
    /// Delete a job and its history.
    #[command(after_help = "Example: krafter jobs delete 0190d3f0-...")]
    Delete { id: String },
    /// Run a job now.
    #[command(after_help = "Example: krafter jobs trigger 0190d3f0-...")]
    Trigger { id: String },
    /// Pause a job (its queued runs and retries are dropped).
    #[command(after_help = "Example: krafter jobs pause 0190d3f0-... --reason 'until Monday'")]
    Pause {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused job.
    #[command(after_help = "Example: krafter jobs resume 0190d3f0-...")]
    Resume { id: String },
    /// A job's executions (one per attempt), newest first.
    #[command(after_help = "Example: krafter jobs executions 0190d3f0-... --status failed")]
    Executions {
        id: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// The next runs a job will fire.
    #[command(after_help = "Example: krafter jobs upcoming 0190d3f0-... --count 5")]
    Upcoming {
        id: String,
        #[arg(long, default_value_t = 10)]
        count: u32,
    },
}

/// A job's fields as flags (each optional; `--set` for any other field, as JSON).
#[derive(Args)]
pub struct JobFields {
    /// A JSON object with the job's fields.
    #[arg(long)]
    file: Option<PathBuf>,
    #[arg(long)]
    name: Option<String>,
    /// cron, interval or once.
    #[arg(long)]
    schedule_type: Option<String>,
    #[arg(long)]
    schedule: Option<String>,
    #[arg(long)]
    timezone: Option<String>,
    /// The webhook's URL (the job's `url`).
    #[arg(long)]
    webhook: Option<String>,
    #[arg(long)]
    method: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(long)]
    header: Vec<String>,
    #[arg(long)]
    body: Option<String>,
    #[arg(long)]
    timeout_ms: Option<i64>,
    #[arg(long)]
    max_retries: Option<i64>,
    #[arg(long)]
    enabled: Option<bool>,
    /// A tag (repeatable; replaces the job's tags).
    #[arg(long)]
    tag: Vec<String>,
    /// Any other field, `name=JSON` (repeatable), e.g. `--set overlap='"skip"'`.
    #[arg(long, value_name = "FIELD=JSON")]
    set: Vec<String>,
}

impl JobFields {
    /// The request body: the file's object, then each flag given.
    fn body(&self) -> Result<Map<String, Value>, String> {
        let mut body = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                match serde_json::from_str(&text) {
                    Ok(Value::Object(m)) => m,
                    _ => return Err(format!("{} is not a JSON object", path.display())),
                }
            }
            None => Map::new(),
        };
        let strings = [
            ("name", &self.name),
            ("schedule_type", &self.schedule_type),
            ("schedule", &self.schedule),
            ("timezone", &self.timezone),
            ("url", &self.webhook),
            ("method", &self.method),
            ("body", &self.body),
        ];
        for (field, value) in strings {
            if let Some(v) = value {
                body.insert(field.into(), json!(v));
            }
        }
        for (field, value) in [
            ("timeout_ms", self.timeout_ms),
            ("max_retries", self.max_retries),
        ] {
            if let Some(v) = value {
                body.insert(field.into(), json!(v));
            }
        }
        if let Some(e) = self.enabled {
            body.insert("enabled".into(), json!(e));
        }
        self.headers_and_more(body)
    }

    fn headers_and_more(&self, mut body: Map<String, Value>) -> Result<Map<String, Value>, String> {
        if !self.header.is_empty() {
            let mut headers = Map::new();
            for h in &self.header {
                let (name, value) = h
                    .split_once(':')
                    .ok_or_else(|| format!("--header {h:?}: write it as 'Name: value'"))?;
                headers.insert(name.trim().into(), json!(value.trim()));
            }
            body.insert("headers".into(), Value::Object(headers));
        }
        if !self.tag.is_empty() {
            body.insert("tags".into(), json!(self.tag));
        }
        for s in &self.set {
            let (field, raw) = s
                .split_once('=')
                .ok_or_else(|| format!("--set {s:?}: write it as field=JSON"))?;
            let value = serde_json::from_str(raw)
                .map_err(|e| format!("--set {field}: not JSON ({e}); quote strings: '\"text\"'"))?;
            body.insert(field.into(), value);
        }
        Ok(body)
    }
}

/// What a call came to: the API's JSON, or its error.
enum Answer {
    Ok(Value),
    Refused(u16, Value),
}

struct Api {
    base: String,
    key: Option<String>,
    client: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, AnyError> {
        let url = format!("{}/api/v1/cron{path}", self.base.trim_end_matches('/'));
        let mut req = self.client.request(method, &url);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(match status {
            200..=299 => Answer::Ok(value),
            _ => Answer::Refused(status, value),
        })
    }
}

pub async fn jobs(args: JobsArgs) -> Result<ExitCode, AnyError> {
    let api = Api {
        base: args.url.clone(),
        key: args.key.clone(),
        client: reqwest::Client::new(),
    };
    let (method, path, body) = match request(&args.command) {
        Ok(r) => r,
        Err(usage) => {
            say(format_args!("error: {usage}"));
            return Ok(ExitCode::from(2));
        }
    };
    if let JobsCommand::List { limit: None, .. } = &args.command {
        return list_all(&api, &path, args.json).await;
    }
    match api.call(method, &path, body).await? {
        Answer::Ok(v) => {
            show(&args.command, &v, args.json);
            Ok(ExitCode::SUCCESS)
        }
        Answer::Refused(status, v) => Ok(refused(status, &v)),
    }
}

/// The API call a command makes, or a usage error.
fn request(cmd: &JobsCommand) -> Result<(Method, String, Option<Value>), String> {
    let job = |id: &str, rest: &str| format!("/jobs/{id}{rest}");
    Ok(match cmd {
        JobsCommand::List {
            tag,
            enabled,
            name,
            limit,
        } => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for t in tag {
                q.append_pair("tag", t);
            }
            if let Some(e) = enabled {
                q.append_pair("enabled", &e.to_string());
            }
            if let Some(n) = name {
                q.append_pair("q", n);
            }
            q.append_pair("limit", &limit.unwrap_or(100).to_string());
            (Method::GET, format!("/jobs?{}", q.finish()), None)
        }
        JobsCommand::Get { id } => (Method::GET, job(id, ""), None),
        JobsCommand::Create(f) => (Method::POST, "/jobs".into(), Some(Value::Object(f.body()?))),
        JobsCommand::Update { id, fields } => (
            Method::PATCH,
            job(id, ""),
            Some(Value::Object(fields.body()?)),
        ),
        JobsCommand::Delete { id } => (Method::DELETE, job(id, ""), None),
        JobsCommand::Trigger { id } => (Method::POST, job(id, "/trigger"), None),
        JobsCommand::Pause { id, reason } => {
            let body = reason.as_ref().map(|r| json!({ "reason": r }));
            (Method::POST, job(id, "/pause"), body)
        }
        JobsCommand::Resume { id } => (Method::POST, job(id, "/resume"), None),
        JobsCommand::Executions { id, status, limit } => {
            let status = status
                .as_ref()
                .map(|s| format!("&status={s}"))
                .unwrap_or_default();
            (
                Method::GET,
                job(id, &format!("/executions?limit={limit}{status}")),
                None,
            )
        }
        JobsCommand::Upcoming { id, count } => (
            Method::GET,
            job(id, &format!("/upcoming?count={count}")),
            None,
        ),
    })
}

/// Every page of a list, following the cursors.
async fn list_all(api: &Api, first: &str, json: bool) -> Result<ExitCode, AnyError> {
    let mut all = Vec::new();
    let mut path = first.to_owned();
    loop {
        match api.call(Method::GET, &path, None).await? {
            Answer::Refused(status, v) => return Ok(refused(status, &v)),
            Answer::Ok(v) => {
                all.extend(v["data"].as_array().cloned().unwrap_or_default());
                match v["next_cursor"].as_str() {
                    Some(c) => path = format!("{first}&cursor={c}"),
                    None => break,
                }
            }
        }
    }
    let page = json!({ "data": all });
    show(
        &JobsCommand::List {
            tag: vec![],
            enabled: None,
            name: None,
            limit: None,
        },
        &page,
        json,
    );
    Ok(ExitCode::SUCCESS)
}

/// The API's error, as it said it, on stderr; exit status 1.
fn refused(status: u16, v: &Value) -> ExitCode {
    let error = v["error"].as_str().unwrap_or("the request failed");
    say(format_args!("error: {error} (HTTP {status})"));
    if let Some(details) = v["details"].as_object() {
        for (field, messages) in details {
            let messages: Vec<&str> = messages
                .as_array()
                .map(|m| m.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            say(format_args!("  {field}: {}", messages.join("; ")));
        }
    }
    ExitCode::FAILURE
}

/// Prints a successful answer: its JSON, or a table.
fn show(cmd: &JobsCommand, v: &Value, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&v["data"]).unwrap_or_default()
        );
        return;
    }
    let data = &v["data"];
    match cmd {
        JobsCommand::List { .. } => table(
            &["ID", "NAME", "SCHEDULE", "ENABLED", "LAST", "NEXT RUN"],
            data,
            |j| {
                vec![
                    text(&j["id"]),
                    text(&j["name"]),
                    format!("{} {}", text(&j["schedule_type"]), text(&j["schedule"])),
                    text(&j["enabled"]),
                    text(&j["last_status"]),
                    text(&j["next_run_at"]),
                ]
            },
        ),
        JobsCommand::Executions { .. } => table(
            &[
                "STARTED", "STATUS", "HTTP", "ATTEMPT", "MS", "TRIGGER", "ERROR",
            ],
            data,
            |e| {
                [
                    "started_at",
                    "status",
                    "http_status",
                    "attempt",
                    "duration_ms",
                    "trigger",
                    "error",
                ]
                .iter()
                .map(|f| text(&e[*f]))
                .collect()
            },
        ),
        JobsCommand::Upcoming { .. } => table(&["SCHEDULED", "FIRES"], data, |r| {
            let fires = r.get("fires_at").unwrap_or(&r["scheduled_at"]);
            vec![text(&r["scheduled_at"]), text(fires)]
        }),
        JobsCommand::Trigger { .. } => println!("triggered"),
        JobsCommand::Delete { .. } => println!("deleted"),
        _ => fields(data),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `name: value` lines, in the API's order.
fn fields(data: &Value) {
    if let Some(object) = data.as_object() {
        let width = object.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in object {
            println!("{k:<width$}  {}", text(v));
        }
    }
}

/// Rows under a header, columns padded to their widest cell.
fn table(header: &[&str], rows: &Value, row: impl Fn(&Value) -> Vec<String>) {
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    lines.extend(rows.as_array().into_iter().flatten().map(row));
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}
