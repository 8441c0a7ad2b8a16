//! `once` schedules: a single instant given as an ISO 8601 / RFC 3339 datetime.
//!
//! Accepted: `YYYY-MM-DD`, then `T`, `t` or a space, then `hh:mm` or `hh:mm:ss` with optional
//! fractional seconds (`.` or `,`, truncated), then optionally `Z`, `z`, `±hh:mm`, `±hhmm` or
//! `±hh`. Without an offset the local time is read in the job's timezone: an ambiguous local
//! time (DST fall-back) means its first occurrence, a non-existent one (DST gap) is an error.

use std::fmt::Write as _;

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};

use super::{EventBridgeSchedules, ScheduleError, Timezone};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OnceSpec {
    at: DateTime<Utc>,
}

impl OnceSpec {
    pub(super) fn parse(text: &str, tz: Timezone) -> Result<OnceSpec, ScheduleError> {
        let invalid = |reason: &str| ScheduleError::InvalidDatetime {
            reason: reason.to_owned(),
        };
        let parsed = parse_iso8601(text).map_err(invalid)?;
        let at = match parsed.offset {
            Some(offset) => match parsed.local.and_local_timezone(offset) {
                LocalResult::Single(t) => t.with_timezone(&Utc),
                _ => return Err(invalid("datetime is out of range")),
            },
            None => match tz.tz().from_local_datetime(&parsed.local) {
                LocalResult::Single(t) => t.with_timezone(&Utc),
                LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
                LocalResult::None => {
                    return Err(ScheduleError::NonexistentLocalTime {
                        local: parsed.local,
                        timezone: tz,
                    });
                }
            },
        };
        // The EventBridge rendering needs a four-digit year both in UTC and in the job's zone.
        let local_year = at.with_timezone(&tz.tz()).year();
        if !(0..=9999).contains(&at.year()) || !(0..=9999).contains(&local_year) {
            return Err(invalid("datetime is out of range"));
        }
        Ok(OnceSpec { at })
    }

    pub(super) fn at(self) -> DateTime<Utc> {
        self.at
    }

    /// `at(...)` in the job's local time. When that local time is ambiguous (it occurs twice on
    /// a DST fall-back day) the expression is rendered in UTC instead, so AWS cannot pick the
    /// other occurrence.
    pub(super) fn eventbridge(self, timezone: Timezone) -> EventBridgeSchedules {
        let local = self.at.with_timezone(&timezone.tz()).naive_local();
        let unambiguous = matches!(
            timezone.tz().from_local_datetime(&local),
            LocalResult::Single(_)
        );
        let (naive, timezone) = if unambiguous {
            (local, timezone)
        } else {
            (self.at.naive_utc(), Timezone::UTC)
        };
        EventBridgeSchedules {
            expressions: vec![format!("at({})", format_naive(naive))],
            timezone,
            anchored: false,
            sub_minute_offset: None,
        }
    }
}

/// `yyyy-mm-ddThh:mm:ss`.
fn format_naive(t: NaiveDateTime) -> String {
    let mut out = String::with_capacity(19);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    out
}

struct Parsed {
    local: NaiveDateTime,
    offset: Option<FixedOffset>,
}

/// A byte cursor over ASCII input.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), &'static str> {
        if self.eat(b) { Ok(()) } else { Err(what) }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, &'static str> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => return Err(what),
            }
        }
        Ok(value)
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

fn parse_iso8601(text: &str) -> Result<Parsed, &'static str> {
    let mut c = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4, "expected a four-digit year")?;
    c.expect(b'-', "expected '-' after the year")?;
    let month = c.digits(2, "expected a two-digit month")?;
    c.expect(b'-', "expected '-' after the month")?;
    let day = c.digits(2, "expected a two-digit day")?;
    if c.at_end() {
        return Err("a time of day is required");
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err("expected 'T' between date and time");
    }
    let hour = c.digits(2, "expected a two-digit hour")?;
    c.expect(b':', "expected ':' after the hour")?;
    let minute = c.digits(2, "expected two-digit minutes")?;
    let mut second = 0;
    if c.eat(b':') {
        second = c.digits(2, "expected two-digit seconds")?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.pos;
            while matches!(c.peek(), Some(b'0'..=b'9')) {
                c.pos += 1;
            }
            if c.pos == start {
                return Err("expected digits after the decimal separator");
            }
        }
    }
    let offset = match c.peek() {
        None => None,
        Some(b'Z' | b'z') => {
            c.pos += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let hours = c.digits(2, "expected a two-digit offset hour")?;
            let minutes = if c.eat(b':') {
                c.digits(2, "expected two-digit offset minutes")?
            } else if c.at_end() {
                0
            } else {
                c.digits(2, "expected two-digit offset minutes")?
            };
            if hours > 23 || minutes > 59 {
                return Err("offset is out of range");
            }
            let seconds = i32::try_from(hours * 3_600 + minutes * 60)
                .map_err(|_| "offset is out of range")?;
            Some(if sign == b'-' { -seconds } else { seconds })
        }
        Some(_) => return Err("unexpected characters after the time"),
    };
    if !c.at_end() {
        return Err("unexpected characters after the offset");
    }
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, month, day))
        .ok_or("not a valid calendar date")?;
    let time = NaiveTime::from_hms_opt(hour, minute, second).ok_or("not a valid time of day")?;
    let offset = match offset {
        Some(seconds) => Some(FixedOffset::east_opt(seconds).ok_or("offset is out of range")?),
        None => None,
    };
    Ok(Parsed {
        local: NaiveDateTime::new(date, time),
        offset,
    })
}
