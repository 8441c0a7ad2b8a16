//! Tags, and the filters of the job and execution lists. Each filter is one predicate
//! (`matches`) that every store applies to the items it reads in list order, so a filtered
//! page means the same in SQLite and DynamoDB and composes with the same cursors.

use chrono::{DateTime, Utc};

use super::{Execution, Job, RunStatus, Trigger};
use crate::schedule::ScheduleType;

/// A tag: 1 to 32 of `a-z 0-9 - _`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub const MAX_CHARS: usize = 32;
    pub fn parse(s: &str) -> Result<Self, String> {
        let first_ok = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if first_ok && rest_ok && s.len() <= Self::MAX_CHARS {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "has {s:?}, which is not a tag (1 to 32 of a-z, 0-9, - and _, starting with a letter or digit)"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A job's tags: at most 10, each once, in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub const MAX_ENTRIES: usize = 10;
    /// Checks every entry; returns every problem found.
    pub fn parse(entries: &[String]) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        if entries.len() > Self::MAX_ENTRIES {
            errors.push("has too many entries (maximum is 10)".to_owned());
        }
        let mut tags: Vec<Tag> = Vec::with_capacity(entries.len());
        for e in entries {
            match Tag::parse(e) {
                Ok(t) if tags.contains(&t) => errors.push(format!("has {e:?} more than once")),
                Ok(t) => tags.push(t),
                Err(m) => errors.push(m),
            }
        }
        if errors.is_empty() {
            Ok(Self(tags))
        } else {
            Err(errors)
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn contains(&self, tag: &Tag) -> bool {
        self.0.contains(tag)
    }
}

/// `last_status` as a filter: a status, or "never ran".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastStatus {
    Is(RunStatus),
    Never,
}

/// Which jobs a list returns; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Jobs with every one of these tags.
    pub tags: Vec<Tag>,
    pub enabled: Option<bool>,
    pub last_status: Option<LastStatus>,
    pub schedule_type: Option<ScheduleType>,
    /// A case-insensitive substring of the name.
    pub name: Option<String>,
}

impl JobFilter {
    pub fn matches(&self, job: &Job) -> bool {
        let s = &job.spec;
        self.tags.iter().all(|t| s.tags.contains(t))
            && self.enabled.is_none_or(|e| job.enabled == e)
            && self.last_status.is_none_or(|want| match want {
                LastStatus::Is(status) => job.last_status == Some(status),
                LastStatus::Never => job.last_status.is_none(),
            })
            && self.schedule_type.is_none_or(|k| s.schedule.kind() == k)
            && self
                .name
                .as_ref()
                .is_none_or(|q| s.name.as_str().to_lowercase().contains(&q.to_lowercase()))
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Which executions a list returns; every condition given must hold. The time range is on
/// `started_at`: `from` inclusive, `until` exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub status: Option<RunStatus>,
    pub trigger: Option<Trigger>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl ExecutionFilter {
    pub fn matches(&self, e: &Execution) -> bool {
        self.status
            .is_none_or(|s| e.outcome.as_ref().is_some_and(|o| o.status == s))
            && self.trigger.is_none_or(|t| e.trigger == t)
            && self.from.is_none_or(|f| e.started_at >= f)
            && self.until.is_none_or(|u| e.started_at < u)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_short_lowercase_slugs_each_once() {
        assert!(Tag::parse("billing-eu_2").is_ok());
        for bad in ["", "Billing", "-x", "a b", "é", &"a".repeat(33)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert_eq!(
            Tags::parse(&many).unwrap_err(),
            ["has too many entries (maximum is 10)"]
        );
        assert_eq!(
            Tags::parse(&["a".into(), "a".into()]).unwrap_err(),
            ["has \"a\" more than once"]
        );
    }
}
