use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (v7) identifier: sorting by id sorts by creation time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    };
}

uuid_id!(
    /// Identifies a job.
    JobId
);
uuid_id!(
    /// Identifies one attempt of a run.
    ExecutionId
);
uuid_id!(
    /// Identifies a run: every attempt of one scheduled or manual run shares it.
    RunId
);
uuid_id!(
    /// Identifies an audit entry (time-ordered: sorting by id sorts by time).
    AuditId
);

impl ExecutionId {
    /// The id of a run's attempt, derived from it: a duplicate delivery of the attempt has
    /// the same id (so the id is the key that records it once), and ids sort as the attempts
    /// of a job's runs do: by the run's planned time, then its attempt (the time's
    /// millisecond part is the attempt, 1 to 1000). Shaped as a UUIDv7 of that time; the rest
    /// is the run id's leading bytes and a hash of the run and attempt (runs planned for the
    /// same second, made by hand, sort in an arbitrary but fixed order).
    pub fn of(run: RunId, scheduled_at: chrono::DateTime<chrono::Utc>, attempt: u32) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6b72_6166_7465_7220_6174_7465_6d70_7473);
        let millis =
            scheduled_at.timestamp().max(0) as u64 * 1000 + u64::from(attempt.clamp(1, 1000) - 1);
        let mut name = [0u8; 20];
        name[..16].copy_from_slice(run.as_uuid().as_bytes());
        name[16..].copy_from_slice(&attempt.to_be_bytes());
        let hash = Uuid::new_v5(&NAMESPACE, &name);
        let mut rest = [0u8; 10];
        rest[..6].copy_from_slice(&run.as_uuid().as_bytes()[..6]);
        rest[6..].copy_from_slice(&hash.as_bytes()[..4]);
        Self(uuid::Builder::from_unix_timestamp_millis(millis, &rest).into_uuid())
    }
}

impl RunId {
    /// The run id of a scheduled run is derived from the job and the planned time, so a
    /// schedule that fires twice for the same time (at-least-once delivery) yields one run.
    pub fn scheduled(job: JobId, scheduled_at: chrono::DateTime<chrono::Utc>) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6b72_6166_7465_7220_6372_6f6e_2072_756e);
        let mut name = [0u8; 24];
        name[..16].copy_from_slice(job.as_uuid().as_bytes());
        name[16..].copy_from_slice(&scheduled_at.timestamp().to_be_bytes());
        Self(Uuid::new_v5(&NAMESPACE, &name))
    }
}

/// The team a key, a job and its executions belong to. 1 to 64 characters of
/// `A-Z a-z 0-9 . _ -`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamId(String);

const CONSOLE_SECRET_TEAM: &str = "#console";

#[derive(Debug, thiserror::Error)]
#[error("a team name is 1 to 64 characters of letters, digits, '.', '_' and '-'")]
pub struct InvalidTeamId;

impl TeamId {
    pub fn parse(s: &str) -> Result<Self, InvalidTeamId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidTeamId)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id the console's session secret is kept under, outside what `parse` accepts (`#`
    /// is not allowed), so no key can name it and no API call reaches it.
    pub(crate) fn console_secret() -> Self {
        Self(CONSOLE_SECRET_TEAM.to_owned())
    }

    /// A team id read back from a store: one `parse` accepts, or the console secret's.
    pub(crate) fn from_stored(s: &str) -> Result<Self, InvalidTeamId> {
        match s {
            CONSOLE_SECRET_TEAM => Ok(Self::console_secret()),
            other => Self::parse(other),
        }
    }
}

impl TryFrom<String> for TeamId {
    type Error = InvalidTeamId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<TeamId> for String {
    fn from(t: TeamId) -> String {
        t.0
    }
}

impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TeamId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_scheduled_run_id_depends_only_on_job_and_time() {
        let job = JobId::new();
        let at = chrono::Utc.with_ymd_and_hms(2025, 1, 15, 10, 5, 0).unwrap();
        assert_eq!(RunId::scheduled(job, at), RunId::scheduled(job, at));
        assert_ne!(
            RunId::scheduled(job, at),
            RunId::scheduled(job, at + chrono::Duration::seconds(1))
        );
        assert_ne!(
            RunId::scheduled(job, at),
            RunId::scheduled(JobId::new(), at)
        );
    }

    #[test]
    fn an_attempts_execution_id_is_derived_from_its_run_and_attempt() {
        let at = chrono::Utc.with_ymd_and_hms(2025, 1, 15, 10, 5, 0).unwrap();
        let run = RunId::scheduled(JobId::new(), at);
        assert_eq!(ExecutionId::of(run, at, 1), ExecutionId::of(run, at, 1));
        assert_ne!(ExecutionId::of(run, at, 1), ExecutionId::of(run, at, 2));
        let other = RunId::scheduled(JobId::new(), at);
        assert_ne!(ExecutionId::of(run, at, 1), ExecutionId::of(other, at, 1));
        assert_eq!(ExecutionId::of(run, at, 1).as_uuid().get_version_num(), 7);
    }

    #[test]
    fn execution_ids_sort_by_planned_time_then_attempt() {
        let at = chrono::Utc.with_ymd_and_hms(2025, 1, 15, 10, 5, 0).unwrap();
        let later = at + chrono::Duration::seconds(1);
        let run = RunId::scheduled(JobId::new(), at);
        let manual = RunId::new();
        let mut ids = vec![
            ExecutionId::of(manual, later, 1),
            ExecutionId::of(run, at, 3),
            ExecutionId::of(run, at, 1),
            ExecutionId::of(manual, later, 2),
            ExecutionId::of(run, at, 2),
        ];
        ids.sort();
        assert_eq!(
            ids,
            [
                ExecutionId::of(run, at, 1),
                ExecutionId::of(run, at, 2),
                ExecutionId::of(run, at, 3),
                ExecutionId::of(manual, later, 1),
                ExecutionId::of(manual, later, 2),
            ]
        );
    }

    #[test]
    fn new_ids_sort_in_creation_order() {
        let ids: Vec<JobId> = (0..1000).map(|_| JobId::new()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn team_names_are_checked() {
        assert!(TeamId::parse("default").is_ok());
        assert!(TeamId::parse("acme-prod_2.eu").is_ok());
        assert!(TeamId::parse("").is_err());
        assert!(TeamId::parse("has space").is_err());
        assert!(TeamId::parse(&"a".repeat(65)).is_err());
    }
}
