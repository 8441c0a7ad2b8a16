//! The firing rule, for every backend: a job whose schedule comes due at `at` becomes its
//! run plus its next fire time. The embedded scheduler applies it to the jobs it claims, the
//! hosted executor to the schedule ticks EventBridge delivers; both write back the job it
//! returns (conditionally on the version it read).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Job, RunMessage};
use crate::schedule::ScheduleType;

/// How late a scheduled run may still be sent. A run found later than this (the service
/// was down) was missed: it is skipped, and the job moves on to its next fire time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Send it however late (a tick that EventBridge delivered late still fires).
    Always,
    Within(Duration),
}

/// What firing a job did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firing {
    /// Older missed runs passed over for a later one (with a job's own catch-up window).
    pub skipped: u32,
    /// The job after firing: `next_run_at` moved on past `now`, its version bumped. A
    /// `once` job is disabled, which changes its state, so its `updated_at` becomes `now`;
    /// a recurring job's `updated_at` is left alone (only its next fire time moved).
    pub job: Job,
    /// The run made for `at`; `None` when it was missed.
    pub run: Option<RunMessage>,
}

/// A run to come, and when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpcomingRun {
    pub scheduled_at: DateTime<Utc>,
    pub fires: FireTime,
}

/// When a run to come fires, with jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FireTime {
    /// At its scheduled time (no jitter).
    OnTime,
    /// At this time (a job's jitter offset).
    At(DateTime<Utc>),
    /// At a moment from its scheduled time up to this one (a preview: the offset depends
    /// on the job's id, which a schedule not yet saved has not).
    By(DateTime<Utc>),
}

impl UpcomingRun {
    /// A previewed run of a schedule with `jitter`.
    pub fn previewed(scheduled_at: DateTime<Utc>, jitter: super::Jitter) -> Self {
        let fires = match jitter.secs() {
            0 => FireTime::OnTime,
            s => FireTime::By(scheduled_at + chrono::Duration::seconds(i64::from(s))),
        };
        Self {
            scheduled_at,
            fires,
        }
    }
}

/// The most runs one backfill makes.
pub const MAX_BACKFILL: usize = 100;

/// A past time range to run a job's scheduled times in: `from` inclusive, `until`
/// exclusive, `until` not after now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackfillRange {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Job {
    /// The job's scheduled times in `range`, each as the run it would have been (the same
    /// run id as its scheduled run, so a time that already ran is not sent again). An
    /// error when they are more than `MAX_BACKFILL`.
    pub fn backfill(&self, range: BackfillRange) -> Result<Vec<RunMessage>, &'static str> {
        let schedule = &self.spec.schedule;
        let first = match schedule.interval_seconds() {
            // An interval's times are on the job's own grid (through its next run, or its
            // creation): the first of them at or after `from`.
            Some(step) => {
                let anchor = self.next_run_at.unwrap_or(self.created_at);
                let step = i64::from(step);
                let k = (range.from - anchor).num_seconds().div_euclid(step);
                let mut t = anchor + chrono::Duration::seconds(k * step);
                if t < range.from {
                    t += chrono::Duration::seconds(step);
                }
                Some(t)
            }
            None => schedule.first_run(range.from - chrono::Duration::seconds(1)),
        };
        let times: Vec<_> = schedule
            .following(first, MAX_BACKFILL + 1)
            .into_iter()
            .take_while(|t| *t < range.until)
            .collect();
        if times.len() > MAX_BACKFILL {
            return Err("covers more than 100 runs");
        }
        Ok(times
            .into_iter()
            .map(|t| RunMessage::scheduled(self, t))
            .collect())
    }

    /// When the job runs next: `next_run_at` as stored, or, when that has passed, the
    /// schedule's first run after `now` on the same grid. The hosted executor does not
    /// store a recurring job's next run as it fires (a write per run saved), so there the
    /// stored one is the first run after the job's last change; the embedded scheduler
    /// moves it on as it fires, and it is past only while a due run is being fired.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self.next_run_at?;
        if next > now || self.spec.schedule.kind() == ScheduleType::Once {
            return Some(next);
        }
        self.spec.schedule.next_run(next, now)
    }

    /// The job as it is at `now`, to be shown or exported: its next run as `next_run` says.
    pub fn as_of(mut self, now: DateTime<Utc>) -> Self {
        self.next_run_at = self.next_run(now);
        self
    }

    /// The job with `last_run_at` the later of its stored one (written when a run's end
    /// changed the job, `run_end_changes`) and the planned time of the newest of `newest`
    /// (its newest finished attempts, newest first) that is not a skipped run.
    pub fn ran(mut self, newest: &[super::Execution]) -> Self {
        let attempt = newest
            .iter()
            .find(|e| {
                e.outcome
                    .as_ref()
                    .is_some_and(|o| o.status != super::RunStatus::Skipped)
            })
            .map(|e| e.scheduled_at);
        self.last_run_at = self.last_run_at.max(attempt);
        self
    }

    /// The next `n` runs the job will fire (none while paused): from `next_run_at` on,
    /// through the same engine as the preview, each with when it really fires.
    pub fn upcoming(&self, n: usize) -> Vec<UpcomingRun> {
        if !self.enabled {
            return Vec::new();
        }
        let jittered = self.spec.firing.jitter.secs() > 0;
        self.spec
            .schedule
            .following(self.next_run_at, n)
            .into_iter()
            .map(|t| UpcomingRun {
                scheduled_at: t,
                fires: match jittered {
                    true => FireTime::At(self.fires_at(t)),
                    false => FireTime::OnTime,
                },
            })
            .collect()
    }

    /// Fires the job's run scheduled at `at`, at `now` (which may be a little before `at`:
    /// the embedded scheduler claims jobs ahead of time). `deployment` is how late a run may
    /// start unless the job says (`catchup_window_s`): then of the runs missed up to now only
    /// the most recent may start, late, with its own `scheduled_at`, if it is within the
    /// window; the older ones are skipped and counted.
    /// (It takes the job: a burst fires thousands, and a copy of each would cost.)
    pub fn fire(self, at: DateTime<Utc>, now: DateTime<Utc>, deployment: CatchUp) -> Firing {
        let Some(window) = self.spec.firing.catch_up else {
            return self.fire_at(at, now, deployment, 0);
        };
        let (latest, skipped) = self.latest_missed(at, now);
        let within = CatchUp::Within(Duration::from_secs(u64::from(window.secs())));
        self.fire_at(latest, now, within, skipped)
    }

    /// The most recent of the runs from `at` that are due by `now`, and how many before it.
    fn latest_missed(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> (DateTime<Utc>, u32) {
        const BOUND: u32 = 100_000;
        let schedule = &self.spec.schedule;
        let (mut latest, mut skipped) = (at, 0);
        while skipped < BOUND {
            match schedule.next_run(latest, latest) {
                Some(next) if next <= now => {
                    latest = next;
                    skipped += 1;
                }
                _ => break,
            }
        }
        (latest, skipped)
    }

    fn fire_at(
        mut self,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        catch_up: CatchUp,
        skipped: u32,
    ) -> Firing {
        let late = (now - at).to_std().unwrap_or_default();
        let in_time = match catch_up {
            CatchUp::Always => true,
            CatchUp::Within(grace) => late <= grace,
        };
        let run = in_time.then(|| RunMessage::scheduled(&self, at));
        self.version += 1;
        if self.spec.schedule.kind() == ScheduleType::Once {
            self.enabled = false;
            self.next_run_at = None;
            self.updated_at = super::time::whole_seconds(now);
        } else {
            self.next_run_at = self.spec.schedule.next_run(at, now);
        }
        Firing {
            skipped,
            run,
            job: self,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{JobSpec, TeamId, Trigger};

    fn job(kind: &str, schedule: &str, created: DateTime<Utc>) -> Job {
        let draft = crate::domain::JobDraft {
            name: Some("n".into()),
            schedule_type: Some(kind.into()),
            schedule: Some(schedule.into()),
            url: Some("https://example.com/".into()),
            ..Default::default()
        };
        let spec: JobSpec = crate::domain::parse_new_job(&draft, created).unwrap().0;
        Job::new(TeamId::parse("alpha").unwrap(), spec, true, created)
    }

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
    }

    #[test]
    fn a_recurring_job_makes_its_run_and_moves_on() {
        let j = job("interval", "every_5m", t(10, 0, 0));
        let at = j.next_run_at.unwrap();
        let f = j
            .clone()
            .fire(at, at, CatchUp::Within(Duration::from_secs(60)));
        let run = f.run.unwrap();
        assert_eq!(run.scheduled_at, at);
        assert_eq!(run.trigger, Trigger::Schedule);
        assert_eq!(run.attempt, 1);
        assert_eq!(f.job.next_run_at, Some(at + chrono::Duration::minutes(5)));
        assert_eq!(f.job.version, j.version + 1);
        assert!(f.job.enabled);
        assert_eq!(
            f.job.updated_at, j.updated_at,
            "only the next fire time moved"
        );
    }

    #[test]
    fn a_once_job_fires_and_disables_itself_as_a_change_of_state() {
        let j = job("once", "2026-03-01T12:00:00Z", t(10, 0, 0));
        let f = j.clone().fire(t(12, 0, 0), t(12, 0, 1), CatchUp::Always);
        assert!(f.run.is_some());
        assert!(!f.job.enabled);
        assert_eq!(f.job.next_run_at, None);
        assert_eq!(f.job.updated_at, t(12, 0, 1));
    }

    #[test]
    fn a_run_later_than_the_catch_up_window_is_skipped_and_the_job_moves_past_now() {
        let j = job("interval", "every_5m", t(10, 0, 0));
        let at = j.next_run_at.unwrap();
        let now = at + chrono::Duration::minutes(12);
        let f = j
            .clone()
            .fire(at, now, CatchUp::Within(Duration::from_secs(60)));
        assert_eq!(f.run, None);
        assert!(f.job.next_run_at.unwrap() > now);
        assert!(j.clone().fire(at, now, CatchUp::Always).run.is_some());
    }

    #[test]
    fn a_backfill_makes_the_scheduled_runs_of_its_range() {
        let j = job("interval", "every_5m", t(10, 0, 0));
        let runs = j
            .backfill(BackfillRange {
                from: t(10, 5, 0),
                until: t(10, 20, 0),
            })
            .unwrap();
        let times: Vec<_> = runs.iter().map(|r| r.scheduled_at).collect();
        assert_eq!(times, [t(10, 5, 0), t(10, 10, 0), t(10, 15, 0)]);
        assert_eq!(
            runs[0],
            RunMessage::scheduled(&j, t(10, 5, 0)),
            "the scheduled run's id"
        );
        let too_many = j.backfill(BackfillRange {
            from: t(10, 0, 0),
            until: t(20, 0, 0),
        });
        assert_eq!(too_many, Err("covers more than 100 runs"));
    }

    #[test]
    fn with_a_catch_up_window_the_most_recent_missed_run_fires_once_late() {
        let mut j = job("interval", "every_5m", t(10, 0, 0));
        j.spec.firing.catch_up = Some(crate::domain::CatchUpWindow::parse(600).unwrap());
        let at = j.next_run_at.unwrap(); // 10:05
        let now = t(10, 27, 0); // missed 10:05 .. 10:25
        let f = j
            .clone()
            .fire(at, now, CatchUp::Within(Duration::from_secs(60)));
        assert_eq!(f.skipped, 4);
        assert_eq!(
            f.run.unwrap().scheduled_at,
            t(10, 25, 0),
            "the latest, with its own time"
        );
        assert_eq!(f.job.next_run_at, Some(t(10, 30, 0)));
        // Outside the window, nothing starts.
        j.spec.firing.catch_up = Some(crate::domain::CatchUpWindow::parse(60).unwrap());
        assert_eq!(j.clone().fire(at, now, CatchUp::Always).run, None);
    }

    #[test]
    fn a_run_has_the_same_id_however_often_its_time_fires() {
        let j = job("cron", "*/5 * * * *", t(10, 0, 0));
        let at = j.next_run_at.unwrap();
        let first = j.clone().fire(at, at, CatchUp::Always).run.unwrap();
        let again = j
            .fire(at, at + chrono::Duration::seconds(9), CatchUp::Always)
            .run
            .unwrap();
        assert_eq!(first.run_id, again.run_id);
    }
}
