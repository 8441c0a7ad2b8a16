use std::collections::HashMap;

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::json::{parse_object, read_backfill, read_job_draft, read_pause, read_preview};
use super::query::{Pairs, execution_filter, job_filter, list_params};
use super::views::{
    Data, ExecutionView, JobStateView, JobView, ListPage, Ok, UpcomingList, encode_cursor,
};
use super::{ApiError, ApiState, BODY_READ_TIMEOUT, Caller, MAX_BODY_BYTES, MAX_UPCOMING};
use crate::domain::{ExecutionId, FieldErrors, FireTime, JobDraft, JobId, UpcomingRun};
use crate::ports::PageRequest;
use crate::service::ServiceError;

type ApiResult = Result<Response, ApiError>;

pub async fn health() -> Json<Ok> {
    Json(Ok { ok: true })
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub async fn create_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let draft = job_draft(&headers, body).await?;
    let job = s.service.create(&caller.team, &draft).await?;
    let location = format!("/api/v1/cron/jobs/{}", job.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(Data {
            data: JobView::from(&job),
        }),
    )
        .into_response())
}

pub async fn list_jobs(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<Pairs>,
) -> ApiResult {
    let (page, filter) = list_params(&q, None, job_filter)?;
    let page = s
        .service
        .list(&caller.team, map_cursor(page, JobId::from_uuid), &filter)
        .await?;
    Ok(Json(ListPage {
        data: page.items.iter().map(JobView::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(id.as_uuid())),
    })
    .into_response())
}

pub async fn get_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
) -> ApiResult {
    let job = s.service.get(&caller.team, id).await?;
    Ok(Json(Data {
        data: JobView::from(&job),
    })
    .into_response())
}

pub async fn update_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let draft = job_draft(&headers, body).await?;
    let job = s.service.update(&caller.team, id, &draft).await?;
    Ok(Json(Data {
        data: JobView::from(&job),
    })
    .into_response())
}

pub async fn delete_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
) -> ApiResult {
    s.service.delete(&caller.team, id).await?;
    Ok(Json(Ok { ok: true }).into_response())
}

pub async fn trigger_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
) -> ApiResult {
    s.service.trigger(&caller.team, id).await?;
    Ok((StatusCode::ACCEPTED, Json(Ok { ok: true })).into_response())
}

/// `POST /jobs/{id}/backfill` with `{"from", "until"}`: 202 and the runs enqueued.
pub async fn backfill_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let object = json_body(&headers, body).await?;
    let range = read_backfill(&object).map_err(|e| ApiError::from(ServiceError::Input(e)))?;
    let runs = s.service.backfill(&caller.team, id, range).await?;
    let times: Vec<_> = runs
        .iter()
        .map(|r| UpcomingRun {
            scheduled_at: r.scheduled_at,
            fires: FireTime::OnTime,
        })
        .collect();
    Ok((StatusCode::ACCEPTED, Json(UpcomingList::of(&times))).into_response())
}

/// `POST /jobs/{id}/pause`, with an optional body `{"reason": "..."}`.
pub async fn pause_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let bytes = read_body(&headers, body).await?;
    let reason = match bytes.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => read_pause(&parse_object(&bytes).map_err(ApiError::InvalidJson)?)
            .map_err(|e| ApiError::from(ServiceError::Input(e)))?,
    };
    let job = s.service.pause(&caller.team, id, reason).await?;
    Ok(Json(Data {
        data: JobStateView::from(&job),
    })
    .into_response())
}

pub async fn resume_job(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
) -> ApiResult {
    let job = s.service.resume(&caller.team, id).await?;
    Ok(Json(Data {
        data: JobStateView::from(&job),
    })
    .into_response())
}

pub async fn list_executions(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
    Query(q): Query<Pairs>,
) -> ApiResult {
    let (page, filter) = list_params(&q, Some(20), execution_filter)?;
    let page = s
        .service
        .executions(
            &caller.team,
            id,
            map_cursor(page, ExecutionId::from_uuid),
            &filter,
        )
        .await?;
    Ok(Json(ListPage {
        data: page.items.iter().filter_map(ExecutionView::of).collect(),
        next_cursor: page.next.map(|id| encode_cursor(id.as_uuid())),
    })
    .into_response())
}

pub async fn get_execution(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    ExecutionPath(id, execution_id): ExecutionPath,
) -> ApiResult {
    let execution = s.service.execution(&caller.team, id, execution_id).await?;
    let view = ExecutionView::of(&execution).ok_or(ApiError::NotFound)?;
    Ok(Json(Data { data: view }).into_response())
}

/// `GET /jobs/{id}/upcoming?count=N`: the next runs the job will fire.
pub async fn upcoming_runs(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    JobPath(id): JobPath,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let count = match q.get("count") {
        Some(raw) => count(raw.parse::<i64>().ok())?,
        None => DEFAULT_UPCOMING,
    };
    let runs = s.service.upcoming(&caller.team, id, count).await?;
    Ok(Json(UpcomingList::of(&runs)).into_response())
}

/// `POST /schedules/preview`: the next runs of a schedule not yet saved.
pub async fn preview_schedule(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let object = json_body(&headers, body).await?;
    let (draft, n) = read_preview(&object).map_err(|e| ApiError::from(ServiceError::Input(e)))?;
    let n = match n {
        Some(n) => count(Some(n))?,
        None => DEFAULT_UPCOMING,
    };
    let runs = s.service.preview(&draft, n)?;
    Ok(Json(UpcomingList::of(&runs)).into_response())
}

const DEFAULT_UPCOMING: usize = 10;

/// `count`: 1 to `MAX_UPCOMING`.
fn count(n: Option<i64>) -> Result<usize, ApiError> {
    match n {
        Some(n) if (1..=MAX_UPCOMING as i64).contains(&n) => Ok(n as usize),
        _ => Err(ApiError::Validation(FieldErrors::single(
            "count",
            "must be an integer between 1 and 100",
        ))),
    }
}

/// `{id}` of `/jobs/{id}…`. A path id that is not a UUID (or not even UTF-8) names no job:
/// 404, like an unknown one.
pub struct JobPath(pub JobId);

/// `{id}` and `{execution_id}` of `/jobs/{id}/executions/{execution_id}`.
pub struct ExecutionPath(pub JobId, pub ExecutionId);

async fn path_param<T: std::str::FromStr, S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<T, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::NotFound)?;
    params
        .get(name)
        .and_then(|v| v.parse().ok())
        .ok_or(ApiError::NotFound)
}

impl<S: Send + Sync> FromRequestParts<S> for JobPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Self(path_param(parts, state, "id").await?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ExecutionPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Self(
            path_param(parts, state, "id").await?,
            path_param(parts, state, "execution_id").await?,
        ))
    }
}

fn map_cursor<C>(page: PageRequest<uuid::Uuid>, f: impl Fn(uuid::Uuid) -> C) -> PageRequest<C> {
    PageRequest {
        limit: page.limit,
        after: page.after.map(f),
    }
}

/// Reads at most `MAX_BODY_BYTES` and parses one JSON object. Content-Type is not required
/// (a forgotten `-H 'Content-Type: application/json'` in curl still works).
async fn json_body(headers: &HeaderMap, body: Body) -> Result<Map<String, Value>, ApiError> {
    parse_object(&read_body(headers, body).await?).map_err(ApiError::InvalidJson)
}

/// A request body, at most `MAX_BODY_BYTES`, received within `BODY_READ_TIMEOUT`.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    // A slow client may hold a connection, but not a request, for longer than this.
    tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout)?
    .map_err(|_| ApiError::PayloadTooLarge)
}

/// A job draft from the request body.
async fn job_draft(headers: &HeaderMap, body: Body) -> Result<JobDraft, ApiError> {
    let object = json_body(headers, body).await?;
    read_job_draft(&object).map_err(|e| ApiError::from(ServiceError::Input(e)))
}
