//! The audit log at the HTTP edge: every change a caller asks for is recorded by the gate,
//! done or refused (`record`), and read back with `GET /audit`; and the team's signing
//! secret, shown to write keys and rotated through the API (a change like any other).

use axum::Extension;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::error;

use super::query::{Pairs, audit_filter, list_params};
use super::views::{ListPage, encode_cursor};
use super::{ApiError, ApiState, Caller};
use crate::domain::{
    AuditAction, AuditEntry, AuditId, AuditOutcome, JobId, KeyPrefix, TeamId, TeamSecrets, time,
};
use crate::service::teams::{ensure_team, rotate_signing_secret as rotate};

type ApiResult = Result<Response, ApiError>;

/// A change asked by an authenticated caller, as the gate saw it before handling it.
pub struct Asked {
    pub team: TeamId,
    pub key_prefix: KeyPrefix,
    pub action: AuditAction,
    pub job_id: Option<JobId>,
    pub source: String,
}

impl Asked {
    /// The change `method path` asks for, if it is one, by `caller` from `source` (asked
    /// only for a change).
    pub fn of(
        caller: &Caller,
        method: &str,
        path: &str,
        source: impl FnOnce() -> String,
    ) -> Option<Self> {
        if method == "GET" || method == "HEAD" {
            return None;
        }
        let (action, job_id) = AuditAction::of_request(method, path)?;
        Some(Self {
            team: caller.team.clone(),
            key_prefix: caller.key_prefix.clone(),
            action,
            job_id,
            source: source(),
        })
    }
}

/// How a request ended, as the audit log keeps it.
pub struct Answered {
    pub status: u16,
    /// A create's new job (from its `Location`).
    pub created: Option<JobId>,
}

impl Answered {
    pub fn of(response: &Response) -> Self {
        let created = response
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|id| id.parse().ok());
        Self {
            status: response.status().as_u16(),
            created,
        }
    }
}

/// Records how an asked change ended. A failure to record is logged, not returned: the
/// change itself stands.
pub async fn record(
    state: &ApiState,
    asked: Asked,
    answered: Answered,
    request_id: &str,
    at: DateTime<Utc>,
) {
    let created = answered.created;
    let entry = AuditEntry {
        id: AuditId::new(),
        team: asked.team,
        at: time::whole_seconds(at),
        action: asked.action,
        job_id: asked.job_id.or(created),
        key_prefix: Some(asked.key_prefix),
        outcome: AuditOutcome(answered.status),
        request_id: request_id.to_owned(),
        source: asked.source,
    };
    if let Err(e) = state.audit.record(&entry).await {
        error!(error = %e, action = entry.action.as_str(), "could not record the audit entry");
    }
}

#[derive(Serialize)]
pub struct AuditView {
    id: AuditId,
    #[serde(serialize_with = "time::serialize")]
    at: DateTime<Utc>,
    action: &'static str,
    job_id: Option<JobId>,
    key_prefix: Option<String>,
    status: u16,
    outcome: &'static str,
    request_id: String,
    source: String,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            action: e.action.as_str(),
            job_id: e.job_id,
            key_prefix: e.key_prefix.as_ref().map(|k| k.as_str().to_owned()),
            status: e.outcome.0,
            outcome: e.outcome.label(),
            request_id: e.request_id.clone(),
            source: e.source.clone(),
        }
    }
}

/// `GET /audit?job_id=&from=&until=&limit=&cursor=`: the team's entries, newest first.
pub async fn list_audit(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<Pairs>,
) -> ApiResult {
    let (page, filter) = list_params(&q, Some(20), audit_filter)?;
    let page = crate::ports::PageRequest {
        limit: page.limit,
        after: page.after.map(AuditId::from_uuid),
    };
    let page = s.audit.list(&caller.team, page, &filter).await?;
    Ok(Json(ListPage {
        data: page.items.iter().map(AuditView::from).collect(),
        next_cursor: page.next.map(|id| encode_cursor(id.as_uuid())),
    })
    .into_response())
}

#[derive(Serialize)]
struct SecretView<'a> {
    secret: &'a str,
    previous: Option<&'a str>,
    #[serde(serialize_with = "time::serialize_opt")]
    previous_valid_until: Option<DateTime<Utc>>,
}

fn secret_view(t: &TeamSecrets) -> Response {
    Json(super::views::Data {
        data: SecretView {
            secret: t.current.as_str(),
            previous: t.previous.as_ref().map(|(p, _)| p.as_str()),
            previous_valid_until: t.previous.as_ref().map(|(_, until)| *until),
        },
    })
    .into_response()
}

/// `GET /team/signing-secret` (write keys only): the secret webhooks are signed with.
pub async fn show_signing_secret(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    let team = ensure_team(s.teams.as_ref(), &caller.team, s.clock.now()).await?;
    Ok(secret_view(&team.secrets))
}

/// `POST /team/signing-secret/rotate`: a new secret; the old one signs for 24 more hours.
pub async fn rotate_signing_secret(
    State(s): State<ApiState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult {
    let rotated = rotate(s.teams.as_ref(), &caller.team, s.clock.now()).await?;
    Ok(secret_view(&rotated))
}
