//! The audit log: one entry per change asked of the API (and so of the console and MCP,
//! which go through it), made or refused: when, which key, what, which job, the outcome,
//! the request id, the source address. Entries are per team and kept for the deployment's
//! retention (`KRAFTER_AUDIT_RETENTION_DAYS`, 90 days by default).

use chrono::{DateTime, Utc};

use super::{AuditId, JobId, KeyPrefix, TeamId};

/// What a request asked to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    CreateJob,
    UpdateJob,
    DeleteJob,
    PauseJob,
    ResumeJob,
    TriggerJob,
    BackfillJob,
    RotateSecret,
}

impl AuditAction {
    pub const ALL: [Self; 8] = [
        Self::CreateJob,
        Self::UpdateJob,
        Self::DeleteJob,
        Self::PauseJob,
        Self::ResumeJob,
        Self::TriggerJob,
        Self::BackfillJob,
        Self::RotateSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateJob => "job.create",
            Self::UpdateJob => "job.update",
            Self::DeleteJob => "job.delete",
            Self::PauseJob => "job.pause",
            Self::ResumeJob => "job.resume",
            Self::TriggerJob => "job.trigger",
            Self::BackfillJob => "job.backfill",
            Self::RotateSecret => "team.rotate_secret",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The change a request asks for, from its method and its path under `/api/v1/cron`
    /// (`/jobs`, `/jobs/{id}`, `/jobs/{id}/pause`, ...), with the job it names. `None`: not
    /// a change (a read, a preview, a path that names nothing).
    pub fn of_request(method: &str, path: &str) -> Option<(Self, Option<JobId>)> {
        let rest = path.strip_prefix("/api/v1/cron/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let job = |s: &str| s.parse::<JobId>().ok();
        match (method, parts.as_slice()) {
            ("POST", ["jobs"]) => Some((Self::CreateJob, None)),
            ("PATCH", ["jobs", id]) => Some((Self::UpdateJob, Some(job(id)?))),
            ("DELETE", ["jobs", id]) => Some((Self::DeleteJob, Some(job(id)?))),
            ("POST", ["jobs", id, verb]) => {
                let action = match *verb {
                    "pause" => Self::PauseJob,
                    "resume" => Self::ResumeJob,
                    "trigger" => Self::TriggerJob,
                    "backfill" => Self::BackfillJob,
                    _ => return None,
                };
                Some((action, Some(job(id)?)))
            }
            ("POST", ["team", "signing-secret", "rotate"]) => Some((Self::RotateSecret, None)),
            _ => None,
        }
    }
}

/// How the request ended: its HTTP status (2xx: done; 4xx: refused, nothing changed; 5xx:
/// failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditOutcome(pub u16);

impl AuditOutcome {
    pub fn label(self) -> &'static str {
        match self.0 {
            200..=299 => "done",
            400..=499 => "refused",
            _ => "failed",
        }
    }
}

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub team: TeamId,
    pub at: DateTime<Utc>,
    pub action: AuditAction,
    /// The job the request named; a create's is the job it made, when it made one.
    pub job_id: Option<JobId>,
    /// The key that asked (`None`: an operator command on the machine, `source: "cli"`).
    pub key_prefix: Option<KeyPrefix>,
    pub outcome: AuditOutcome,
    pub request_id: String,
    /// The client's address, or `cli`.
    pub source: String,
}

/// Which entries a listing wants: all of them, or one job's, in a time range (`from`
/// inclusive, `until` exclusive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub job_id: Option<JobId>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.job_id.is_none_or(|j| e.job_id == Some(j))
            && self.from.is_none_or(|f| e.at >= f)
            && self.until.is_none_or(|u| e.at < u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_named_by_its_method_and_path() {
        let id = JobId::new();
        let p = |rest: &str| format!("/api/v1/cron/{rest}");
        for (method, path, want) in [
            ("POST", p("jobs"), Some((AuditAction::CreateJob, None))),
            (
                "PATCH",
                p(&format!("jobs/{id}")),
                Some((AuditAction::UpdateJob, Some(id))),
            ),
            (
                "DELETE",
                p(&format!("jobs/{id}")),
                Some((AuditAction::DeleteJob, Some(id))),
            ),
            (
                "POST",
                p(&format!("jobs/{id}/pause")),
                Some((AuditAction::PauseJob, Some(id))),
            ),
            (
                "POST",
                p(&format!("jobs/{id}/backfill")),
                Some((AuditAction::BackfillJob, Some(id))),
            ),
            ("GET", p(&format!("jobs/{id}")), None),
            ("POST", p("schedules/preview"), None),
            ("POST", p("jobs/not-a-uuid/pause"), None),
            ("POST", p(&format!("jobs/{id}/explode")), None),
            ("POST", "/api/v1/health".to_owned(), None),
        ] {
            assert_eq!(
                AuditAction::of_request(method, &path),
                want,
                "{method} {path}"
            );
        }
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
    }
}
