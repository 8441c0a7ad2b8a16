//! Tests for the schedule module: syntax tables, DST tables, an independent brute-force
//! reference, EventBridge rendering and validation, robustness and run semantics.

mod dst;
mod eventbridge;
mod reference;
mod robustness;
mod semantics;
mod syntax;

use chrono::{DateTime, SecondsFormat, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::{Schedule, ScheduleType, Timezone};

/// Zones used by the randomised tests: the DST zones of the tables plus a few with unusual
/// offsets or transitions at midnight. Every offset change in these zones is at most one hour.
pub(super) const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Pacific/Chatham",
    "America/St_Johns",
];

/// Proptest settings: modest case counts (debug builds; `PROPTEST_CASES` overrides them for
/// deeper runs) and no regression files.
pub(super) fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

pub(super) fn utc(text: &str) -> DateTime<Utc> {
    text.parse()
        .unwrap_or_else(|err| panic!("bad test instant {text:?}: {err}"))
}

pub(super) fn zone(name: &str) -> Timezone {
    Timezone::parse(name).unwrap_or_else(|err| panic!("bad test zone {name:?}: {err}"))
}

pub(super) fn schedule(kind: ScheduleType, text: &str, zone_name: &str) -> Schedule {
    Schedule::parse(kind, text, zone(zone_name))
        .unwrap_or_else(|err| panic!("{kind} {text:?} in {zone_name} should parse: {err}"))
}

pub(super) fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `first_run(from)` followed by `next_run(previous, previous)`, up to `n` fire times.
/// The first `n` fire times after `from`, through the preview engine
/// (`Schedule::upcoming`): every table and property test here checks it, the brute-force
/// reference (`reference.rs`) across DST zones included.
pub(super) fn runs(schedule: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    schedule.upcoming(from, n)
}

pub(super) fn run_strings(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
    runs(schedule, utc(from), n).into_iter().map(fmt).collect()
}

// ---------------------------------------------------------------------------------------------
// Generators of valid cron expressions (text), shared by the property tests.
// ---------------------------------------------------------------------------------------------

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DOW_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Clone, Copy, Debug)]
struct FieldShape {
    min: u32,
    max: u32,
    /// Names for `min..`, if the field has names (day-of-week names cover 0-6 only).
    names: Option<&'static [&'static str]>,
}

const MINUTE: FieldShape = FieldShape {
    min: 0,
    max: 59,
    names: None,
};
const HOUR: FieldShape = FieldShape {
    min: 0,
    max: 23,
    names: None,
};
const DOM: FieldShape = FieldShape {
    min: 1,
    max: 31,
    names: None,
};
const MONTH: FieldShape = FieldShape {
    min: 1,
    max: 12,
    names: Some(&MONTH_NAMES),
};
const DOW: FieldShape = FieldShape {
    min: 0,
    max: 7,
    names: Some(&DOW_NAMES),
};

/// A value, sometimes written as a name in random case.
fn value(shape: FieldShape, v: u32, as_name: bool, case: u8) -> String {
    let name = shape
        .names
        .and_then(|names| names.get((v - shape.min) as usize))
        .filter(|_| as_name);
    match name {
        Some(name) => match case % 3 {
            0 => (*name).to_owned(),
            1 => name.to_lowercase(),
            _ => {
                let mut s = name.to_lowercase();
                s[..1].make_ascii_uppercase();
                s
            }
        },
        None => v.to_string(),
    }
}

/// One list item of any form: `v`, `a-b`, `*/n`, `a-b/n`, `a/n`.
fn item(shape: FieldShape) -> impl Strategy<Value = String> {
    let (min, max) = (shape.min, shape.max);
    let span = max - min + 1;
    let v = move || (min..=max, any::<bool>(), any::<u8>());
    prop_oneof![
        3 => v().prop_map(move |(a, n, c)| value(shape, a, n, c)),
        2 => (v(), v()).prop_map(move |((a, na, ca), (b, nb, cb))| {
            let (lo, hi) = (a.min(b), a.max(b));
            format!("{}-{}", value(shape, lo, na, ca), value(shape, hi, nb, cb))
        }),
        2 => (1..=span).prop_map(|n| format!("*/{n}")),
        1 => (v(), v(), 1..=span).prop_map(move |((a, na, ca), (b, nb, cb), n)| {
            let (lo, hi) = (a.min(b), a.max(b));
            format!("{}-{}/{n}", value(shape, lo, na, ca), value(shape, hi, nb, cb))
        }),
        1 => (v(), 1..=span).prop_map(move |((a, na, ca), n)| format!("{}/{n}", value(shape, a, na, ca))),
    ]
}

/// A whole field: mostly `*`, a single item or a short list.
fn field(shape: FieldShape, star_weight: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        star_weight => Just("*".to_owned()),
        3 => item(shape),
        2 => prop::collection::vec(item(shape), 2..=3).prop_map(|items| items.join(",")),
    ]
}

/// Hours biased towards the small hours, where DST transitions happen.
fn hour_field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => field(HOUR, 3),
        1 => prop::sample::select(vec!["0", "1", "2", "3", "1-3", "2,3", "0-4/2", "23"])
            .prop_map(str::to_owned),
    ]
}

/// Random valid (syntactically) cron expressions, including macros, names, steps, lists,
/// both-day-field cases and random whitespace. Some may never fire (static check rejects
/// them); the properties account for that.
pub(super) fn cron_expression() -> impl Strategy<Value = String> {
    let fields = (
        field(MINUTE, 2),
        hour_field(),
        field(DOM, 4),
        field(MONTH, 5),
        field(DOW, 4),
        prop::sample::select(vec![" ", "  ", "\t", " \t "]),
    )
        .prop_map(|(mi, h, dom, mo, dow, sep)| [mi, h, dom, mo, dow].join(sep));
    prop_oneof![
        8 => fields,
        1 => prop::sample::select(vec![
            "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@DAILY",
            "*/30 * * * *", "*/15 1 * * *", "30 2 * * *", "0 0 * * *", "45 1 * * *",
            "0,30 0-3 * * *", "0 0 29 2 *", "0 0 31 * *", "0 0 13 * FRI", "0 2 * * 0",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A zone name from [`ZONES`].
pub(super) fn zone_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(ZONES)
}
