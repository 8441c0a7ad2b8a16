//! Job schedules: parsing, next-fire computation and AWS EventBridge Scheduler rendering.
//!
//! A job's schedule is the triple (schedule type, schedule text, IANA timezone). It is parsed
//! once into a [`Schedule`], which both computes fire times ([`Schedule::first_run`],
//! [`Schedule::next_run`]) and renders the EventBridge Scheduler expressions that fire it in AWS
//! ([`Schedule::eventbridge`]). Both are derived from the same normalised value, so the engine
//! and AWS agree by construction.
//!
//! All timestamps are whole seconds: inputs are truncated to the second and every returned
//! instant has zero nanoseconds.
//!
//! Supported syntax:
//! * `interval`: `every_30s`, and `every_<N>m`, `every_<N>h`, `every_<N>d` with `N >= 1` written
//!   without leading zeros and a total of at most 365 days (a day is a fixed 24 hours).
//! * `cron`: 5-field POSIX cron (`minute hour day-of-month month day-of-week`) plus the macros
//!   `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`, `@annually`; read in the job's
//!   timezone, with the POSIX rule that a day matches if EITHER day field matches when both are
//!   restricted. Daylight saving time follows EventBridge Scheduler: a local time that does not
//!   exist on a given day is skipped, a local time that occurs twice fires once, at its first
//!   occurrence.
//! * `once`: an ISO 8601 / RFC 3339 datetime; without an offset it is read in the job's timezone.

mod cron_expr;
mod eventbridge;
mod interval;
mod once;
pub mod words;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use eventbridge::{EventBridgeSchedules, validate_eventbridge_expression};

use cron_expr::CronSpec;
use interval::IntervalSpec;
use once::OnceSpec;

/// The kind of a job's schedule. Serialised as `"cron"`, `"interval"` or `"once"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleType {
    /// A 5-field POSIX cron expression or macro, read in the job's timezone.
    Cron,
    /// A fixed period such as `every_5m`.
    Interval,
    /// A single instant.
    Once,
}

impl ScheduleType {
    /// All schedule types, in declaration order.
    pub const ALL: [ScheduleType; 3] = [
        ScheduleType::Cron,
        ScheduleType::Interval,
        ScheduleType::Once,
    ];

    /// The wire name: `"cron"`, `"interval"` or `"once"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleType::Cron => "cron",
            ScheduleType::Interval => "interval",
            ScheduleType::Once => "once",
        }
    }
}

impl fmt::Display for ScheduleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScheduleType {
    type Err = ScheduleError;

    /// Accepts exactly the lowercase wire names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cron" => Ok(ScheduleType::Cron),
            "interval" => Ok(ScheduleType::Interval),
            "once" => Ok(ScheduleType::Once),
            _ => Err(ScheduleError::InvalidScheduleType),
        }
    }
}

/// An IANA timezone as known to `chrono-tz` (e.g. `UTC`, `Europe/Berlin`).
///
/// Serialised as its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timezone(chrono_tz::Tz);

impl Timezone {
    /// Coordinated Universal Time (`"UTC"`).
    pub const UTC: Timezone = Timezone(chrono_tz::Tz::UTC);

    /// Parses an exact IANA timezone name (case-sensitive, no surrounding whitespace).
    pub fn parse(name: &str) -> Result<Timezone, ScheduleError> {
        name.parse::<chrono_tz::Tz>()
            .map(Timezone)
            .map_err(|_| ScheduleError::InvalidTimezone)
    }

    /// The canonical name, e.g. `"Europe/Berlin"`.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The underlying `chrono-tz` zone.
    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }
}

impl Default for Timezone {
    fn default() -> Self {
        Timezone::UTC
    }
}

impl From<chrono_tz::Tz> for Timezone {
    fn from(tz: chrono_tz::Tz) -> Self {
        Timezone(tz)
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Timezone {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timezone::parse(s)
    }
}

impl Serialize for Timezone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timezone;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IANA timezone name")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timezone, E> {
                Timezone::parse(v)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Why a schedule, schedule type or timezone was rejected.
///
/// [`ScheduleError::message`] is the stable, user-facing API message; `Display` adds detail for
/// logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The schedule type is not `cron`, `interval` or `once`.
    #[error("is not included in the list (cron, interval, once)")]
    InvalidScheduleType,
    /// The cron expression is malformed, unsupported or can never fire.
    #[error("is not a valid cron expression: {reason}")]
    InvalidCron {
        /// What is wrong, for logs.
        reason: String,
    },
    /// The interval is not one of the supported forms.
    #[error("is not a valid interval: {reason}")]
    InvalidInterval {
        /// What is wrong, for logs.
        reason: String,
    },
    /// The `once` text is not a supported ISO 8601 datetime.
    #[error("must be a valid ISO 8601 datetime: {reason}")]
    InvalidDatetime {
        /// What is wrong, for logs.
        reason: String,
    },
    /// A `once` local time without offset falls into a daylight saving gap of the job's zone.
    #[error("local time {local} does not exist in the job's timezone {timezone}")]
    NonexistentLocalTime {
        /// The local time as given.
        local: NaiveDateTime,
        /// The job's timezone.
        timezone: Timezone,
    },
    /// The timezone is not an IANA name known to `chrono-tz`.
    #[error("is not a valid IANA timezone")]
    InvalidTimezone,
}

impl ScheduleError {
    /// The user-facing API message.
    pub fn message(&self) -> &'static str {
        match self {
            ScheduleError::InvalidScheduleType => {
                "is not included in the list (cron, interval, once)"
            }
            ScheduleError::InvalidCron { .. } => "is not a valid cron expression",
            ScheduleError::InvalidInterval { .. } => "is not a valid interval",
            ScheduleError::InvalidDatetime { .. } => "must be a valid ISO 8601 datetime",
            ScheduleError::NonexistentLocalTime { .. } => "does not exist in the job's timezone",
            ScheduleError::InvalidTimezone => "is not a valid IANA timezone",
        }
    }

    /// The API field the error belongs to: `"schedule_type"`, `"schedule"` or `"timezone"`.
    pub fn field(&self) -> &'static str {
        match self {
            ScheduleError::InvalidScheduleType => "schedule_type",
            ScheduleError::InvalidTimezone => "timezone",
            ScheduleError::InvalidCron { .. }
            | ScheduleError::InvalidInterval { .. }
            | ScheduleError::InvalidDatetime { .. }
            | ScheduleError::NonexistentLocalTime { .. } => "schedule",
        }
    }
}

/// A parsed, immutable job schedule.
///
/// Equality compares what defines it (kind, text, timezone, window); so does `Debug` print
/// (the window when it is not open).
#[derive(Clone)]
pub struct Schedule {
    text: String,
    timezone: Timezone,
    spec: Spec,
    window: Window,
}

/// When a schedule may fire: from `starts_at` (inclusive), before `ends_at`. Either end
/// may be open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
enum Spec {
    Cron(CronSpec),
    Interval(IntervalSpec),
    Once(OnceSpec),
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind()
            && self.text == other.text
            && self.timezone == other.timezone
            && self.window == other.window
    }
}

impl Eq for Schedule {}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Schedule");
        d.field("kind", &self.kind())
            .field("text", &self.text)
            .field("timezone", &self.timezone);
        if self.window != Window::default() {
            d.field("window", &self.window);
        }
        d.finish()
    }
}

impl Schedule {
    /// Parses a schedule. `text` is kept verbatim (see [`Schedule::text`]).
    pub fn parse(kind: ScheduleType, text: &str, tz: Timezone) -> Result<Schedule, ScheduleError> {
        let spec = match kind {
            ScheduleType::Cron => Spec::Cron(CronSpec::parse(text)?),
            ScheduleType::Interval => Spec::Interval(IntervalSpec::parse(text)?),
            ScheduleType::Once => Spec::Once(OnceSpec::parse(text, tz)?),
        };
        Ok(Schedule {
            text: text.to_owned(),
            timezone: tz,
            spec,
            window: Window::default(),
        })
    }

    /// The schedule, firing only inside `window`.
    pub fn with_window(mut self, window: Window) -> Schedule {
        self.window = window;
        self
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// `from`, moved to the window's start when that is later: a cron or `once` time equal
    /// to `starts_at` fires; an interval counts from `starts_at`.
    fn window_from(&self, from: DateTime<Utc>) -> DateTime<Utc> {
        let Some(start) = self.window.starts_at else {
            return from;
        };
        match self.spec {
            Spec::Interval(_) => from.max(start),
            _ => from.max(start - chrono::Duration::seconds(1)),
        }
    }

    /// `t`, if it is before the window's end.
    fn before_end(&self, t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        t.filter(|t| self.window.ends_at.is_none_or(|end| *t < end))
    }

    /// The schedule type.
    pub fn kind(&self) -> ScheduleType {
        match self.spec {
            Spec::Cron(_) => ScheduleType::Cron,
            Spec::Interval(_) => ScheduleType::Interval,
            Spec::Once(_) => ScheduleType::Once,
        }
    }

    /// The schedule text exactly as given to [`Schedule::parse`].
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The job's timezone.
    pub fn timezone(&self) -> Timezone {
        self.timezone
    }

    /// First fire time for a schedule that starts (is created or resumed) at `from`:
    /// interval: `from + interval`; cron: the first fire strictly after `from`; once: the
    /// instant if it is after `from`, else `None`.
    ///
    /// Returns `None` when no fire time is representable (cron fire times are computed up to
    /// the end of year 2100).
    pub fn first_run(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = self.window_from(whole_seconds(from));
        self.before_end(match &self.spec {
            Spec::Cron(cron) => cron.next_after(self.timezone.tz(), from),
            Spec::Interval(interval) => interval.first_after(from),
            Spec::Once(once) => (once.at() > from).then_some(once.at()),
        })
    }

    /// Next fire time after a run that was scheduled at `previous`, when the clock says `now`.
    /// Missed runs are not replayed; the result is strictly after `now`.
    ///
    /// interval: `previous + k * interval` for the smallest `k >= 1` with a result after `now`;
    /// cron: the first fire strictly after `max(previous, now)`; once: `None`.
    pub fn next_run(&self, previous: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let previous = whole_seconds(previous);
        let now = match self.window.starts_at {
            Some(start) => whole_seconds(now).max(start - chrono::Duration::seconds(1)),
            None => whole_seconds(now),
        };
        self.before_end(match &self.spec {
            Spec::Cron(cron) => cron.next_after(self.timezone.tz(), previous.max(now)),
            Spec::Interval(interval) => interval.next_after(previous, now),
            Spec::Once(_) => None,
        })
    }

    /// The first `n` fire times after `from`: the preview engine. Each step is the one
    /// `next_run_at` and both schedulers take (`first_run`, then `next_run(t, t)`), so a
    /// preview, a job's `next_run_at` and the runs that fire agree, DST included.
    pub fn upcoming(&self, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.following(self.first_run(from), n)
    }

    /// `first` (a job's `next_run_at`) and the fire times after it, `n` in all.
    pub fn following(&self, first: Option<DateTime<Utc>>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(first, |t| self.next_run(*t, *t))
            .take(n)
            .collect()
    }

    /// The instant of a `once` schedule.
    pub fn once_at(&self) -> Option<DateTime<Utc>> {
        match &self.spec {
            Spec::Once(once) => Some(once.at()),
            _ => None,
        }
    }

    /// Whether a schedule firing at `at` (EventBridge's scheduled time) is a run of this
    /// schedule, given the job's next run: not before it, and on its grid (the cron's
    /// times, the interval's multiples from it, the `once` instant).
    pub fn fires_at(&self, at: DateTime<Utc>, next_run_at: DateTime<Utc>) -> bool {
        let w = self.window;
        let outside = w.starts_at.is_some_and(|s| at < s) || w.ends_at.is_some_and(|e| at >= e);
        if at < next_run_at || outside {
            return false;
        }
        match &self.spec {
            Spec::Once(_) => self.once_at() == Some(at),
            Spec::Interval(interval) => {
                (at - next_run_at).num_seconds() % i64::from(interval.seconds()) == 0
            }
            Spec::Cron(_) => self.first_run(at - chrono::Duration::seconds(1)) == Some(at),
        }
    }

    /// The period of an `interval` schedule, in seconds.
    pub fn interval_seconds(&self) -> Option<u32> {
        match &self.spec {
            Spec::Interval(interval) => Some(interval.seconds()),
            _ => None,
        }
    }

    /// The EventBridge Scheduler schedules that fire this schedule in AWS.
    ///
    /// * cron: one `cron(min hour dom month dow *)`, or two when both day fields are restricted
    ///   (POSIX OR rule: one schedule per day field; on a day matching both, both fire at the same
    ///   minute, so the receiver must deduplicate by scheduled time).
    /// * interval: `rate(N unit)`; see [`EventBridgeSchedules::anchored`] and
    ///   [`EventBridgeSchedules::sub_minute_offset`].
    /// * once: `at(yyyy-mm-ddThh:mm:ss)` in [`EventBridgeSchedules::timezone`].
    pub fn eventbridge(&self) -> EventBridgeSchedules {
        match &self.spec {
            Spec::Cron(cron) => EventBridgeSchedules {
                expressions: cron.eventbridge_expressions(),
                timezone: self.timezone,
                anchored: false,
                sub_minute_offset: None,
            },
            Spec::Interval(interval) => interval.eventbridge(self.timezone),
            Spec::Once(once) => once.eventbridge(self.timezone),
        }
    }
}

/// Drops sub-second precision.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Shortens user input for inclusion in error details.
fn excerpt(s: &str) -> String {
    const MAX_CHARS: usize = 24;
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    if s.chars().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}
