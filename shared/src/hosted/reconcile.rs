//! The slow sweep (the reconcile function, every 5 minutes): the safety net behind the inline
//! sync and the stream sync. A sweep reads every job's schedules once and repairs what
//! drifted, then lists every schedule and removes the ones no job wants. It is paced under a
//! configured Scheduler call rate, works in slices that fit one invocation (its place kept in
//! the state store, so the next invocation goes on from there), and starts again only once
//! its period has passed: one `GetSchedule` per schedule per period, however many jobs. The
//! listing (a schedule's name holds only its job's id, so each listed schedule is read for
//! its team) is done by one sweep in `ORPHAN_SWEEP_EVERY`: deletions reach the Scheduler
//! inline and through the stream, so an orphan is rare.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::domain::{JobId, TeamId};
use crate::ports::{
    Clock, JobStore, PageRequest, Repair, ScheduleReconciler, StateStore, StoreError, StoreResult,
};

/// The name of the sweep's state in the state store.
const STATE: &str = "schedule-sweep";
/// Jobs read per page of the jobs phase.
const PAGE: u32 = 100;
/// One sweep in this many also lists the schedules and removes the ones no job wants.
pub const ORPHAN_SWEEP_EVERY: u64 = 7;

/// What one reconcile invocation did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub jobs: u64,
    pub schedules_repaired: u64,
    pub orphans_removed: u64,
    pub executions_pruned: u64,
    /// Scheduler API calls made (reads, writes, listings).
    pub scheduler_calls: u64,
    /// A new sweep started in this invocation.
    pub started: bool,
    /// The sweep reached its end in this invocation.
    pub finished: bool,
}

/// How fast and how often the sweep goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SweepPace {
    /// Scheduler calls per second, at most (averaged: a job's calls, then the pause they
    /// earn).
    pub calls_per_sec: u32,
    /// A sweep starts at most once per period.
    pub period: Duration,
    /// How long one invocation works before it saves its place and returns.
    pub slice: Duration,
}

/// Where a sweep is, kept between invocations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SweepState {
    /// When the sweep under way, or the last one, started.
    started_at: Option<DateTime<Utc>>,
    /// The sweep's number (the first is 0).
    #[serde(default)]
    number: u64,
    phase: Phase,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
enum Phase {
    /// No sweep under way.
    #[default]
    Idle,
    /// Reading jobs, after this one (team, id).
    Jobs { after: Option<(String, String)> },
    /// Listing schedules, from this page token.
    Schedules { token: Option<String> },
}

/// When to start a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Go on with the sweep under way; start one if the period has passed since the last.
    WhenDue,
    /// Start a new sweep now and run it to the end (operators, tests).
    NowToTheEnd,
}

pub struct Sweep<'a> {
    pub jobs: &'a dyn JobStore,
    pub schedules: &'a dyn ScheduleReconciler,
    pub state: &'a dyn StateStore,
    pub clock: &'a dyn Clock,
    pub pace: SweepPace,
}

/// Spends Scheduler calls no faster than the pace allows.
struct Pacer {
    per_call: Duration,
    next: Instant,
}

impl Pacer {
    fn new(calls_per_sec: u32) -> Self {
        Self {
            per_call: Duration::from_secs(1) / calls_per_sec.max(1),
            next: Instant::now(),
        }
    }

    /// `calls` were just made: wait until they are paid for.
    async fn spent(&mut self, calls: u64, report: &mut ReconcileReport) {
        report.scheduler_calls += calls;
        self.next = self.next.max(Instant::now() - self.per_call) + self.per_call * calls as u32;
        tokio::time::sleep_until(self.next.into()).await;
    }
}

impl Sweep<'_> {
    /// One invocation's share of the sweep. `prune` runs when a sweep starts.
    pub async fn run<F, Fut>(&self, start: Start, prune: F) -> StoreResult<ReconcileReport>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<u64>>,
    {
        let now = self.clock.now();
        let mut state = self.load().await?;
        let mut report = ReconcileReport::default();
        let due = state
            .started_at
            .is_none_or(|t| (now - t).to_std().unwrap_or_default() >= self.pace.period);
        if start == Start::NowToTheEnd || (state.phase == Phase::Idle && due) {
            state = SweepState {
                started_at: Some(now),
                number: state.started_at.map_or(0, |_| state.number + 1),
                phase: Phase::Jobs { after: None },
            };
            report.started = true;
            self.save(&state).await?;
            report.executions_pruned = prune().await?;
        }
        let running = state.phase != Phase::Idle;
        let deadline = (start == Start::WhenDue).then(|| Instant::now() + self.pace.slice);
        let mut pacer = Pacer::new(self.pace.calls_per_sec);
        while state.phase != Phase::Idle && deadline.is_none_or(|d| Instant::now() < d) {
            state.phase = self
                .step(&state.phase, deadline, &mut pacer, &mut report)
                .await?;
            if state.phase == (Phase::Schedules { token: None })
                && state.number % ORPHAN_SWEEP_EVERY != 0
            {
                state.phase = Phase::Idle;
            }
            self.save(&state).await?;
        }
        report.finished = running && state.phase == Phase::Idle;
        info!(?report, "reconcile invocation finished");
        Ok(report)
    }

    /// One page of the phase the sweep is in (the jobs phase stops early at the deadline,
    /// after the job it is on); returns the phase after it.
    async fn step(
        &self,
        phase: &Phase,
        deadline: Option<Instant>,
        pacer: &mut Pacer,
        report: &mut ReconcileReport,
    ) -> StoreResult<Phase> {
        match phase {
            Phase::Idle => Ok(Phase::Idle),
            Phase::Jobs { after } => {
                let after = after.as_ref().map(|(t, i)| cursor(t, i)).transpose()?;
                let page = self
                    .jobs
                    .scan(PageRequest {
                        limit: Some(PAGE),
                        after,
                    })
                    .await?;
                for job in &page.items {
                    let r = self.schedules.repair(job).await?;
                    report.jobs += 1;
                    report.schedules_repaired += r.changed;
                    pacer.spent(r.calls, report).await;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        // The scan goes on after the last job it returned: this one.
                        return Ok(Phase::Jobs {
                            after: Some((job.team.as_str().to_owned(), job.id.to_string())),
                        });
                    }
                }
                Ok(match page.next {
                    Some((team, id)) => Phase::Jobs {
                        after: Some((team.as_str().to_owned(), id.to_string())),
                    },
                    None => Phase::Schedules { token: None },
                })
            }
            Phase::Schedules { token } => {
                let page = match self.schedules.list(token.clone()).await {
                    Ok(page) => page,
                    // A page token kept too long is refused: list again from the start.
                    Err(e) if token.is_some() => {
                        warn!(error = %e, "schedule listing refused its page token; listing again");
                        return Ok(Phase::Schedules { token: None });
                    }
                    Err(e) => return Err(e),
                };
                pacer.spent(1, report).await;
                for name in &page.names {
                    let r = self.remove_if_unwanted(name).await?;
                    report.orphans_removed += r.changed;
                    pacer.spent(r.calls, report).await;
                }
                Ok(match page.next {
                    Some(token) => Phase::Schedules { token: Some(token) },
                    None => Phase::Idle,
                })
            }
        }
    }

    /// Deletes a listed schedule that no job wants: its job is gone, or no longer wants
    /// this name. The job is looked up, with a consistent read, by the team the schedule's
    /// input names.
    async fn remove_if_unwanted(&self, name: &str) -> StoreResult<Repair> {
        let mut r = Repair::default();
        let Some(id) = self.schedules.job_of(name) else {
            return Ok(r);
        };
        r.calls += 1;
        let team = self.schedules.owner(name).await?;
        let job = match &team {
            Some(team) => self.jobs.get(team, id).await?,
            None => None,
        };
        if job.is_some_and(|j| self.schedules.wanted_names(&j).iter().any(|n| n == name)) {
            return Ok(r);
        }
        r.calls += 1;
        if self.schedules.remove(name).await? {
            r.changed += 1;
        }
        Ok(r)
    }

    async fn load(&self) -> StoreResult<SweepState> {
        match self.state.load(STATE).await? {
            None => Ok(SweepState::default()),
            Some(text) => serde_json::from_str(&text).or_else(|e| {
                warn!(error = %e, "unreadable sweep state: starting afresh");
                Ok(SweepState::default())
            }),
        }
    }

    async fn save(&self, state: &SweepState) -> StoreResult<()> {
        let text = serde_json::to_string(state).map_err(StoreError::backend)?;
        self.state.save(STATE, &text).await
    }
}

fn cursor(team: &str, id: &str) -> StoreResult<(TeamId, JobId)> {
    let team =
        TeamId::parse(team).map_err(|e| StoreError::Corrupt(format!("sweep cursor: {e}")))?;
    let id = id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("sweep cursor: job id {id}")))?;
    Ok((team, id))
}
