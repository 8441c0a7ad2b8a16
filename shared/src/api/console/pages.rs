//! The console's pages and forms. Each reads or changes through the REST routes as the
//! signed-in key (`ask`), and shows what the API answered: its data, or its messages.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Console;
use super::fields::body_of;
use super::session::{SignedOut, Viewer};
use super::view::{
    Chrome, Filters, FormPage, History, JobPage, JobRow, JobsPage, Message, Page,
    State as JobState, TeamPage, When, groups, messages, schedule_words, text,
};
use crate::api::inproc::{self, Answer, Ask};

const API: &str = "/api/v1/cron";
/// Jobs per page of the list.
const PAGE: usize = 25;

type Pairs = Vec<(String, String)>;

async fn ask(c: &Console, v: &Viewer, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut ask = Ask::new(method, format!("{API}{path}"));
    ask.body = body;
    inproc::call(&c.rest, &v.origin, ask).await
}

fn chrome(v: &Viewer) -> Chrome {
    Chrome::for_team(&v.base, v.caller().team.as_str(), v.can_write())
}

/// A redirect to `path` under the console's base.
fn to(v: &Viewer, path: &str) -> Response {
    Redirect::to(&format!("{}{path}", v.base)).into_response()
}

/// An answer the page cannot go on with, shown as the API put it.
fn refused(v: &Viewer, a: &Answer) -> Response {
    let title = a.body["error"].as_str().unwrap_or("Something went wrong");
    let mut page = Message::new(&v.base, title, &detail_text(&a.body));
    page.chrome = chrome(v);
    (a.status, page.html()).into_response()
}

fn detail_text(body: &Value) -> String {
    match body["details"].as_object() {
        Some(d) => d
            .iter()
            .map(|(field, m)| format!("{field}: {}", messages(m).join(", ")))
            .collect::<Vec<_>>()
            .join("; "),
        None => String::new(),
    }
}

fn id_path(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

pub async fn home(viewer: Result<Viewer, SignedOut>) -> Response {
    match viewer {
        Ok(v) => to(&v, "/jobs"),
        Err(signed_out) => signed_out.into_response(),
    }
}

/// The REST query of a page of the jobs list.
fn list_query(f: &Filters) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &PAGE.to_string());
    for (key, value) in [
        ("q", &f.q),
        ("tag", &f.tag),
        ("last_status", &f.last_status),
    ] {
        if !value.trim().is_empty() {
            query.append_pair(key, value.trim());
        }
    }
    match f.state.as_str() {
        "enabled" => query.append_pair("enabled", "true"),
        "paused" => query.append_pair("enabled", "false"),
        _ => &mut query,
    };
    if !f.cursor.is_empty() {
        query.append_pair("cursor", &f.cursor);
    }
    query.finish()
}

pub async fn jobs(State(c): State<Console>, v: Viewer, Query(f): Query<Filters>) -> Response {
    let listed = ask(
        &c,
        &v,
        Method::GET,
        &format!("/jobs?{}", list_query(&f)),
        None,
    )
    .await;
    if !listed.status.is_success() {
        let page = JobsPage {
            chrome: chrome(&v),
            can_write: v.can_write(),
            error: Some(format!(
                "{} {}",
                text(&listed.body["error"]),
                detail_text(&listed.body)
            )),
            filters: f,
            rows: Vec::new(),
            next: None,
        };
        return (listed.status, page.html()).into_response();
    }
    let mut rows = Vec::new();
    for job in listed.body["data"].as_array().into_iter().flatten() {
        let path = format!("/jobs/{}/executions?limit=10", id_path(&text(&job["id"])));
        let runs = ask(&c, &v, Method::GET, &path, None).await;
        let runs = runs.body["data"].as_array().cloned().unwrap_or_default();
        rows.push(JobRow::of(job, &runs));
    }
    let next = listed.body["next_cursor"]
        .as_str()
        .map(|cursor| next_query(&f, cursor));
    let page = JobsPage {
        chrome: chrome(&v),
        can_write: v.can_write(),
        filters: f,
        rows,
        next,
        error: None,
    };
    page.html()
}

fn next_query(f: &Filters, cursor: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    let pairs = [
        ("q", &f.q),
        ("tag", &f.tag),
        ("state", &f.state),
        ("last_status", &f.last_status),
    ];
    for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(key, value);
    }
    q.append_pair("cursor", cursor).finish()
}

#[derive(Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

pub async fn job(
    State(c): State<Console>,
    v: Viewer,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let found = match found_job(&c, &v, &id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let job = &found.body["data"];
    let zone = job["timezone"].as_str().unwrap_or("UTC");
    let upcoming = ask(
        &c,
        &v,
        Method::GET,
        &format!("/jobs/{}/upcoming?count=10", id_path(&id)),
        None,
    )
    .await;
    let upcoming = upcoming.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| When::of(u.get("fires_at").unwrap_or(&u["scheduled_at"]), zone))
        .collect();
    let history = history_of(&c, &v, job).await;
    let page = JobPage {
        chrome: chrome(&v),
        can_write: v.can_write(),
        id: text(&job["id"]),
        name: text(&job["name"]),
        schedule: schedule_words(job),
        state: JobState::of(job),
        enabled: job["enabled"] == true,
        details: JobPage::details(job),
        upcoming,
        history: history.render().unwrap_or_default(),
        notice: notice(&done.done),
    };
    page.html()
}

/// The job `id` as the API answers it (`{"data": …}`), or the page that says why not.
async fn found_job(c: &Console, v: &Viewer, id: &str) -> Result<Answer, Response> {
    let found = ask(c, v, Method::GET, &format!("/jobs/{}", id_path(id)), None).await;
    if found.status.is_success() {
        Ok(found)
    } else {
        Err(refused(v, &found))
    }
}

fn notice(done: &str) -> Option<String> {
    let text = match done {
        "trigger" => "The job was started; its run appears below.",
        "pause" => "The job is paused.",
        "resume" => "The job is running on its schedule again.",
        "update" => "Saved.",
        "create" => "The job was created.",
        _ => return None,
    };
    Some(text.to_owned())
}

async fn history_of(c: &Console, v: &Viewer, job: &Value) -> History {
    let path = format!("/jobs/{}/executions?limit=100", id_path(&text(&job["id"])));
    let runs = ask(c, v, Method::GET, &path, None).await;
    let runs = runs.body["data"].as_array().cloned().unwrap_or_default();
    History::of(job, &runs, c.api.clock.now())
}

/// The history alone, for the page to refresh while a run is under way.
pub async fn history(State(c): State<Console>, v: Viewer, Path(id): Path<String>) -> Response {
    let found = match found_job(&c, &v, &id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    history_of(&c, &v, &found.body["data"]).await.html()
}

fn form_page(v: &Viewer, title: &str, action: String, cancel: String) -> FormPage {
    FormPage {
        chrome: chrome(v),
        title: title.to_owned(),
        action: format!("{}{action}", v.base),
        cancel: format!("{}{cancel}", v.base),
        groups: Vec::new(),
        general: Vec::new(),
        preview: Vec::new(),
        preview_errors: Vec::new(),
    }
}

pub async fn new_job(v: Viewer) -> Response {
    if !v.can_write() {
        return forbidden(&v);
    }
    let mut page = form_page(&v, "New job", "/jobs/new".into(), "/jobs".into());
    page.groups = groups(&Value::Null, &Value::Null, false);
    page.html()
}

fn forbidden(v: &Viewer) -> Response {
    let a = inproc::fail(crate::api::ApiError::Forbidden);
    refused(v, &a)
}

pub async fn create_job(State(c): State<Console>, v: Viewer, Form(form): Form<Pairs>) -> Response {
    let mut page = form_page(&v, "New job", "/jobs/new".into(), "/jobs".into());
    let body = body_of(&form, false);
    if wants_preview(&form) {
        return previewed(&c, &v, page, &form, &body, false).await;
    }
    let created = ask(&c, &v, Method::POST, "/jobs", Some(body.clone())).await;
    if created.status.is_success() {
        let id = text(&created.body["data"]["id"]);
        return to(&v, &format!("/jobs/{id}?done=create"));
    }
    page.groups = groups(&form_values(&form), &created.body["details"], false);
    page.general = general_errors(&created.body);
    (created.status, page.html()).into_response()
}

fn wants_preview(form: &Pairs) -> bool {
    form.iter().any(|(k, v)| k == "preview" && v == "yes")
}

/// The submitted form as values to show again (strings, as typed).
fn form_values(form: &Pairs) -> Value {
    let mut values = serde_json::Map::new();
    for (k, v) in form {
        values.insert(k.clone(), json!(v));
    }
    Value::Object(values)
}

/// The API's messages that belong to no field of the form.
fn general_errors(body: &Value) -> Vec<String> {
    let details = body["details"].as_object();
    let on_fields: Vec<&str> = super::fields::FIELDS.iter().map(|f| f.name).collect();
    let mut out: Vec<String> = details
        .into_iter()
        .flatten()
        .filter(|(k, _)| !on_fields.contains(&k.as_str()))
        .map(|(k, m)| format!("{k}: {}", messages(m).join(", ")))
        .collect();
    if details.is_none() && !body["error"].is_null() {
        out.push(text(&body["error"]));
    }
    out
}

/// The form shown again with its schedule's next five runs (the form without script).
async fn previewed(
    c: &Console,
    v: &Viewer,
    mut page: FormPage,
    form: &Pairs,
    body: &Value,
    editing: bool,
) -> Response {
    let answer = preview_of(c, v, body).await;
    let zone = body["timezone"].as_str().unwrap_or("UTC");
    page.preview = answer.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| When::of(u.get("fires_by").unwrap_or(&u["scheduled_at"]), zone))
        .collect();
    page.preview_errors = answer.body["details"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, m)| messages(m))
        .collect();
    page.groups = groups(&form_values(form), &Value::Null, editing);
    page.html()
}

async fn preview_of(c: &Console, v: &Viewer, body: &Value) -> Answer {
    let mut ask_body = serde_json::Map::new();
    for k in crate::api::json::PREVIEW_FIELDS {
        if let Some(x) = body.get(k).filter(|x| !x.is_null()) {
            ask_body.insert(k.to_owned(), x.clone());
        }
    }
    ask_body.insert("count".into(), json!(5));
    ask(
        c,
        v,
        Method::POST,
        "/schedules/preview",
        Some(Value::Object(ask_body)),
    )
    .await
}

/// The live preview the form's script asks for as you type: the API's own answer.
pub async fn preview(State(c): State<Console>, v: Viewer, Form(form): Form<Pairs>) -> Response {
    let answer = preview_of(&c, &v, &body_of(&form, false)).await;
    (answer.status, axum::Json(answer.body)).into_response()
}

pub async fn edit_job(State(c): State<Console>, v: Viewer, Path(id): Path<String>) -> Response {
    if !v.can_write() {
        return forbidden(&v);
    }
    let found = match found_job(&c, &v, &id).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let job = &found.body["data"];
    let title = format!("Edit {}", text(&job["name"]));
    let mut page = form_page(
        &v,
        &title,
        format!("/jobs/{id}/edit"),
        format!("/jobs/{id}"),
    );
    page.groups = groups(job, &Value::Null, true);
    page.html()
}

pub async fn update_job(
    State(c): State<Console>,
    v: Viewer,
    Path(id): Path<String>,
    Form(form): Form<Pairs>,
) -> Response {
    let mut page = form_page(
        &v,
        "Edit job",
        format!("/jobs/{id}/edit"),
        format!("/jobs/{id}"),
    );
    let body = body_of(&form, true);
    if wants_preview(&form) {
        return previewed(&c, &v, page, &form, &body, true).await;
    }
    let path = format!("/jobs/{}", id_path(&id));
    let updated = ask(&c, &v, Method::PATCH, &path, Some(body)).await;
    if updated.status.is_success() {
        return to(&v, &format!("/jobs/{id}?done=update"));
    }
    if updated.status == StatusCode::NOT_FOUND || updated.status == StatusCode::FORBIDDEN {
        return refused(&v, &updated);
    }
    page.groups = groups(&form_values(&form), &updated.body["details"], true);
    page.general = general_errors(&updated.body);
    (updated.status, page.html()).into_response()
}

/// Run now, pause (with a reason), resume, delete (once confirmed).
pub async fn act(
    State(c): State<Console>,
    v: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    // Read whatever the form sent (a button alone sends nothing, and no content type).
    let form: Pairs = url::form_urlencoded::parse(&body).into_owned().collect();
    let value = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    let path = format!("/jobs/{}", id_path(&id));
    let answer = match action.as_str() {
        "trigger" | "resume" => ask(&c, &v, Method::POST, &format!("{path}/{action}"), None).await,
        "pause" => {
            let reason = value("reason").filter(|r| !r.is_empty());
            let body = reason.map_or_else(|| json!({}), |r| json!({"reason": r}));
            ask(&c, &v, Method::POST, &format!("{path}/pause"), Some(body)).await
        }
        "delete" if value("confirm").as_deref() == Some("yes") => {
            ask(&c, &v, Method::DELETE, &path, None).await
        }
        "delete" => {
            let text = "Tick the box to confirm the deletion.";
            let mut page = Message::new(&v.base, "Not deleted", text);
            page.chrome = chrome(&v);
            return (StatusCode::UNPROCESSABLE_ENTITY, page.html()).into_response();
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match (answer.status.is_success(), action.as_str()) {
        (true, "delete") => to(&v, "/jobs"),
        (true, _) => to(&v, &format!("/jobs/{id}?done={action}")),
        (false, _) => refused(&v, &answer),
    }
}

fn team_page(v: &Viewer, secret: Option<Answer>, notice: Option<&str>) -> Response {
    let data = secret.as_ref().map(|a| &a.body["data"]);
    let page = TeamPage {
        chrome: chrome(v),
        team: v.caller().team.as_str().to_owned(),
        can_write: v.can_write(),
        secret: data.and_then(|d| d["secret"].as_str()).map(str::to_owned),
        previous_until: data
            .and_then(|d| d["previous_valid_until"].as_str())
            .map(str::to_owned),
        notice: notice.map(str::to_owned),
    };
    page.html()
}

pub async fn team(v: Viewer) -> Response {
    team_page(&v, None, None)
}

/// The secret, shown on request (a POST: it is in no URL or history).
pub async fn reveal_secret(State(c): State<Console>, v: Viewer) -> Response {
    let secret = ask(&c, &v, Method::GET, "/team/signing-secret", None).await;
    if !secret.status.is_success() {
        return refused(&v, &secret);
    }
    team_page(&v, Some(secret), None)
}

pub async fn rotate_secret(State(c): State<Console>, v: Viewer) -> Response {
    let rotated = ask(&c, &v, Method::POST, "/team/signing-secret/rotate", None).await;
    if !rotated.status.is_success() {
        return refused(&v, &rotated);
    }
    team_page(&v, Some(rotated), Some("The secret was rotated."))
}
