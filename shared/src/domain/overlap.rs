//! When a run may start and when it fires: the overlap policy (may a run start while an
//! earlier run of its job is unfinished?) and jitter (a scheduled run fires a deterministic
//! moment after its time). Both backends apply these rules inside their atomic begin of an
//! attempt (`ExecutionStore::begin_attempts`) and their firing; they only store the marker.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AttemptOutcome, FiringPolicy, Job, JobId, RunId, RunMessage, RunStatus};

/// Whether a run may start while an earlier run of the job is unfinished (an attempt in
/// flight or a retry pending).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overlap {
    /// Runs may overlap (the default, as before policies).
    #[default]
    Allow,
    /// A run that comes due meanwhile is not started; it is recorded as skipped.
    Skip,
    /// One run waits and starts when the earlier one finishes; further ones are skipped.
    BufferOne,
}

impl Overlap {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "allow" => Ok(Self::Allow),
            "skip" => Ok(Self::Skip),
            "buffer_one" => Ok(Self::BufferOne),
            _ => Err("must be one of: allow, skip, buffer_one"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Skip => "skip",
            Self::BufferOne => "buffer_one",
        }
    }
}

/// The most a scheduled run is moved: 0 to 900 seconds (SQS's longest delay, so the hosted
/// queue can hold a run back in one hop).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Jitter(u16);

impl Jitter {
    pub fn parse(secs: i64) -> Result<Self, &'static str> {
        match u16::try_from(secs) {
            Ok(s) if s <= 900 => Ok(Self(s)),
            _ => Err("must be between 0 and 900"),
        }
    }
    pub fn secs(self) -> u16 {
        self.0
    }

    /// How long after `at` the job's run scheduled then fires: a hash of the job and the
    /// time, so every backend, every delivery and every look ahead computes the same.
    pub fn offset(self, job: JobId, at: DateTime<Utc>) -> chrono::Duration {
        if self.0 == 0 {
            return chrono::Duration::zero();
        }
        let digest = Sha256::new()
            .chain_update(job.as_uuid().as_bytes())
            .chain_update(at.timestamp().to_be_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let secs = u64::from_be_bytes(first) % (u64::from(self.0) + 1);
        chrono::Duration::seconds(secs as i64)
    }
}

/// How long past an attempt's timeout the run holding a job's marker keeps it without
/// news: an executor that crashed, or a message lost, cannot hold it forever.
pub const LEASE_GRACE: Duration = Duration::from_secs(300);

/// How soon a run that waited is delivered again when it finds itself promoted but the
/// marker not yet released (the release is written right after its enqueue).
pub const PROMOTION_WAIT: Duration = Duration::from_secs(2);

/// The run holding a job's marker, until when, and under which generation (a pause bumps
/// it and drops the run's further attempts, so a lease of an older generation is free).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub run_id: RunId,
    pub generation: u64,
    #[serde(with = "chrono::serde::ts_seconds")]
    pub until: DateTime<Utc>,
}

/// What a job under an overlap policy keeps about its runs: the unfinished one, and the
/// one waiting for it (`buffer_one`). Stored on the job; the default (empty) as nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunMarker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Lease>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<RunMessage>,
}

impl RunMarker {
    pub fn is_empty(&self) -> bool {
        self.running.is_none() && self.waiting.is_none()
    }

    /// The stored form (`None` when empty).
    pub fn to_stored(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).expect("a marker serializes"))
    }

    pub fn from_stored(s: Option<&str>) -> Result<Self, serde_json::Error> {
        s.map_or(Ok(Self::default()), serde_json::from_str)
    }

    /// The lease held now by a run of `generation`, if any.
    fn live(&self, generation: u64, now: DateTime<Utc>) -> Option<Lease> {
        self.running
            .filter(|l| l.until > now && l.generation == generation)
    }

    /// The run `run` ended: the marker is freed, and the waiting run, if any, takes it
    /// (`promoted`, to be enqueued before `marker` is written). `None`: `run` does not
    /// hold the marker, nothing to write.
    pub fn release(&self, run: RunId, now: DateTime<Utc>, lease: Duration) -> Option<Released> {
        if self.running.is_none_or(|l| l.run_id != run) {
            return None;
        }
        let promoted = self.waiting.clone();
        let running = promoted.as_ref().map(|w| Lease {
            run_id: w.run_id,
            generation: w.generation,
            until: now + lease,
        });
        Some(Released {
            marker: RunMarker {
                running,
                waiting: None,
            },
            promoted,
        })
    }

    /// A retry of `run` is pending until `until`: its lease is made to cover it. `None`:
    /// nothing to write (another run holds the marker, or the lease covers it already).
    pub fn extended(&self, run: RunId, until: DateTime<Utc>) -> Option<RunMarker> {
        let lease = self
            .running
            .filter(|l| l.run_id == run && l.until < until)?;
        Some(RunMarker {
            running: Some(Lease { until, ..lease }),
            waiting: self.waiting.clone(),
        })
    }
}

/// A marker released by its run's end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    pub marker: RunMarker,
    /// The run that waited and now holds the marker: enqueue it.
    pub promoted: Option<RunMessage>,
}

/// What the overlap policy says about starting an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start it; write `Some` marker with the attempt (in the same atomic step).
    Start(Option<RunMarker>),
    /// Not started: run `running` is unfinished. Recorded as a skipped execution.
    Skip { running: RunId },
    /// Waits behind the unfinished run in the marker written (`buffer_one`); the message
    /// itself is done.
    Buffer(RunMarker),
    /// The waiting run, promoted before its marker was written: deliver it again shortly.
    Wait(Duration),
}

impl Job {
    /// When the run scheduled at `at` really fires: `at` plus the job's jitter offset.
    pub fn fires_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + self.spec.firing.jitter.offset(self.id, at)
    }

    /// How long the run starting an attempt now holds the job's marker: the attempt's
    /// timeout plus [`LEASE_GRACE`]; a retry extends it (`RunMarker::extended`).
    pub fn attempt_lease(&self) -> Duration {
        Duration::from_millis(u64::from(self.spec.request.timeout.get())) + LEASE_GRACE
    }

    /// Whether the attempt of `m` may start now, under the job's overlap policy. Only a
    /// run's first attempt is asked: its retries belong to the run that holds the marker.
    pub fn admit(&self, m: &RunMessage, now: DateTime<Utc>) -> Admission {
        let policy = self.spec.firing.overlap;
        if policy == Overlap::Allow || m.attempt > 1 {
            return Admission::Start(None);
        }
        let marker = &self.run_marker;
        let held = |run_id| Lease {
            run_id,
            generation: self.generation,
            until: now + self.attempt_lease(),
        };
        match marker.live(self.generation, now) {
            Some(l) if l.run_id == m.run_id => Admission::Start(None),
            None => Admission::Start(Some(RunMarker {
                running: Some(held(m.run_id)),
                waiting: marker.waiting.clone().filter(|w| w.run_id != m.run_id),
            })),
            Some(l) => match &marker.waiting {
                Some(w) if w.run_id == m.run_id => Admission::Wait(PROMOTION_WAIT),
                None if policy == Overlap::BufferOne => Admission::Buffer(RunMarker {
                    running: Some(l),
                    waiting: Some(m.clone()),
                }),
                _ => Admission::Skip { running: l.run_id },
            },
        }
    }
}

impl FiringPolicy {
    /// Whether runs of the job go through the marker at all.
    pub fn guards_overlap(&self) -> bool {
        self.overlap != Overlap::Allow
    }
}

impl AttemptOutcome {
    /// The record of a run not started because run `running` of its job was unfinished.
    pub fn skipped(running: RunId, now: DateTime<Utc>) -> Self {
        Self {
            status: RunStatus::Skipped,
            http_status: None,
            response_body: None,
            error: Some(format!(
                "skipped: run {running} of this job was still unfinished (overlap policy)"
            )),
            duration_ms: 0,
            finished_at: super::time::whole_seconds(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{JobSpec, TeamId};

    fn job(overlap: Overlap) -> Job {
        let created = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let draft = crate::domain::JobDraft {
            name: Some("n".into()),
            schedule_type: Some("interval".into()),
            schedule: Some("every_5m".into()),
            url: Some("https://example.com/".into()),
            ..Default::default()
        };
        let mut spec: JobSpec = crate::domain::parse_new_job(&draft, created).unwrap().0;
        spec.firing.overlap = overlap;
        Job::new(TeamId::parse("alpha").unwrap(), spec, true, created)
    }

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    /// Applies an admission's marker to the job, as a store would.
    fn apply(job: &mut Job, a: &Admission) {
        match a {
            Admission::Start(Some(m)) | Admission::Buffer(m) => job.run_marker = m.clone(),
            _ => {}
        }
    }

    #[test]
    fn allow_starts_every_run_and_writes_no_marker() {
        let j = job(Overlap::Allow);
        let m = RunMessage::scheduled(&j, at(5));
        assert_eq!(j.admit(&m, at(5)), Admission::Start(None));
    }

    #[test]
    fn skip_skips_a_run_while_another_is_unfinished_then_starts_the_next() {
        let mut j = job(Overlap::Skip);
        let first = RunMessage::scheduled(&j, at(5));
        let a = j.admit(&first, at(5));
        assert!(matches!(a, Admission::Start(Some(_))));
        apply(&mut j, &a);
        let second = RunMessage::scheduled(&j, at(10));
        assert_eq!(
            j.admit(&second, at(10)),
            Admission::Skip {
                running: first.run_id
            }
        );
        // Its retries are its own, and a redelivery of its first attempt is not refused.
        assert_eq!(j.admit(&first.retry(), at(10)), Admission::Start(None));
        assert_eq!(j.admit(&first, at(10)), Admission::Start(None));
        let released = j
            .run_marker
            .release(first.run_id, at(11), j.attempt_lease());
        j.run_marker = released.unwrap().marker;
        assert!(j.run_marker.is_empty());
        assert!(matches!(
            j.admit(&RunMessage::scheduled(&j, at(15)), at(15)),
            Admission::Start(Some(_))
        ));
    }

    #[test]
    fn buffer_one_keeps_one_waiting_run_and_promotes_it_when_the_first_ends() {
        let mut j = job(Overlap::BufferOne);
        let first = RunMessage::scheduled(&j, at(5));
        let a = j.admit(&first, at(5));
        apply(&mut j, &a);
        let second = RunMessage::scheduled(&j, at(6));
        let b = j.admit(&second, at(6));
        assert!(matches!(b, Admission::Buffer(_)), "{b:?}");
        apply(&mut j, &b);
        let third = RunMessage::scheduled(&j, at(7));
        assert!(matches!(j.admit(&third, at(7)), Admission::Skip { .. }));
        // Promoted but not yet released: it waits.
        assert!(matches!(j.admit(&second, at(7)), Admission::Wait(_)));
        let released = j
            .run_marker
            .release(first.run_id, at(8), j.attempt_lease())
            .unwrap();
        assert_eq!(released.promoted, Some(second.clone()));
        j.run_marker = released.marker;
        assert_eq!(j.admit(&second, at(8)), Admission::Start(None));
        assert_eq!(
            j.run_marker.release(first.run_id, at(8), j.attempt_lease()),
            None,
            "an old run's end frees nothing"
        );
    }

    #[test]
    fn a_lease_runs_out_and_a_pause_frees_it() {
        let mut j = job(Overlap::Skip);
        let first = RunMessage::scheduled(&j, at(5));
        let a = j.admit(&first, at(5));
        apply(&mut j, &a);
        let until = j.run_marker.running.unwrap().until;
        assert_eq!(until, at(5) + j.attempt_lease());
        let late = RunMessage::scheduled(&j, at(30));
        assert!(matches!(j.admit(&late, at(30)), Admission::Start(Some(_))));
        // A retry pending later than the lease extends it.
        let extended = j.run_marker.extended(first.run_id, at(40)).unwrap();
        assert_eq!(extended.running.unwrap().until, at(40));
        assert_eq!(j.run_marker.extended(first.run_id, at(6)), None);
        j.pause(None);
        let m = RunMessage::scheduled(&j, at(6));
        assert!(matches!(j.admit(&m, at(6)), Admission::Start(Some(_))));
    }

    #[test]
    fn jitter_is_deterministic_and_within_its_bound() {
        let id = JobId::new();
        let j = Jitter::parse(900).unwrap();
        let mut distinct = std::collections::HashSet::new();
        for k in 0..200 {
            let t = at(k);
            let o = j.offset(id, t);
            assert_eq!(o, j.offset(id, t));
            assert!((0..=900).contains(&o.num_seconds()), "{o}");
            distinct.insert(o.num_seconds());
        }
        assert!(distinct.len() > 100, "spread: {}", distinct.len());
        assert_eq!(
            Jitter::default().offset(id, at(0)),
            chrono::Duration::zero()
        );
        assert!(Jitter::parse(901).is_err() && Jitter::parse(-1).is_err());
    }
}
