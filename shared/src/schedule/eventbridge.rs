//! AWS EventBridge Scheduler expressions: the rendered schedules and a grammar validator.

use chrono::{NaiveDate, NaiveTime};

use super::Timezone;

/// The EventBridge Scheduler schedules that together fire one job schedule in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventBridgeSchedules {
    /// `ScheduleExpression` values. Each needs its own EventBridge schedule; the job fires at
    /// the union of their fire times. Two expressions only occur for cron schedules with both
    /// day fields restricted (POSIX OR rule); on a day matching both, both fire at the same
    /// minute, so the receiver must deduplicate runs by scheduled time.
    pub expressions: Vec<String>,
    /// `ScheduleExpressionTimezone` for every expression. This is the job's timezone, except
    /// for a `once` schedule whose local time is ambiguous in the job's zone (DST fall-back),
    /// which is rendered in UTC.
    pub timezone: Timezone,
    /// `true` for `rate(...)`: AWS counts the rate from the schedule's `StartDate`, so the
    /// caller must set `StartDate` to [`super::Schedule::first_run`] of the (re)start instant
    /// for AWS and the engine to fire on the same grid.
    pub anchored: bool,
    /// Set for intervals below one minute (`every_30s` → `Some(30)`): the expression fires every
    /// minute and each invocation stands for two runs, at the invocation time and this many
    /// seconds later.
    pub sub_minute_offset: Option<u32>,
}

/// The longest `ScheduleExpression` EventBridge Scheduler accepts.
const MAX_EXPRESSION_LEN: usize = 256;

/// Validates `expr` against the EventBridge Scheduler expression grammar:
/// `cron(min hour dom month dow year)`, `rate(N unit)` or `at(yyyy-mm-ddThh:mm:ss)`.
///
/// Returns a description of the first problem found.
pub fn validate_eventbridge_expression(expr: &str) -> Result<(), String> {
    if expr.len() > MAX_EXPRESSION_LEN {
        return Err(format!("longer than {MAX_EXPRESSION_LEN} characters"));
    }
    if let Some(body) = strip_call(expr, "cron") {
        validate_cron(body)
    } else if let Some(body) = strip_call(expr, "rate") {
        validate_rate(body)
    } else if let Some(body) = strip_call(expr, "at") {
        validate_at(body)
    } else {
        Err("expected cron(...), rate(...) or at(...)".into())
    }
}

fn strip_call<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    expr.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

#[derive(Clone, Copy)]
struct Field {
    label: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Whether `/` increments are allowed.
    steps: bool,
}

const MONTH_NAMES: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DOW_NAMES: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const MINUTES: Field = Field {
    label: "minutes",
    min: 0,
    max: 59,
    names: &[],
    steps: true,
};
const HOURS: Field = Field {
    label: "hours",
    min: 0,
    max: 23,
    names: &[],
    steps: true,
};
const DAY_OF_MONTH: Field = Field {
    label: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    steps: true,
};
const MONTH: Field = Field {
    label: "month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
    steps: true,
};
const DAY_OF_WEEK: Field = Field {
    label: "day-of-week",
    min: 1,
    max: 7,
    names: DOW_NAMES,
    steps: false,
};
const YEAR: Field = Field {
    label: "year",
    min: 1970,
    max: 2199,
    names: &[],
    steps: true,
};

fn validate_cron(body: &str) -> Result<(), String> {
    let fields: Vec<&str> = body.split(' ').collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "cron needs exactly 6 space-separated fields, found {}",
            fields.len()
        ));
    };
    match (dom == "?", dow == "?") {
        (true, true) => return Err("only one of day-of-month and day-of-week may be '?'".into()),
        (false, false) => return Err("one of day-of-month and day-of-week must be '?'".into()),
        _ => {}
    }
    validate_list(minutes, MINUTES)?;
    validate_list(hours, HOURS)?;
    if dom != "?" {
        validate_day_of_month(dom)?;
    }
    validate_list(month, MONTH)?;
    if dow != "?" {
        validate_day_of_week(dow)?;
    }
    validate_list(year, YEAR)
}

fn validate_day_of_month(text: &str) -> Result<(), String> {
    if text == "L" || text == "LW" {
        return Ok(());
    }
    if let Some(day) = text.strip_suffix('W') {
        return value(day, DAY_OF_MONTH).map(drop);
    }
    validate_list(text, DAY_OF_MONTH)
}

fn validate_day_of_week(text: &str) -> Result<(), String> {
    if text == "L" {
        return Ok(());
    }
    if let Some(day) = text.strip_suffix('L') {
        return value(day, DAY_OF_WEEK).map(drop);
    }
    if let Some((day, nth)) = text.split_once('#') {
        value(day, DAY_OF_WEEK)?;
        return match number(nth) {
            Some(1..=5) => Ok(()),
            _ => Err(format!(
                "invalid occurrence {nth:?} after '#' in day-of-week"
            )),
        };
    }
    validate_list(text, DAY_OF_WEEK)
}

/// A comma list of `*`, `v`, `a-b`, and (where allowed) `*/n`, `v/n`, `a-b/n`.
fn validate_list(text: &str, field: Field) -> Result<(), String> {
    for item in text.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            if !field.steps {
                return Err(format!("'/' is not allowed in the {} field", field.label));
            }
            let max_step = field.max.min(field.max - field.min + 1);
            match number(step) {
                Some(n) if (1..=max_step).contains(&n) => {}
                _ => {
                    return Err(format!(
                        "invalid increment {step:?} in the {} field",
                        field.label
                    ));
                }
            }
        }
        if base == "*" {
            continue;
        }
        if let Some((a, b)) = base.split_once('-') {
            if value(a, field)? > value(b, field)? {
                return Err(format!(
                    "reversed range {base:?} in the {} field",
                    field.label
                ));
            }
        } else {
            value(base, field)?;
        }
    }
    Ok(())
}

fn value(text: &str, field: Field) -> Result<u32, String> {
    let parsed = number(text).or_else(|| {
        field
            .names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(text))
            .and_then(|idx| u32::try_from(idx).ok())
            .map(|idx| idx + field.min)
    });
    match parsed {
        Some(v) if (field.min..=field.max).contains(&v) => Ok(v),
        _ => Err(format!(
            "invalid value {text:?} in the {} field (allowed {}-{})",
            field.label, field.min, field.max
        )),
    }
}

/// A non-empty run of ASCII digits that fits in `u32`.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn validate_rate(body: &str) -> Result<(), String> {
    let Some((count, unit)) = body.split_once(' ') else {
        return Err("rate needs a value and a unit".into());
    };
    let count = match number(count) {
        Some(n) if n >= 1 && !count.starts_with('0') => n,
        _ => return Err(format!("invalid rate value {count:?}")),
    };
    let singular = match unit {
        "minute" | "hour" | "day" => true,
        "minutes" | "hours" | "days" => false,
        _ => {
            return Err(format!(
                "invalid rate unit {unit:?} (minute(s), hour(s) or day(s))"
            ));
        }
    };
    if singular != (count == 1) {
        return Err(format!(
            "rate unit {unit:?} does not agree with value {count}"
        ));
    }
    Ok(())
}

fn validate_at(body: &str) -> Result<(), String> {
    let b = body.as_bytes();
    let shape_ok = b.len() == 19
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return Err("at needs yyyy-mm-ddThh:mm:ss".into());
    }
    let part = |range: std::ops::Range<usize>| body[range].parse::<u32>().ok();
    let date = part(0..4)
        .and_then(|y| i32::try_from(y).ok())
        .zip(part(5..7))
        .zip(part(8..10))
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d));
    let time = part(11..13)
        .zip(part(14..16))
        .zip(part(17..19))
        .and_then(|((h, m), s)| NaiveTime::from_hms_opt(h, m, s));
    match (date, time) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err(format!("invalid date or time in at({body})")),
    }
}
