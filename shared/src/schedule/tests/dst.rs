//! Daylight saving time tables: a local time inside a gap is skipped that day, a repeated local
//! time fires once at its first occurrence, and sub-hourly schedules stay strictly increasing
//! without duplicates across the repeated hour.

use super::{run_strings, runs, schedule, utc};
use crate::schedule::ScheduleType;

/// (zone, expression, start, expected fire times after start)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
);

fn check(cases: &[Case]) {
    for (zone, expr, from, expected) in cases {
        let s = schedule(ScheduleType::Cron, expr, zone);
        assert_eq!(
            run_strings(&s, from, expected.len()),
            *expected,
            "{expr:?} in {zone} from {from}"
        );
    }
}

#[test]
fn a_daily_job_inside_the_spring_forward_gap_is_skipped_that_day() {
    check(&[
        // New York 2025-03-09: 02:00 EST -> 03:00 EDT.
        (
            "America/New_York",
            "30 2 * * *",
            "2025-03-07T12:00:00Z",
            &[
                "2025-03-08T07:30:00Z",
                "2025-03-10T06:30:00Z",
                "2025-03-11T06:30:00Z",
            ],
        ),
        // Berlin 2025-03-30: 02:00 CET -> 03:00 CEST.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2025-03-28T12:00:00Z",
            &["2025-03-29T01:30:00Z", "2025-03-31T00:30:00Z"],
        ),
        // London 2025-03-30: 01:00 GMT -> 02:00 BST.
        (
            "Europe/London",
            "30 1 * * *",
            "2025-03-28T12:00:00Z",
            &["2025-03-29T01:30:00Z", "2025-03-31T00:30:00Z"],
        ),
        // Sydney 2025-10-05: 02:00 AEST -> 03:00 AEDT.
        (
            "Australia/Sydney",
            "30 2 * * *",
            "2025-10-03T00:00:00Z",
            &["2025-10-03T16:30:00Z", "2025-10-05T15:30:00Z"],
        ),
        // Lord Howe 2025-10-05: 02:00 +10:30 -> 02:30 +11 (a 30-minute gap).
        (
            "Australia/Lord_Howe",
            "15 2 * * *",
            "2025-10-03T00:00:00Z",
            &["2025-10-03T15:45:00Z", "2025-10-05T15:15:00Z"],
        ),
        // Just outside the 30-minute gap: 02:45 exists every day.
        (
            "Australia/Lord_Howe",
            "45 2 * * *",
            "2025-10-03T00:00:00Z",
            &[
                "2025-10-03T16:15:00Z",
                "2025-10-04T15:45:00Z",
                "2025-10-05T15:45:00Z",
            ],
        ),
        // Kolkata has no DST: 02:30 IST every day.
        (
            "Asia/Kolkata",
            "30 2 * * *",
            "2025-03-08T00:00:00Z",
            &[
                "2025-03-08T21:00:00Z",
                "2025-03-09T21:00:00Z",
                "2025-03-10T21:00:00Z",
            ],
        ),
    ]);
}

#[test]
fn a_daily_job_inside_the_repeated_hour_fires_once_at_the_first_occurrence() {
    check(&[
        // New York 2025-11-02: 02:00 EDT -> 01:00 EST; 01:30 occurs at 05:30Z and 06:30Z.
        (
            "America/New_York",
            "30 1 * * *",
            "2025-11-01T12:00:00Z",
            &["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"],
        ),
        // Berlin 2025-10-26: 03:00 CEST -> 02:00 CET.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2025-10-25T12:00:00Z",
            &["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"],
        ),
        // London 2025-10-26: 02:00 BST -> 01:00 GMT.
        (
            "Europe/London",
            "30 1 * * *",
            "2025-10-25T12:00:00Z",
            &["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"],
        ),
        // Sydney 2025-04-06: 03:00 AEDT -> 02:00 AEST.
        (
            "Australia/Sydney",
            "30 2 * * *",
            "2025-04-04T00:00:00Z",
            &[
                "2025-04-04T15:30:00Z",
                "2025-04-05T15:30:00Z",
                "2025-04-06T16:30:00Z",
            ],
        ),
        // Lord Howe 2025-04-06: 02:00 +11 -> 01:30 +10:30; 01:45 occurs at 14:45Z and 15:15Z.
        (
            "Australia/Lord_Howe",
            "45 1 * * *",
            "2025-04-05T00:00:00Z",
            &["2025-04-05T14:45:00Z", "2025-04-06T15:15:00Z"],
        ),
        // Just before the repeated half hour: 01:15 exists once.
        (
            "Australia/Lord_Howe",
            "15 1 * * *",
            "2025-04-04T00:00:00Z",
            &[
                "2025-04-04T14:15:00Z",
                "2025-04-05T14:15:00Z",
                "2025-04-06T14:45:00Z",
            ],
        ),
    ]);
}

#[test]
fn a_daily_job_resumed_during_the_second_pass_waits_for_the_next_day() {
    check(&[
        // 05:30Z was the first 01:30; at 06:10Z (01:10 EST, second pass) the next is tomorrow.
        (
            "America/New_York",
            "30 1 * * *",
            "2025-11-02T06:10:00Z",
            &["2025-11-03T06:30:00Z"],
        ),
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2025-10-26T01:00:00Z",
            &["2025-10-27T01:30:00Z"],
        ),
    ]);
}

#[test]
fn half_hourly_jobs_skip_the_second_pass_of_the_repeated_hour() {
    check(&[
        (
            "America/New_York",
            "*/30 * * * *",
            "2025-11-02T04:00:00Z",
            &[
                "2025-11-02T04:30:00Z", // 00:30 EDT
                "2025-11-02T05:00:00Z", // 01:00 EDT
                "2025-11-02T05:30:00Z", // 01:30 EDT
                "2025-11-02T07:00:00Z", // 02:00 EST (01:00 and 01:30 EST skipped)
                "2025-11-02T07:30:00Z",
            ],
        ),
        (
            "Europe/Berlin",
            "*/30 * * * *",
            "2025-10-25T23:45:00Z",
            &[
                "2025-10-26T00:00:00Z", // 02:00 CEST
                "2025-10-26T00:30:00Z", // 02:30 CEST
                "2025-10-26T02:00:00Z", // 03:00 CET
                "2025-10-26T02:30:00Z",
            ],
        ),
        (
            "Europe/London",
            "*/30 * * * *",
            "2025-10-25T23:50:00Z",
            &[
                "2025-10-26T00:00:00Z", // 01:00 BST
                "2025-10-26T00:30:00Z", // 01:30 BST
                "2025-10-26T02:00:00Z", // 02:00 GMT
            ],
        ),
        (
            "Australia/Sydney",
            "*/30 * * * *",
            "2025-04-05T14:50:00Z",
            &[
                "2025-04-05T15:00:00Z", // 02:00 AEDT
                "2025-04-05T15:30:00Z", // 02:30 AEDT
                "2025-04-05T17:00:00Z", // 03:00 AEST
            ],
        ),
        (
            "Australia/Lord_Howe",
            "*/30 * * * *",
            "2025-04-05T13:50:00Z",
            &[
                "2025-04-05T14:00:00Z", // 01:00 +11
                "2025-04-05T14:30:00Z", // 01:30 +11
                "2025-04-05T15:30:00Z", // 02:00 +10:30 (01:30 +10:30 skipped)
                "2025-04-05T16:00:00Z",
            ],
        ),
    ]);
}

#[test]
fn quarter_hourly_jobs_in_the_repeated_hour_fire_once_per_slot() {
    check(&[
        (
            "America/New_York",
            "*/15 1 * * *",
            "2025-11-02T00:00:00Z",
            &[
                "2025-11-02T05:00:00Z",
                "2025-11-02T05:15:00Z",
                "2025-11-02T05:30:00Z",
                "2025-11-02T05:45:00Z",
                "2025-11-03T06:00:00Z",
            ],
        ),
        (
            "Europe/Berlin",
            "*/15 2 * * *",
            "2025-10-25T12:00:00Z",
            &[
                "2025-10-26T00:00:00Z",
                "2025-10-26T00:15:00Z",
                "2025-10-26T00:30:00Z",
                "2025-10-26T00:45:00Z",
                "2025-10-27T01:00:00Z",
            ],
        ),
        (
            "Europe/London",
            "*/15 1 * * *",
            "2025-10-25T12:00:00Z",
            &[
                "2025-10-26T00:00:00Z",
                "2025-10-26T00:15:00Z",
                "2025-10-26T00:30:00Z",
                "2025-10-26T00:45:00Z",
                "2025-10-27T01:00:00Z",
            ],
        ),
        (
            "Australia/Sydney",
            "*/15 2 * * *",
            "2025-04-05T12:00:00Z",
            &[
                "2025-04-05T15:00:00Z",
                "2025-04-05T15:15:00Z",
                "2025-04-05T15:30:00Z",
                "2025-04-05T15:45:00Z",
                "2025-04-06T16:00:00Z",
            ],
        ),
        (
            "Australia/Lord_Howe",
            "*/15 1 * * *",
            "2025-04-05T12:00:00Z",
            &[
                "2025-04-05T14:00:00Z",
                "2025-04-05T14:15:00Z",
                "2025-04-05T14:30:00Z",
                "2025-04-05T14:45:00Z",
                "2025-04-06T14:30:00Z",
            ],
        ),
    ]);
}

#[test]
fn sub_hourly_jobs_keep_the_utc_grid_across_the_spring_forward_gap() {
    check(&[
        (
            "America/New_York",
            "*/30 * * * *",
            "2025-03-09T06:00:00Z",
            &[
                "2025-03-09T06:30:00Z", // 01:30 EST
                "2025-03-09T07:00:00Z", // 03:00 EDT
                "2025-03-09T07:30:00Z",
            ],
        ),
        (
            "Australia/Lord_Howe",
            "*/15 2 * * *",
            "2025-10-04T12:00:00Z",
            &[
                "2025-10-04T15:30:00Z", // 02:30 +11 (02:00 and 02:15 do not exist)
                "2025-10-04T15:45:00Z",
                "2025-10-05T15:00:00Z",
            ],
        ),
        (
            "Europe/Berlin",
            "*/15 2 * * *",
            "2025-03-29T12:00:00Z",
            &["2025-03-31T00:00:00Z"], // the whole 02:xx hour is missing on 03-30
        ),
    ]);
}

#[test]
fn hourly_jobs_never_repeat_or_go_backwards_across_a_year_of_transitions() {
    for zone in [
        "America/New_York",
        "Europe/Berlin",
        "Europe/London",
        "Australia/Sydney",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ] {
        for expr in ["0 * * * *", "*/30 * * * *", "*/15 1-3 * * *"] {
            let s = schedule(ScheduleType::Cron, expr, zone);
            let times = runs(&s, utc("2025-01-01T00:00:00Z"), 3_000);
            assert!(
                times.windows(2).all(|w| w[0] < w[1]),
                "{expr:?} in {zone} is not strictly increasing"
            );
        }
    }
}
