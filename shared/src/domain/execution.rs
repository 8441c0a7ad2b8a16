use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ExecutionId, Job, JobId, RunId, TeamId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Success,
    Failed,
    /// An execution only, never a job's `last_status`: a run its job's overlap policy did
    /// not start (an earlier run was unfinished).
    Skipped,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failed" => Some(Self::Failed),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "schedule" => Some(Self::Schedule),
            "manual" => Some(Self::Manual),
            _ => None,
        }
    }
}

/// One attempt of a run waiting in the run queue: the message the scheduler (or a trigger,
/// or a retry) enqueues and the executor consumes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMessage {
    pub team: TeamId,
    pub job_id: JobId,
    pub run_id: RunId,
    pub trigger: Trigger,
    pub scheduled_at: DateTime<Utc>,
    pub attempt: u32,
    /// The job's generation when the run was made; a pause bumps it and so drops the run.
    pub generation: u64,
}

impl RunMessage {
    /// The first attempt of the job's run scheduled at `at`. Its id is derived from the job
    /// and the time (`RunId::scheduled`), so a time that fires twice is one run.
    pub fn scheduled(job: &Job, at: DateTime<Utc>) -> Self {
        Self::first_attempt(job, RunId::scheduled(job.id, at), Trigger::Schedule, at)
    }

    /// The first attempt of a run triggered by hand at `now`: a fresh run id.
    pub fn manual(job: &Job, now: DateTime<Utc>) -> Self {
        Self::first_attempt(job, RunId::new(), Trigger::Manual, now)
    }

    /// The id of the attempt this message stands for (`ExecutionId::of` its run and
    /// attempt): the key its record is kept under.
    pub fn execution_id(&self) -> super::ExecutionId {
        super::ExecutionId::of(self.run_id, self.scheduled_at, self.attempt)
    }

    /// The next attempt of the same run.
    pub fn retry(&self) -> Self {
        Self {
            attempt: self.attempt + 1,
            ..self.clone()
        }
    }

    fn first_attempt(job: &Job, run_id: RunId, trigger: Trigger, at: DateTime<Utc>) -> Self {
        Self {
            team: job.team.clone(),
            job_id: job.id,
            run_id,
            trigger,
            scheduled_at: at,
            attempt: 1,
            generation: job.generation,
        }
    }
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub status: RunStatus,
    pub http_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub finished_at: DateTime<Utc>,
}

impl AttemptOutcome {
    /// The record of an attempt found in flight after its executor stopped (a crash, a
    /// restart): it may or may not have reached the target, and it is never sent again.
    pub fn interrupted(started_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            status: RunStatus::Failed,
            http_status: None,
            response_body: None,
            error: Some("interrupted: the executor stopped before the attempt finished".to_owned()),
            duration_ms: (now - started_at).num_milliseconds().max(0) as u64,
            finished_at: super::time::whole_seconds(now),
        }
    }
}

/// One record per attempt. `outcome` is `None` while the attempt is in flight: the record
/// is written before the request is sent, so a second delivery of the same message finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub id: ExecutionId,
    pub team: TeamId,
    pub job_id: JobId,
    pub run_id: RunId,
    pub trigger: Trigger,
    pub scheduled_at: DateTime<Utc>,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub outcome: Option<AttemptOutcome>,
}

/// A message on a run queue that carries text (SQS): what the executor is handed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueuedMessage {
    /// An attempt of a run, not to be started before `deliver_at` (a queue's own delay is
    /// limited: SQS delays at most 15 minutes, so a longer wait takes several hops).
    Run {
        #[serde(flatten)]
        run: RunMessage,
        deliver_at: DateTime<Utc>,
    },
    /// A job's schedule fired (the input of an EventBridge Scheduler schedule): the executor
    /// turns it into the run it stands for, if the job still fires then.
    Tick {
        team: TeamId,
        job_id: JobId,
        scheduled_at: DateTime<Utc>,
    },
}
