//! `cron` schedules: 5-field POSIX cron, normalised into bitsets and rendered once into
//! EventBridge / Quartz field strings.
//!
//! The same rendered field strings feed both the EventBridge expression
//! `cron(min hour dom month dow *)` and the `cron` crate (`0 min hour dom month dow`), which
//! computes fire times over naive local wall-clock time. Each naive candidate is then mapped to
//! the job's zone the way EventBridge Scheduler does it: a local time that does not exist is
//! skipped, a local time that occurs twice fires at its first occurrence only.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, Datelike, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::{ScheduleError, excerpt};

/// The `cron` crate only knows years up to 2100.
const LAST_SUPPORTED_YEAR: i32 = 2100;

/// Upper bound on naive candidates examined per query. Candidates are only rejected when they
/// fall into a DST gap or into the second pass of a repeated local hour, which is a few hundred
/// minutes at worst (a whole skipped day, as Pacific/Apia did in 2011, is 1440).
const MAX_CANDIDATES: usize = 10_000;

/// Days in each month (1-based) in a leap year: the static "can it ever fire" check counts
/// February 29.
const MAX_DAYS_IN_MONTH: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DOW_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const MACROS: [(&str, &str); 6] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
];

/// A POSIX cron field's value domain.
#[derive(Clone, Copy)]
struct FieldDef {
    label: &'static str,
    min: u32,
    max: u32,
    /// Three-letter names for `name_base..`, matched case-insensitively.
    names: &'static [&'static str],
    name_base: u32,
}

const MINUTE: FieldDef = FieldDef {
    label: "minute",
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
};
const HOUR: FieldDef = FieldDef {
    label: "hour",
    min: 0,
    max: 23,
    names: &[],
    name_base: 0,
};
const DAY_OF_MONTH: FieldDef = FieldDef {
    label: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
};
const MONTH: FieldDef = FieldDef {
    label: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    name_base: 1,
};
/// Day of week as written: 0-7 with Sunday as 0 or 7.
const DAY_OF_WEEK: FieldDef = FieldDef {
    label: "day-of-week",
    min: 0,
    max: 7,
    names: &DOW_NAMES,
    name_base: 0,
};

/// Bit `v` set means value `v` is included.
type Bits = u64;

const fn full(min: u32, max: u32) -> Bits {
    ((1u64 << (max + 1)) - 1) & !((1u64 << min) - 1)
}

const ALL_DAYS_OF_MONTH: Bits = full(1, 31);
/// Days of week 0-6, Sunday = 0.
const ALL_DAYS_OF_WEEK: Bits = full(0, 6);

/// Which days a cron expression fires on, after applying the POSIX day rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DayRule {
    /// Every day (of the selected months).
    Every,
    /// Days of month (bits 1-31).
    DayOfMonth(Bits),
    /// Days of week (bits 0-6, Sunday = 0).
    DayOfWeek(Bits),
    /// Both day fields restricted: a day matches if either matches.
    Either { dom: Bits, dow: Bits },
}

/// A normalised cron expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CronFields {
    minutes: Bits,
    hours: Bits,
    months: Bits,
    days: DayRule,
}

/// One EventBridge schedule and the equivalent `cron` crate schedule over naive local time.
#[derive(Clone, Debug)]
struct Rendered {
    eventbridge: String,
    quartz: cron::Schedule,
}

/// A parsed cron schedule: one rendered schedule, or two whose union is the expression.
#[derive(Clone, Debug)]
pub(super) struct CronSpec {
    rendered: Vec<Rendered>,
}

impl CronSpec {
    pub(super) fn parse(text: &str) -> Result<CronSpec, ScheduleError> {
        let fields = parse_fields(text).map_err(|reason| ScheduleError::InvalidCron { reason })?;
        let rendered = render(&fields)
            .into_iter()
            .map(|[minute, hour, dom, month, dow]| {
                let eventbridge = format!("cron({minute} {hour} {dom} {month} {dow} *)");
                let quartz =
                    cron::Schedule::from_str(&format!("0 {minute} {hour} {dom} {month} {dow}"))
                        .map_err(|err| ScheduleError::InvalidCron {
                            reason: format!("internal error: rendered expression rejected: {err}"),
                        })?;
                Ok(Rendered {
                    eventbridge,
                    quartz,
                })
            })
            .collect::<Result<Vec<_>, ScheduleError>>()?;
        Ok(CronSpec { rendered })
    }

    pub(super) fn eventbridge_expressions(&self) -> Vec<String> {
        self.rendered
            .iter()
            .map(|r| r.eventbridge.clone())
            .collect()
    }

    /// The first fire strictly after `after`, in `tz`.
    pub(super) fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Checked: `naive_local` panics at the edges of chrono's range.
        let offset = tz.offset_from_utc_datetime(&after.naive_utc()).fix();
        let local = after.naive_utc().checked_add_offset(offset)?;
        if local.year() > LAST_SUPPORTED_YEAR {
            return None;
        }
        // `Utc` stands in for naive local wall-clock time.
        let start = Utc.from_utc_datetime(&local);
        self.rendered
            .iter()
            .filter_map(|r| first_fire(&r.quartz, tz, start, after))
            .min()
    }
}

/// Walks the naive local candidates of `schedule` after `start` and returns the first that maps
/// to a real instant strictly after `after`: gap times are skipped, repeated times map to their
/// first occurrence (so the second pass of a repeated hour never fires).
fn first_fire(
    schedule: &cron::Schedule,
    tz: Tz,
    start: DateTime<Utc>,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule
        .after(&start)
        .take(MAX_CANDIDATES)
        .find_map(|candidate| {
            let instant = match tz.from_local_datetime(&candidate.naive_utc()) {
                LocalResult::Single(t) => t,
                LocalResult::Ambiguous(first, second) => first.min(second),
                LocalResult::None => return None,
            }
            .with_timezone(&Utc);
            (instant > after).then_some(instant)
        })
}

/// Parses a 5-field expression or macro into normalised fields.
fn parse_fields(text: &str) -> Result<CronFields, String> {
    let is_blank = |c: char| c == ' ' || c == '\t';
    let trimmed = text.trim_matches(is_blank);
    let expanded = if trimmed.starts_with('@') {
        MACROS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
            .map(|(_, expansion)| *expansion)
            .ok_or_else(|| format!("unsupported macro {:?}", excerpt(trimmed)))?
    } else {
        trimmed
    };
    let parts: Vec<&str> = expanded.split(is_blank).filter(|p| !p.is_empty()).collect();
    let [minute, hour, dom, month, dow] = parts[..] else {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
            parts.len()
        ));
    };

    let minutes = parse_field(minute, MINUTE)?;
    let hours = parse_field(hour, HOUR)?;
    let dom_bits = parse_field(dom, DAY_OF_MONTH)?;
    let months = parse_field(month, MONTH)?;
    let mut dow_bits = parse_field(dow, DAY_OF_WEEK)?;
    if dow_bits & (1 << 7) != 0 {
        // Sunday written as 7.
        dow_bits = (dow_bits & !(1 << 7)) | 1;
    }

    // POSIX: a day field is restricted unless it is a bare `*`; when both are restricted a day
    // matches if either matches.
    let days = match (dom != "*", dow != "*") {
        (false, false) => DayRule::Every,
        (true, false) => {
            if !dom_can_fire(dom_bits, months) {
                return Err(
                    "can never fire: no selected month has the selected day of month".into(),
                );
            }
            if dom_bits == ALL_DAYS_OF_MONTH {
                DayRule::Every
            } else {
                DayRule::DayOfMonth(dom_bits)
            }
        }
        (false, true) => {
            if dow_bits == ALL_DAYS_OF_WEEK {
                DayRule::Every
            } else {
                DayRule::DayOfWeek(dow_bits)
            }
        }
        (true, true) => {
            if dom_bits == ALL_DAYS_OF_MONTH || dow_bits == ALL_DAYS_OF_WEEK {
                DayRule::Every
            } else if !dom_can_fire(dom_bits, months) {
                // The day-of-month half never fires; only the weekdays remain.
                DayRule::DayOfWeek(dow_bits)
            } else {
                DayRule::Either {
                    dom: dom_bits,
                    dow: dow_bits,
                }
            }
        }
    };
    Ok(CronFields {
        minutes,
        hours,
        months,
        days,
    })
}

/// Whether some selected month has some selected day (February 29 counts).
fn dom_can_fire(dom: Bits, months: Bits) -> bool {
    (1..=12u32)
        .filter(|m| months & (1 << m) != 0)
        .any(|m| dom & full(1, MAX_DAYS_IN_MONTH[m as usize]) != 0)
}

/// Parses one field: a comma list of `*`, `v`, `a-b`, `*/n`, `a-b/n`, `a/n`.
fn parse_field(text: &str, def: FieldDef) -> Result<Bits, String> {
    let mut bits: Bits = 0;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty list item in the {} field", def.label));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(parse_step(step, def)?)),
            None => (item, None),
        };
        let (low, high) = if base == "*" {
            (def.min, def.max)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (parse_value(a, def)?, parse_value(b, def)?);
            if a > b {
                return Err(format!(
                    "reversed range {}-{} in the {} field",
                    a, b, def.label
                ));
            }
            (a, b)
        } else {
            let a = parse_value(base, def)?;
            // `a/n` runs from `a` to the field's maximum.
            (a, if step.is_some() { def.max } else { a })
        };
        let step = step.unwrap_or(1);
        for v in (low..=high).step_by(step) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn parse_step(text: &str, def: FieldDef) -> Result<usize, String> {
    let step = parse_number(text).ok_or_else(|| {
        format!(
            "invalid step {:?} in the {} field",
            excerpt(text),
            def.label
        )
    })?;
    if step == 0 {
        return Err(format!("step 0 in the {} field", def.label));
    }
    usize::try_from(step).map_err(|_| format!("step too large in the {} field", def.label))
}

fn parse_value(text: &str, def: FieldDef) -> Result<u32, String> {
    let value = match parse_number(text) {
        Some(v) => v,
        None => def
            .names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
            .and_then(|idx| u32::try_from(idx).ok())
            .map(|idx| idx + def.name_base)
            .ok_or_else(|| {
                format!(
                    "invalid value {:?} in the {} field",
                    excerpt(text),
                    def.label
                )
            })?,
    };
    if !(def.min..=def.max).contains(&value) {
        return Err(format!(
            "{} out of range {}-{} in the {} field",
            value, def.min, def.max, def.label
        ));
    }
    Ok(value)
}

/// A non-empty run of ASCII digits that fits in `u32`.
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Renders normalised fields into one or two sets of field strings
/// `[minute, hour, dom, month, dow]` in EventBridge / Quartz syntax.
fn render(fields: &CronFields) -> Vec<[String; 5]> {
    let minute = render_field(fields.minutes, MINUTE.min, MINUTE.max, true);
    let hour = render_field(fields.hours, HOUR.min, HOUR.max, true);
    let month = render_field(fields.months, MONTH.min, MONTH.max, true);
    let dom = |bits: Bits| render_field(bits, DAY_OF_MONTH.min, DAY_OF_MONTH.max, true);
    // Quartz numbers Sunday as 1 and EventBridge allows no `/` in the day-of-week field.
    let dow = |bits: Bits| render_field(bits << 1, 1, 7, false);
    let with_days =
        |dom: String, dow: String| [minute.clone(), hour.clone(), dom, month.clone(), dow];
    match fields.days {
        DayRule::Every => vec![with_days("*".into(), "?".into())],
        DayRule::DayOfMonth(bits) => vec![with_days(dom(bits), "?".into())],
        DayRule::DayOfWeek(bits) => vec![with_days("?".into(), dow(bits))],
        DayRule::Either { dom: d, dow: w } => {
            vec![with_days(dom(d), "?".into()), with_days("?".into(), dow(w))]
        }
    }
}

/// Renders a non-empty set compactly: `*`, `*/n` or `a/n` (an arithmetic progression running
/// to the end of the field), or a list of values and ranges.
fn render_field(bits: Bits, min: u32, max: u32, allow_step: bool) -> String {
    let values: Vec<u32> = (min..=max).filter(|v| bits & (1 << v) != 0).collect();
    debug_assert!(!values.is_empty(), "a parsed field is never empty");
    if bits == full(min, max) {
        return "*".into();
    }
    if allow_step && let [first, second, ..] = values[..] {
        let step = second - first;
        let progression = step >= 2
            && values.windows(2).all(|w| w[1] - w[0] == step)
            && values.last().is_some_and(|last| last + step > max);
        if progression && first == min {
            return format!("*/{step}");
        }
        if progression && values.len() >= 3 {
            return format!("{first}/{step}");
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = match j - i {
            0 => write!(out, "{}", values[i]),
            1 => write!(out, "{},{}", values[i], values[j]),
            _ => write!(out, "{}-{}", values[i], values[j]),
        };
        i = j + 1;
    }
    out
}

#[cfg(test)]
pub(super) mod internals {
    //! Hooks for the module's tests.

    use super::*;

    pub(in crate::schedule) fn render_one(
        bits: Bits,
        min: u32,
        max: u32,
        allow_step: bool,
    ) -> String {
        render_field(bits, min, max, allow_step)
    }

    /// The `cron` crate expressions built for a parsed spec.
    pub(in crate::schedule) fn quartz_sources(spec: &CronSpec) -> Vec<String> {
        spec.rendered
            .iter()
            .map(|r| r.quartz.source().to_owned())
            .collect()
    }
}
