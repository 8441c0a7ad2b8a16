//! An independent brute-force reference for cron schedules, and the property that the engine
//! agrees with it.
//!
//! The reference matches the expression text directly (its own tiny matcher, POSIX OR rule),
//! scans UTC minute by minute, converts each minute to local time in the zone and skips a
//! minute whose local time is the second occurrence of a repeated local time. Nothing here
//! uses the module's parser, bitsets or the `cron` crate.

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::{ZONES, config, cron_expression, fmt, runs, zone, zone_name};
use crate::schedule::{Schedule, ScheduleType};

const MACROS: [(&str, &str); 6] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The five field texts of a (valid) expression.
struct RefCron {
    minute: String,
    hour: String,
    dom: String,
    month: String,
    dow: String,
}

impl RefCron {
    fn new(text: &str) -> RefCron {
        let text = text.trim_matches([' ', '\t']);
        let lower = text.to_lowercase();
        let text = MACROS
            .iter()
            .find(|(m, _)| *m == lower)
            .map_or(text, |(_, e)| *e);
        let f: Vec<String> = text
            .split([' ', '\t'])
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase)
            .collect();
        assert_eq!(f.len(), 5, "reference expects 5 fields: {text:?}");
        RefCron {
            minute: f[0].clone(),
            hour: f[1].clone(),
            dom: f[2].clone(),
            month: f[3].clone(),
            dow: f[4].clone(),
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if !matches(&self.month, date.month(), 1, 12, &MONTHS) {
            return false;
        }
        let weekday = date.weekday().num_days_from_sunday();
        let dom_ok = matches(&self.dom, date.day(), 1, 31, &[]);
        // Sunday may be written as 0 or 7.
        let dow_ok = matches(&self.dow, weekday, 0, 7, &DAYS)
            || (weekday == 0 && matches(&self.dow, 7, 0, 7, &DAYS));
        match (self.dom != "*", self.dow != "*") {
            (true, true) => dom_ok || dow_ok,
            (true, false) => dom_ok,
            (false, true) => dow_ok,
            (false, false) => true,
        }
    }

    fn time_matches(&self, t: NaiveDateTime) -> bool {
        matches(&self.hour, t.hour(), 0, 23, &[]) && matches(&self.minute, t.minute(), 0, 59, &[])
    }

    /// Whether some selected month has some selected day of month (leap years included).
    fn dom_can_fire(&self) -> bool {
        let leap_year = 2024;
        (1..=12).any(|m| {
            matches(&self.month, m, 1, 12, &MONTHS)
                && (1..=31).any(|d| {
                    NaiveDate::from_ymd_opt(leap_year, m, d).is_some()
                        && matches(&self.dom, d, 1, 31, &[])
                })
        })
    }
}

fn num(text: &str, names: &[&str]) -> u32 {
    text.parse()
        .ok()
        .or_else(|| names.iter().position(|n| *n == text).map(|i| i as u32))
        .unwrap_or_else(|| panic!("reference cannot read {text:?}"))
}

/// Whether `v` is selected by the field text (comma list of `*`, `v`, `a-b`, with `/n`).
fn matches(field: &str, v: u32, min: u32, max: u32, names: &[&str]) -> bool {
    let name_base = if names.len() == 12 { 1 } else { 0 };
    let named = |s: &str| {
        s.parse::<u32>()
            .ok()
            .unwrap_or_else(|| num(s, names) + name_base)
    };
    field.split(',').any(|item| {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().expect("step")),
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (named(a), named(b))
        } else if item.contains('/') {
            (named(range), max)
        } else {
            (named(range), named(range))
        };
        v >= lo && v <= hi && (v - lo).is_multiple_of(step)
    })
}

/// Whether the UTC instant `t` is the later of two instants sharing its local time.
fn is_second_occurrence(tz: Tz, t: DateTime<Utc>, local: NaiveDateTime) -> bool {
    match tz.from_local_datetime(&local) {
        LocalResult::Ambiguous(a, b) => t != a.min(b).with_timezone(&Utc),
        _ => false,
    }
}

/// Up to `count` fire times strictly after `after` and no later than `after + horizon`.
fn reference_fires(
    text: &str,
    tz: Tz,
    after: DateTime<Utc>,
    count: usize,
    horizon: Duration,
) -> Vec<DateTime<Utc>> {
    let cron = RefCron::new(text);
    let end = after + horizon;
    // The first whole minute strictly after `after`.
    let mut t = after.with_second(0).expect("second 0") + Duration::minutes(1);
    let mut out = Vec::new();
    while t <= end && out.len() < count {
        let local = t.with_timezone(&tz).naive_local();
        if !cron.day_matches(local.date()) {
            // Skip most of a non-matching local day. Offsets in ZONES change by at most an hour,
            // so stopping 90 local minutes before midnight never skips into the next day.
            let left = 1440 - i64::from(local.hour() * 60 + local.minute());
            t += Duration::minutes((left - 90).max(1));
            continue;
        }
        if cron.time_matches(local) && !is_second_occurrence(tz, t, local) {
            out.push(t);
        }
        t += Duration::minutes(1);
    }
    out
}

/// The UTC instants in `year` at which the zone's UTC offset changes.
fn transitions(tz: Tz, year: i32) -> Vec<DateTime<Utc>> {
    let offset = |t: DateTime<Utc>| tz.offset_from_utc_datetime(&t.naive_utc()).fix();
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .expect("Jan 1");
    let mut out = Vec::new();
    for day in 0..366 {
        let (mut lo, mut hi) = (start + Duration::days(day), start + Duration::days(day + 1));
        if offset(lo) == offset(hi) {
            continue;
        }
        // Binary search for the first minute with the new offset.
        while hi - lo > Duration::minutes(1) {
            let mid = lo + (hi - lo) / 2;
            let mid = mid.with_second(0).expect("second 0");
            if offset(mid) == offset(lo) {
                lo = mid
            } else {
                hi = mid
            }
        }
        out.push(hi);
    }
    out
}

/// A start instant near a DST transition, a month end, or anywhere in the year.
fn start_instant(tz: Tz) -> impl Strategy<Value = DateTime<Utc>> {
    // Offsets from the anchor: anywhere within two days, within three hours, or within minutes.
    let minutes = prop_oneof![1 => -2880..=2880i64, 2 => -180..=180i64, 1 => -10..=10i64];
    (
        2018..=2030i32,
        0..4u8,
        any::<prop::sample::Index>(),
        minutes,
        0..60i64,
        1..=12u32,
        0..366i64,
    )
        .prop_map(move |(year, kind, idx, minutes, seconds, month, day)| {
            let jan1 = Utc
                .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
                .single()
                .expect("Jan 1");
            let anchor = match kind {
                0 | 1 => {
                    let ts = transitions(tz, year);
                    if ts.is_empty() {
                        jan1
                    } else {
                        ts[idx.index(ts.len())]
                    }
                }
                2 => {
                    let next = if month == 12 {
                        (year + 1, 1)
                    } else {
                        (year, month + 1)
                    };
                    Utc.with_ymd_and_hms(next.0, next.1, 1, 0, 0, 0)
                        .single()
                        .expect("month start")
                }
                _ => jan1 + Duration::days(day),
            };
            anchor + Duration::minutes(minutes) + Duration::seconds(seconds)
        })
}

fn case() -> impl Strategy<Value = (String, &'static str, DateTime<Utc>)> {
    (cron_expression(), zone_name()).prop_flat_map(|(expr, zone_name)| {
        let tz = zone(zone_name).tz();
        (Just(expr), Just(zone_name), start_instant(tz))
    })
}

const FIRES: usize = 6;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn cron_fire_times_match_a_brute_force_minute_scan((expr, zone_name, start) in case()) {
        let tz = zone(zone_name);
        let horizon = Duration::days(400);
        match Schedule::parse(ScheduleType::Cron, &expr, tz) {
            Ok(schedule) => {
                let expected: Vec<String> = reference_fires(&expr, tz.tz(), start, FIRES, horizon)
                    .into_iter()
                    .map(fmt)
                    .collect();
                let actual: Vec<String> = runs(&schedule, start, FIRES)
                    .into_iter()
                    .filter(|t| *t <= start + horizon)
                    .map(fmt)
                    .collect();
                prop_assert_eq!(actual, expected, "{:?} in {} after {}", expr, zone_name, fmt(start));
            }
            Err(err) => {
                // Only the static "can never fire" check may reject a generated expression.
                let cron = RefCron::new(&expr);
                prop_assert!(
                    cron.dom != "*" && cron.dow == "*" && !cron.dom_can_fire(),
                    "{:?} rejected: {}", expr, err
                );
            }
        }
    }
}

#[test]
fn the_reference_itself_skips_gaps_and_second_occurrences() {
    // Sanity check of the reference on a hand-computed case (America/New_York, 2025).
    let tz = zone("America/New_York").tz();
    let fires = |expr: &str, from: &str| -> Vec<String> {
        reference_fires(expr, tz, super::utc(from), 3, Duration::days(5))
            .into_iter()
            .map(fmt)
            .collect()
    };
    assert_eq!(
        fires("30 2 * * *", "2025-03-08T08:00:00Z"),
        [
            "2025-03-10T06:30:00Z",
            "2025-03-11T06:30:00Z",
            "2025-03-12T06:30:00Z"
        ]
    );
    assert_eq!(
        fires("*/30 1 * * *", "2025-11-02T04:00:00Z"),
        [
            "2025-11-02T05:00:00Z",
            "2025-11-02T05:30:00Z",
            "2025-11-03T06:00:00Z"
        ]
    );
}

#[test]
fn transitions_are_found_for_every_dst_zone_in_the_list() {
    for name in ZONES {
        let found = transitions(zone(name).tz(), 2020).len();
        let expected = match *name {
            "UTC" | "Asia/Kolkata" | "America/Sao_Paulo" => 0,
            _ => 2,
        };
        assert_eq!(found, expected, "{name}");
    }
}
