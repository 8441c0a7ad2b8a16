//! `first_run` / `next_run` semantics and accessors.

use chrono::{Duration, Timelike};

use super::{fmt, schedule, utc, zone};
use crate::schedule::{Schedule, ScheduleType};

fn next(s: &Schedule, previous: &str, now: &str) -> Option<String> {
    s.next_run(utc(previous), utc(now)).map(fmt)
}

#[test]
fn an_interval_after_an_on_time_run_fires_one_period_later() {
    let s = schedule(ScheduleType::Interval, "every_5m", "UTC");
    assert_eq!(
        next(&s, "2025-01-15T10:05:00Z", "2025-01-15T10:05:00Z").as_deref(),
        Some("2025-01-15T10:10:00Z")
    );
    assert_eq!(
        next(&s, "2025-01-15T10:05:00Z", "2025-01-15T10:05:02Z").as_deref(),
        Some("2025-01-15T10:10:00Z")
    );
}

#[test]
fn an_interval_catches_up_to_the_next_grid_point_without_replaying_missed_runs() {
    let s = schedule(ScheduleType::Interval, "every_5m", "UTC");
    assert_eq!(
        next(&s, "2025-01-15T10:05:00Z", "2025-01-15T12:07:30Z").as_deref(),
        Some("2025-01-15T12:10:00Z")
    );
    // `now` exactly on a grid point: the result is strictly after now.
    assert_eq!(
        next(&s, "2025-01-15T10:05:00Z", "2025-01-15T12:10:00Z").as_deref(),
        Some("2025-01-15T12:15:00Z")
    );
    // Years behind, on an odd grid.
    let hourly = schedule(ScheduleType::Interval, "every_1h", "UTC");
    assert_eq!(
        next(&hourly, "2020-01-01T00:00:03Z", "2025-06-01T12:00:00Z").as_deref(),
        Some("2025-06-01T12:00:03Z")
    );
    let half_minute = schedule(ScheduleType::Interval, "every_30s", "UTC");
    assert_eq!(
        next(&half_minute, "2025-01-15T10:00:00Z", "2025-01-15T10:59:45Z").as_deref(),
        Some("2025-01-15T11:00:00Z")
    );
}

#[test]
fn an_interval_whose_clock_is_behind_the_previous_run_fires_one_period_after_it() {
    let s = schedule(ScheduleType::Interval, "every_1d", "UTC");
    assert_eq!(
        next(&s, "2025-01-15T10:00:00Z", "2025-01-15T09:00:00Z").as_deref(),
        Some("2025-01-16T10:00:00Z")
    );
}

#[test]
fn intervals_ignore_daylight_saving_time() {
    let s = schedule(ScheduleType::Interval, "every_1h", "America/New_York");
    assert_eq!(
        next(&s, "2025-11-02T05:00:00Z", "2025-11-02T05:00:00Z").as_deref(),
        Some("2025-11-02T06:00:00Z")
    );
    let daily = schedule(ScheduleType::Interval, "every_1d", "Europe/Berlin");
    assert_eq!(
        next(&daily, "2025-03-29T12:00:00Z", "2025-03-29T12:00:00Z").as_deref(),
        Some("2025-03-30T12:00:00Z")
    );
}

#[test]
fn a_cron_job_fires_strictly_after_the_later_of_previous_and_now() {
    let s = schedule(ScheduleType::Cron, "0 9 * * *", "UTC");
    // On time.
    assert_eq!(
        next(&s, "2025-01-15T09:00:00Z", "2025-01-15T09:00:00Z").as_deref(),
        Some("2025-01-16T09:00:00Z")
    );
    // Days late: no replay, the first fire after now.
    assert_eq!(
        next(&s, "2025-01-15T09:00:00Z", "2025-01-20T08:59:59Z").as_deref(),
        Some("2025-01-20T09:00:00Z")
    );
    assert_eq!(
        next(&s, "2025-01-15T09:00:00Z", "2025-01-20T09:00:00Z").as_deref(),
        Some("2025-01-21T09:00:00Z")
    );
    // Clock behind the previous run: after the previous run.
    assert_eq!(
        next(&s, "2025-01-15T09:00:00Z", "2025-01-15T08:00:00Z").as_deref(),
        Some("2025-01-16T09:00:00Z")
    );
}

#[test]
fn a_cron_job_first_fires_strictly_after_its_start() {
    let s = schedule(ScheduleType::Cron, "*/15 * * * *", "UTC");
    assert_eq!(
        s.first_run(utc("2025-01-15T10:00:00Z")).map(fmt).as_deref(),
        Some("2025-01-15T10:15:00Z")
    );
    assert_eq!(
        s.first_run(utc("2025-01-15T10:00:01Z")).map(fmt).as_deref(),
        Some("2025-01-15T10:15:00Z")
    );
    assert_eq!(
        s.first_run(utc("2025-01-15T09:59:59Z")).map(fmt).as_deref(),
        Some("2025-01-15T10:00:00Z")
    );
}

#[test]
fn a_once_job_fires_only_if_its_instant_is_after_the_start_and_never_again() {
    let s = schedule(ScheduleType::Once, "2030-01-15T10:00:00Z", "UTC");
    let at = utc("2030-01-15T10:00:00Z");
    assert_eq!(s.once_at(), Some(at));
    assert_eq!(s.first_run(utc("2030-01-15T09:59:59Z")), Some(at));
    assert_eq!(s.first_run(at), None);
    assert_eq!(s.first_run(utc("2031-01-01T00:00:00Z")), None);
    assert_eq!(s.next_run(at, at), None);
    assert_eq!(s.next_run(at, utc("2020-01-01T00:00:00Z")), None);
}

#[test]
fn returned_times_have_no_sub_second_part_even_for_sub_second_inputs() {
    let from = utc("2025-01-15T10:00:00Z") + Duration::milliseconds(750);
    for (kind, text) in [
        (ScheduleType::Interval, "every_30s"),
        (ScheduleType::Cron, "* * * * *"),
        (ScheduleType::Once, "2030-01-15T10:00:00.123456Z"),
    ] {
        let s = schedule(kind, text, "UTC");
        let first = s.first_run(from).expect("fires");
        assert_eq!(first.nanosecond(), 0, "{text}");
        if let Some(t) = s.next_run(first, from + Duration::seconds(100)) {
            assert_eq!(t.nanosecond(), 0, "{text}");
        }
    }
    let s = schedule(ScheduleType::Interval, "every_30s", "UTC");
    assert_eq!(
        s.first_run(from).map(fmt).as_deref(),
        Some("2025-01-15T10:00:30Z")
    );
}

#[test]
fn accessors_return_what_was_parsed() {
    let cron = schedule(ScheduleType::Cron, " 0 9 * * MON ", "Europe/Berlin");
    assert_eq!(cron.kind(), ScheduleType::Cron);
    assert_eq!(cron.text(), " 0 9 * * MON ");
    assert_eq!(cron.timezone(), zone("Europe/Berlin"));
    assert_eq!(cron.once_at(), None);
    assert_eq!(cron.interval_seconds(), None);

    let interval = schedule(ScheduleType::Interval, "every_6h", "UTC");
    assert_eq!(interval.kind(), ScheduleType::Interval);
    assert_eq!(interval.interval_seconds(), Some(21_600));
    assert_eq!(interval.once_at(), None);

    let once = schedule(ScheduleType::Once, "2030-01-15T10:00:00", "Asia/Kolkata");
    assert_eq!(once.kind(), ScheduleType::Once);
    assert_eq!(once.interval_seconds(), None);
    assert_eq!(once.once_at(), Some(utc("2030-01-15T04:30:00Z")));
}

#[test]
fn schedules_are_equal_when_kind_text_and_zone_are_equal() {
    let a = schedule(ScheduleType::Cron, "0 9 * * *", "UTC");
    assert_eq!(a, a.clone());
    assert_eq!(a, schedule(ScheduleType::Cron, "0 9 * * *", "UTC"));
    assert_ne!(
        a,
        schedule(ScheduleType::Cron, "0 9 * * *", "Europe/Berlin")
    );
    assert_ne!(a, schedule(ScheduleType::Cron, "00 9 * * *", "UTC"));
    assert_eq!(
        format!("{a:?}"),
        r#"Schedule { kind: Cron, text: "0 9 * * *", timezone: Timezone(UTC) }"#
    );
}

#[test]
fn schedules_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Schedule>();
    let s = schedule(ScheduleType::Cron, "*/5 * * * *", "Europe/Berlin");
    let from = utc("2025-01-15T10:00:00Z");
    let handle = std::thread::spawn(move || s.first_run(from));
    assert_eq!(
        handle.join().expect("thread").map(fmt).as_deref(),
        Some("2025-01-15T10:05:00Z")
    );
}

#[test]
fn far_future_and_extreme_instants_return_none_instead_of_panicking() {
    let max = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    let min = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for (kind, text) in [
        (ScheduleType::Interval, "every_365d"),
        (ScheduleType::Cron, "* * * * *"),
        (ScheduleType::Cron, "0 0 29 2 1"),
        (ScheduleType::Once, "2030-01-15T10:00:00Z"),
    ] {
        let s = schedule(kind, text, "Pacific/Chatham");
        assert_eq!(s.first_run(max), None, "{text}");
        assert_eq!(s.next_run(max, max), None, "{text}");
        let _ = s.first_run(min);
        let _ = s.next_run(min, min);
        let _ = s.next_run(min, max);
    }
    // The cron crate knows years up to 2100.
    let s = schedule(ScheduleType::Cron, "0 0 1 1 *", "UTC");
    assert_eq!(
        s.first_run(utc("2100-06-01T00:00:00Z")),
        None,
        "no fire computed past 2100"
    );
    assert_eq!(
        s.first_run(utc("2099-06-01T00:00:00Z")).map(fmt).as_deref(),
        Some("2100-01-01T00:00:00Z")
    );
}

#[test]
fn a_cron_query_is_fast_enough_for_the_scheduler_loop() {
    let s = schedule(ScheduleType::Cron, "0 0 13 * FRI", "Australia/Lord_Howe");
    let mut t = utc("2025-01-01T00:00:00Z");
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        t = s.next_run(t, t).expect("fires");
    }
    // Generous bound for unoptimised builds on a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(t > utc("2035-01-01T00:00:00Z"));
}
