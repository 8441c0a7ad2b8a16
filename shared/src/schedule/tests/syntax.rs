//! Tables for every supported syntax form, and for invalid input with the exact API message.

use serde::Deserialize;
use serde::de::IntoDeserializer;
use serde::de::value::{Error as DeError, StrDeserializer};

use super::{fmt, run_strings, schedule, utc, zone};
use crate::schedule::{Schedule, ScheduleError, ScheduleType, Timezone};

fn parse_error(kind: ScheduleType, text: &str, zone_name: &str) -> ScheduleError {
    match Schedule::parse(kind, text, zone(zone_name)) {
        Ok(s) => panic!(
            "{kind} {text:?} should be rejected, parsed as {:?}",
            s.eventbridge()
        ),
        Err(err) => err,
    }
}

// ----------------------------------------------------------------------------- schedule type

#[test]
fn schedule_types_parse_from_exact_lowercase_names_only() {
    for kind in ScheduleType::ALL {
        assert_eq!(kind.as_str().parse::<ScheduleType>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    for bad in [
        "",
        "Cron",
        "CRON",
        " cron",
        "cron ",
        "intervals",
        "one",
        "once\n",
    ] {
        let err = bad.parse::<ScheduleType>().expect_err(bad);
        assert_eq!(err, ScheduleError::InvalidScheduleType);
        assert_eq!(
            err.message(),
            "is not included in the list (cron, interval, once)"
        );
        assert_eq!(err.field(), "schedule_type");
    }
}

#[test]
fn schedule_types_deserialize_from_lowercase_names() {
    for (text, kind) in [
        ("cron", ScheduleType::Cron),
        ("interval", ScheduleType::Interval),
        ("once", ScheduleType::Once),
    ] {
        let de: StrDeserializer<'_, DeError> = text.into_deserializer();
        assert_eq!(ScheduleType::deserialize(de), Ok(kind));
    }
    let de: StrDeserializer<'_, DeError> = "Cron".into_deserializer();
    assert!(ScheduleType::deserialize(de).is_err());
}

// ----------------------------------------------------------------------------------- timezone

#[test]
fn timezones_parse_from_exact_iana_names() {
    for name in [
        "UTC",
        "Etc/UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Argentina/Buenos_Aires",
    ] {
        let tz = Timezone::parse(name).expect(name);
        assert_eq!(tz.name(), name);
        assert_eq!(tz.to_string(), name);
        assert_eq!(tz.tz().name(), name);
    }
    assert_eq!(Timezone::UTC.name(), "UTC");
    assert_eq!(Timezone::default(), Timezone::UTC);
}

#[test]
fn timezones_that_are_not_exact_iana_names_are_rejected() {
    for bad in [
        "",
        "utc",
        "europe/berlin",
        "Europe/Berlin ",
        " UTC",
        "Mars/Olympus_Mons",
        "+01:00",
        "CEST",
        "Europe/Berlin\0",
    ] {
        let err = Timezone::parse(bad).expect_err(bad);
        assert_eq!(err.message(), "is not a valid IANA timezone");
        assert_eq!(err.field(), "timezone");
    }
}

#[test]
fn timezones_deserialize_from_their_names() {
    let de: StrDeserializer<'_, DeError> = "Europe/Berlin".into_deserializer();
    assert_eq!(Timezone::deserialize(de), Ok(zone("Europe/Berlin")));
    let de: StrDeserializer<'_, DeError> = "Nowhere/Land".into_deserializer();
    assert!(Timezone::deserialize(de).is_err());
}

// ----------------------------------------------------------------------------------- interval

#[test]
fn the_quickstart_every_5m_job_created_at_ten_first_fires_at_five_past() {
    let s = schedule(ScheduleType::Interval, "every_5m", "UTC");
    assert_eq!(
        s.first_run(utc("2025-01-15T10:00:00Z")),
        Some(utc("2025-01-15T10:05:00Z"))
    );
}

#[test]
fn every_interval_preset_and_every_n_form_parses_to_its_period_and_rate() {
    let cases: &[(&str, u32, &str, Option<u32>)] = &[
        ("every_30s", 30, "rate(1 minute)", Some(30)),
        ("every_1m", 60, "rate(1 minute)", None),
        ("every_5m", 300, "rate(5 minutes)", None),
        ("every_15m", 900, "rate(15 minutes)", None),
        ("every_30m", 1_800, "rate(30 minutes)", None),
        ("every_1h", 3_600, "rate(1 hour)", None),
        ("every_6h", 21_600, "rate(6 hours)", None),
        ("every_12h", 43_200, "rate(12 hours)", None),
        ("every_1d", 86_400, "rate(1 day)", None),
        ("every_7m", 420, "rate(7 minutes)", None),
        ("every_90m", 5_400, "rate(90 minutes)", None),
        ("every_60m", 3_600, "rate(1 hour)", None),
        ("every_120m", 7_200, "rate(2 hours)", None),
        ("every_1440m", 86_400, "rate(1 day)", None),
        ("every_36h", 129_600, "rate(36 hours)", None),
        ("every_48h", 172_800, "rate(2 days)", None),
        ("every_10d", 864_000, "rate(10 days)", None),
        ("every_365d", 31_536_000, "rate(365 days)", None),
        ("every_8760h", 31_536_000, "rate(365 days)", None),
        ("every_525600m", 31_536_000, "rate(365 days)", None),
    ];
    for (text, seconds, rate, offset) in cases {
        // The timezone is irrelevant to intervals.
        let s = schedule(ScheduleType::Interval, text, "Australia/Lord_Howe");
        assert_eq!(s.kind(), ScheduleType::Interval);
        assert_eq!(s.interval_seconds(), Some(*seconds), "{text}");
        let eb = s.eventbridge();
        assert_eq!(eb.expressions, [*rate], "{text}");
        assert_eq!(eb.sub_minute_offset, *offset, "{text}");
        assert!(eb.anchored, "{text}");
        let from = utc("2025-03-30T00:59:30Z");
        assert_eq!(
            s.first_run(from),
            Some(from + chrono::Duration::seconds(i64::from(*seconds))),
            "{text}"
        );
    }
}

#[test]
fn every_30s_really_fires_every_30_seconds() {
    let s = schedule(ScheduleType::Interval, "every_30s", "UTC");
    assert_eq!(
        run_strings(&s, "2025-01-15T10:00:00Z", 3),
        [
            "2025-01-15T10:00:30Z",
            "2025-01-15T10:01:00Z",
            "2025-01-15T10:01:30Z"
        ]
    );
}

#[test]
fn malformed_intervals_are_rejected_with_the_interval_message() {
    for bad in [
        "",
        " ",
        "5m",
        "every_",
        "every_m",
        "every_5",
        "every_0m",
        "every_0h",
        "every_0d",
        "every_05m",
        "every_007h",
        "every_45s",
        "every_60s",
        "every_1s",
        "every_366d",
        "every_8761h",
        "every_525601m",
        "every_99999999999999999999m",
        "every_5M",
        "EVERY_5M",
        "Every_5m",
        "every_5m ",
        " every_5m",
        "every_5m\n",
        "every 5m",
        "every__5m",
        "every_-5m",
        "every_+5m",
        "every_1.5h",
        "every_5mm",
        "every_1w",
        "every_１m",
        "every_5é",
    ] {
        let err = parse_error(ScheduleType::Interval, bad, "UTC");
        assert_eq!(err.message(), "is not a valid interval", "{bad:?}");
        assert_eq!(err.field(), "schedule", "{bad:?}");
    }
}

// --------------------------------------------------------------------------------------- cron

#[test]
fn every_cron_field_form_renders_to_the_expected_eventbridge_expressions() {
    let cases: &[(&str, &[&str])] = &[
        ("* * * * *", &["cron(* * * * ? *)"]),
        ("0 9 * * *", &["cron(0 9 * * ? *)"]),
        ("00 09 * * *", &["cron(0 9 * * ? *)"]),
        ("59 23 31 12 *", &["cron(59 23 31 12 ? *)"]),
        // Ranges, steps and lists.
        ("0-5 * * * *", &["cron(0-5 * * * ? *)"]),
        ("1,15 * * * *", &["cron(1,15 * * * ? *)"]),
        ("1,2,3,10-12 * * * *", &["cron(1-3,10-12 * * * ? *)"]),
        ("*/15 * * * *", &["cron(*/15 * * * ? *)"]),
        ("*/1 * * * *", &["cron(* * * * ? *)"]),
        ("*/60 * * * *", &["cron(0 * * * ? *)"]),
        ("5/15 * * * *", &["cron(5/15 * * * ? *)"]),
        ("10-50/20 * * * *", &["cron(10/20 * * * ? *)"]),
        ("0-10/5 * * * *", &["cron(0,5,10 * * * ? *)"]),
        ("0 0,12 * * *", &["cron(0 */12 * * ? *)"]),
        ("0 9-17 * * *", &["cron(0 9-17 * * ? *)"]),
        ("0 */2 * * *", &["cron(0 */2 * * ? *)"]),
        ("0 1/2 * * *", &["cron(0 1/2 * * ? *)"]),
        // Months by number and name, ranges and steps.
        ("0 0 1 JAN-MAR *", &["cron(0 0 1 1-3 ? *)"]),
        ("0 0 1 jan,Jul *", &["cron(0 0 1 */6 ? *)"]),
        ("0 0 1 */3 *", &["cron(0 0 1 */3 ? *)"]),
        ("0 0 1 6-12/2 *", &["cron(0 0 1 6/2 ? *)"]),
        ("0 0 1 dec *", &["cron(0 0 1 12 ? *)"]),
        // Day of month only.
        ("0 12 15 * *", &["cron(0 12 15 * ? *)"]),
        ("0 0 */2 * *", &["cron(0 0 */2 * ? *)"]),
        ("0 0 1-31 * *", &["cron(0 0 * * ? *)"]),
        // Day of week only (SUN=1 in EventBridge); Sunday is 0 or 7.
        ("0 9 * * 0", &["cron(0 9 ? * 1 *)"]),
        ("0 9 * * 7", &["cron(0 9 ? * 1 *)"]),
        ("0 9 * * SUN", &["cron(0 9 ? * 1 *)"]),
        ("0 9 * * sat", &["cron(0 9 ? * 7 *)"]),
        ("0 9 * * MON-FRI", &["cron(0 9 ? * 2-6 *)"]),
        ("0 9 * * mon-fri", &["cron(0 9 ? * 2-6 *)"]),
        ("0 9 * * 1-5", &["cron(0 9 ? * 2-6 *)"]),
        ("0 9 * * 5-7", &["cron(0 9 ? * 1,6,7 *)"]),
        ("0 9 * * 0-7", &["cron(0 9 * * ? *)"]),
        ("0 9 * * */2", &["cron(0 9 ? * 1,3,5,7 *)"]),
        ("0 9 * * 1/2", &["cron(0 9 ? * 1,2,4,6 *)"]),
        ("0 9 * * MON,WED,FRI", &["cron(0 9 ? * 2,4,6 *)"]),
        // Both day fields restricted: POSIX OR, one schedule per day field.
        ("0 0 1 * MON", &["cron(0 0 1 * ? *)", "cron(0 0 ? * 2 *)"]),
        ("0 0 13 * FRI", &["cron(0 0 13 * ? *)", "cron(0 0 ? * 6 *)"]),
        (
            "0 0 */2 * MON",
            &["cron(0 0 */2 * ? *)", "cron(0 0 ? * 2 *)"],
        ),
        (
            "0 0 1 * */2",
            &["cron(0 0 1 * ? *)", "cron(0 0 ? * 1,3,5,7 *)"],
        ),
        // ... unless one side already covers every day, or the day-of-month side never fires.
        ("0 0 1-31 * MON", &["cron(0 0 * * ? *)"]),
        ("0 0 15 * 0-6", &["cron(0 0 * * ? *)"]),
        ("0 0 31 2 MON", &["cron(0 0 ? 2 2 *)"]),
        // Rarely firing but possible.
        ("0 0 29 2 *", &["cron(0 0 29 2 ? *)"]),
        ("0 0 30 1,2 *", &["cron(0 0 30 1,2 ? *)"]),
        // Whitespace.
        ("\t0  9\t*  * *  ", &["cron(0 9 * * ? *)"]),
        // Macros, case-insensitive, whitespace allowed around them.
        ("@hourly", &["cron(0 * * * ? *)"]),
        ("@daily", &["cron(0 0 * * ? *)"]),
        ("@weekly", &["cron(0 0 ? * 1 *)"]),
        ("@monthly", &["cron(0 0 1 * ? *)"]),
        ("@yearly", &["cron(0 0 1 1 ? *)"]),
        ("@annually", &["cron(0 0 1 1 ? *)"]),
        ("@DAILY", &["cron(0 0 * * ? *)"]),
        (" @Weekly\t", &["cron(0 0 ? * 1 *)"]),
    ];
    for (text, expected) in cases {
        let s = schedule(ScheduleType::Cron, text, "Europe/Berlin");
        assert_eq!(s.text(), *text);
        let eb = s.eventbridge();
        assert_eq!(eb.expressions, *expected, "{text:?}");
        assert_eq!(eb.timezone, zone("Europe/Berlin"));
        assert!(!eb.anchored);
        assert_eq!(eb.sub_minute_offset, None);
    }
}

#[test]
fn cron_day_fields_follow_the_posix_or_rule() {
    // (expression, start, expected fires in UTC)
    let cases: &[(&str, &str, &[&str])] = &[
        // 2025-01-01 is a Wednesday. Either the 13th or a Friday.
        (
            "0 0 13 * FRI",
            "2025-01-01T00:00:00Z",
            &[
                "2025-01-03T00:00:00Z",
                "2025-01-10T00:00:00Z",
                "2025-01-13T00:00:00Z",
                "2025-01-17T00:00:00Z",
                "2025-01-24T00:00:00Z",
                "2025-01-31T00:00:00Z",
                "2025-02-07T00:00:00Z",
                "2025-02-13T00:00:00Z",
            ],
        ),
        // `*/2` counts as restricted: odd days OR Mondays.
        (
            "0 0 */2 * MON",
            "2025-01-01T00:00:00Z",
            &[
                "2025-01-03T00:00:00Z",
                "2025-01-05T00:00:00Z",
                "2025-01-06T00:00:00Z",
                "2025-01-07T00:00:00Z",
                "2025-01-09T00:00:00Z",
            ],
        ),
        // Only day of month restricted: odd days only.
        (
            "0 0 */2 * *",
            "2025-01-01T00:00:00Z",
            &[
                "2025-01-03T00:00:00Z",
                "2025-01-05T00:00:00Z",
                "2025-01-07T00:00:00Z",
                "2025-01-09T00:00:00Z",
            ],
        ),
        // `*/2` in day-of-week is restricted too: the 15th OR Sun/Tue/Thu/Sat.
        (
            "0 0 15 * */2",
            "2025-01-12T12:00:00Z",
            &[
                "2025-01-14T00:00:00Z",
                "2025-01-15T00:00:00Z",
                "2025-01-16T00:00:00Z",
                "2025-01-18T00:00:00Z",
                "2025-01-19T00:00:00Z",
            ],
        ),
        // Only day of week restricted.
        (
            "30 12 * * SAT",
            "2025-01-01T00:00:00Z",
            &["2025-01-04T12:30:00Z", "2025-01-11T12:30:00Z"],
        ),
        // Day of month with a month restriction.
        (
            "0 12 15 3,6 *",
            "2025-01-01T00:00:00Z",
            &[
                "2025-03-15T12:00:00Z",
                "2025-06-15T12:00:00Z",
                "2026-03-15T12:00:00Z",
            ],
        ),
        // Feb 29 fires in leap years only.
        (
            "0 0 29 2 *",
            "2025-01-01T00:00:00Z",
            &["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"],
        ),
        // The 31st skips shorter months.
        (
            "0 0 31 * *",
            "2025-01-31T00:00:00Z",
            &[
                "2025-03-31T00:00:00Z",
                "2025-05-31T00:00:00Z",
                "2025-07-31T00:00:00Z",
                "2025-08-31T00:00:00Z",
            ],
        ),
        // Macros.
        (
            "@hourly",
            "2025-01-01T10:00:00Z",
            &["2025-01-01T11:00:00Z", "2025-01-01T12:00:00Z"],
        ),
        (
            "@weekly",
            "2025-01-01T00:00:00Z",
            &["2025-01-05T00:00:00Z", "2025-01-12T00:00:00Z"],
        ),
        (
            "@monthly",
            "2025-01-01T00:00:00Z",
            &["2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"],
        ),
        (
            "@annually",
            "2025-01-01T00:00:00Z",
            &["2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"],
        ),
        // Steps from a start value run to the end of the field.
        (
            "50/5 23 * * *",
            "2025-01-01T00:00:00Z",
            &[
                "2025-01-01T23:50:00Z",
                "2025-01-01T23:55:00Z",
                "2025-01-02T23:50:00Z",
            ],
        ),
    ];
    for (text, from, expected) in cases {
        let s = schedule(ScheduleType::Cron, text, "UTC");
        assert_eq!(run_strings(&s, from, expected.len()), *expected, "{text:?}");
    }
}

#[test]
fn cron_times_are_read_in_the_jobs_timezone() {
    let s = schedule(ScheduleType::Cron, "0 9 * * *", "America/New_York");
    assert_eq!(
        run_strings(&s, "2025-01-15T00:00:00Z", 1),
        ["2025-01-15T14:00:00Z"]
    );
    let s = schedule(ScheduleType::Cron, "0 9 * * *", "Asia/Kolkata");
    assert_eq!(
        run_strings(&s, "2025-01-15T00:00:00Z", 1),
        ["2025-01-15T03:30:00Z"]
    );
}

#[test]
fn unsupported_or_impossible_cron_expressions_are_rejected_with_the_cron_message() {
    for bad in [
        "",
        "   ",
        "* * * *",
        "* * * * * *",
        "0 * * * * * *",
        "@reboot",
        "@every 5m",
        "@",
        "@daily *",
        "0 0 ? * MON",
        "0 0 * * ?",
        "0 0 L * *",
        "0 0 15W * *",
        "0 0 LW * *",
        "0 0 * * 5L",
        "0 0 * * MON#2",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "* * * * 8",
        "-1 * * * *",
        "5-1 * * * *",
        "* * * DEC-JAN *",
        "* * * * SAT-SUN",
        "*/0 * * * *",
        "0-10/0 * * * *",
        "*/ * * * *",
        "/5 * * * *",
        "1/ * * * *",
        "*/-1 * * * *",
        "1,,2 * * * *",
        ",1 * * * *",
        "1, * * * *",
        "1-2-3 * * * *",
        "1- * * * *",
        "*-5 * * * *",
        "a * * * *",
        "* * * FOO *",
        "* * * JANUARY *",
        "* * * * MONDAY",
        "* * * * MO",
        "* * JAN * *",
        "MON * * * *",
        "99999999999 * * * *",
        "*/99999999999 * * * *",
        "０ * * * *",
        "0\n0 * * *",
        "0 0 30 2 *",
        "0 0 31 4,6 *",
        "0 0 31 2,4,6,9,11 *",
        "0 0 30,31 FEB *",
    ] {
        let err = parse_error(ScheduleType::Cron, bad, "UTC");
        assert_eq!(err.message(), "is not a valid cron expression", "{bad:?}");
        assert_eq!(err.field(), "schedule", "{bad:?}");
    }
}

// --------------------------------------------------------------------------------------- once

#[test]
fn once_datetimes_parse_in_every_supported_form() {
    // (text, zone, instant, rendered at(), rendering zone)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "2030-01-15T10:00:00Z",
            "UTC",
            "2030-01-15T10:00:00Z",
            "at(2030-01-15T10:00:00)",
            "UTC",
        ),
        (
            "2030-01-15t10:00:00z",
            "UTC",
            "2030-01-15T10:00:00Z",
            "at(2030-01-15T10:00:00)",
            "UTC",
        ),
        (
            "2030-01-15T10:00:00+02:00",
            "UTC",
            "2030-01-15T08:00:00Z",
            "at(2030-01-15T08:00:00)",
            "UTC",
        ),
        (
            "2030-01-15T10:00:00-05:30",
            "UTC",
            "2030-01-15T15:30:00Z",
            "at(2030-01-15T15:30:00)",
            "UTC",
        ),
        (
            "2030-01-15T10:00:00+0100",
            "UTC",
            "2030-01-15T09:00:00Z",
            "at(2030-01-15T09:00:00)",
            "UTC",
        ),
        (
            "2030-01-15T10:00:00+01",
            "UTC",
            "2030-01-15T09:00:00Z",
            "at(2030-01-15T09:00:00)",
            "UTC",
        ),
        (
            "2030-01-15T10:00Z",
            "UTC",
            "2030-01-15T10:00:00Z",
            "at(2030-01-15T10:00:00)",
            "UTC",
        ),
        // Fractional seconds are truncated.
        (
            "2030-01-15T10:00:00.999Z",
            "UTC",
            "2030-01-15T10:00:00Z",
            "at(2030-01-15T10:00:00)",
            "UTC",
        ),
        (
            "2030-01-15T10:00:59,5+00:00",
            "UTC",
            "2030-01-15T10:00:59Z",
            "at(2030-01-15T10:00:59)",
            "UTC",
        ),
        // With an offset the zone only affects the rendering.
        (
            "2030-01-15T10:00:00Z",
            "Asia/Kolkata",
            "2030-01-15T10:00:00Z",
            "at(2030-01-15T15:30:00)",
            "Asia/Kolkata",
        ),
        // Without an offset the local time is read in the job's zone.
        (
            "2030-01-15T10:00:00",
            "Europe/Berlin",
            "2030-01-15T09:00:00Z",
            "at(2030-01-15T10:00:00)",
            "Europe/Berlin",
        ),
        (
            "2030-01-15T10:00",
            "Europe/Berlin",
            "2030-01-15T09:00:00Z",
            "at(2030-01-15T10:00:00)",
            "Europe/Berlin",
        ),
        (
            "2030-01-15 10:00:00",
            "America/New_York",
            "2030-01-15T15:00:00Z",
            "at(2030-01-15T10:00:00)",
            "America/New_York",
        ),
        (
            "2030-07-15T10:00:00",
            "America/New_York",
            "2030-07-15T14:00:00Z",
            "at(2030-07-15T10:00:00)",
            "America/New_York",
        ),
        (
            "2028-02-29T12:00:00",
            "UTC",
            "2028-02-29T12:00:00Z",
            "at(2028-02-29T12:00:00)",
            "UTC",
        ),
        // An ambiguous local time means its first occurrence; it is rendered in UTC so AWS
        // cannot pick the other one.
        (
            "2025-11-02T01:30:00",
            "America/New_York",
            "2025-11-02T05:30:00Z",
            "at(2025-11-02T05:30:00)",
            "UTC",
        ),
        (
            "2025-11-02T06:30:00Z",
            "America/New_York",
            "2025-11-02T06:30:00Z",
            "at(2025-11-02T06:30:00)",
            "UTC",
        ),
        // A gap time with an explicit offset is a plain instant.
        (
            "2025-03-09T02:30:00-05:00",
            "America/New_York",
            "2025-03-09T07:30:00Z",
            "at(2025-03-09T03:30:00)",
            "America/New_York",
        ),
    ];
    for (text, zone_name, instant, at, at_zone) in cases {
        let s = schedule(ScheduleType::Once, text, zone_name);
        assert_eq!(s.once_at().map(fmt).as_deref(), Some(*instant), "{text}");
        let eb = s.eventbridge();
        assert_eq!(eb.expressions, [*at], "{text}");
        assert_eq!(eb.timezone, zone(at_zone), "{text}");
        assert!(!eb.anchored);
    }
}

#[test]
fn once_local_times_in_a_dst_gap_do_not_exist_in_the_jobs_timezone() {
    for (text, zone_name) in [
        ("2025-03-09T02:30:00", "America/New_York"),
        ("2025-03-30T02:30", "Europe/Berlin"),
        ("2025-03-30 01:15:00", "Europe/London"),
        ("2025-10-05T02:15:00", "Australia/Lord_Howe"),
    ] {
        let err = parse_error(ScheduleType::Once, text, zone_name);
        assert_eq!(
            err.message(),
            "does not exist in the job's timezone",
            "{text}"
        );
        assert_eq!(err.field(), "schedule");
    }
}

#[test]
fn malformed_once_datetimes_are_rejected_with_the_iso_message() {
    for bad in [
        "",
        "2030-01-15",
        "2030-01-15T",
        "2030-01-15T10",
        "2030-01-15T10:0",
        "2030-01-15T1:00:00",
        "2030-1-15T10:00:00",
        "30-01-15T10:00:00",
        "+12030-01-15T10:00:00Z",
        "2030-13-01T00:00:00",
        "2030-00-10T00:00:00",
        "2030-02-30T00:00:00",
        "2029-02-29T00:00:00",
        "2030-01-15T24:00:00",
        "2030-01-15T10:60:00",
        "2030-01-15T10:00:60",
        "2030-01-15T10:00:00+24:00",
        "2030-01-15T10:00:00+01:60",
        "2030-01-15T10:00:00+0",
        "2030-01-15T10:00:00+01:0",
        "2030-01-15T10:00:00.",
        "2030-01-15T10:00:00.5.5Z",
        "2030-01-15T10:00:00Zjunk",
        "2030-01-15T10:00:00 Z",
        "2030-01-15T10:00:00 ",
        " 2030-01-15T10:00:00",
        "2030-01-15_10:00:00",
        "2030/01/15 10:00:00",
        "tomorrow",
        "1736935200",
        "２０３０-01-15T10:00:00",
    ] {
        let err = parse_error(ScheduleType::Once, bad, "UTC");
        assert_eq!(
            err.message(),
            "must be a valid ISO 8601 datetime",
            "{bad:?}"
        );
        assert_eq!(err.field(), "schedule", "{bad:?}");
    }
}

#[test]
fn error_messages_are_the_api_messages() {
    let cases = [
        (
            ScheduleError::InvalidCron { reason: "x".into() },
            "is not a valid cron expression",
        ),
        (
            ScheduleError::InvalidInterval { reason: "x".into() },
            "is not a valid interval",
        ),
        (
            ScheduleError::InvalidDatetime { reason: "x".into() },
            "must be a valid ISO 8601 datetime",
        ),
        (
            ScheduleError::InvalidTimezone,
            "is not a valid IANA timezone",
        ),
        (
            ScheduleError::NonexistentLocalTime {
                local: utc("2025-03-09T02:30:00Z").naive_utc(),
                timezone: zone("America/New_York"),
            },
            "does not exist in the job's timezone",
        ),
    ];
    for (err, message) in cases {
        assert_eq!(err.message(), message);
        assert!(err.to_string().contains(message), "{err}");
    }
}
