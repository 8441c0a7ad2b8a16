//! EventBridge rendering and the expression validator.

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::{config, cron_expression, zone, zone_name};
use crate::schedule::cron_expr::internals::{quartz_sources, render_one};
use crate::schedule::{Schedule, ScheduleType, Spec, validate_eventbridge_expression};

#[test]
fn the_validator_accepts_documented_eventbridge_expressions() {
    for ok in [
        "cron(0 12 * * ? *)",
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * ? * MON-FRI *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(15 10 ? * 6L 2022-2023)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 0 L * ? *)",
        "cron(0 0 LW * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(0 0 1 JAN,JUL ? 2030)",
        "cron(*/59 */23 */31 */12 ? 1970/5)",
        "cron(0 0 ? * 1,3,5,7 *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(365 days)",
        "at(2022-11-20T13:00:00)",
        "at(2028-02-29T23:59:59)",
    ] {
        assert_eq!(validate_eventbridge_expression(ok), Ok(()), "{ok}");
    }
}

#[test]
fn the_validator_rejects_expressions_eventbridge_does_not_accept() {
    for bad in [
        "",
        "every_5m",
        "CRON(0 12 * * ? *)",
        "cron(0 12 * * ? *) ",
        "cron(0 12 * * ?)",
        "cron(0 0 12 * * ? *)",
        "cron(0 12 ? * ? *)",
        "cron(0 12 * * * *)",
        "cron(0 12 1 * MON *)",
        "cron(0 12 ? * */2 *)",
        "cron(0 12 ? * 1/2 *)",
        "cron(0 12 ? * 0 *)",
        "cron(0 12 ? * 8 *)",
        "cron(0  12 * * ? *)",
        "cron(60 * * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 0 * ? *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 * 0 ? *)",
        "cron(0 0 * 13 ? *)",
        "cron(0 0 * * ? 1969)",
        "cron(0 0 * * ? 2200)",
        "cron(5-1 * * * ? *)",
        "cron(*/0 * * * ? *)",
        "cron(*/60 * * * ? *)",
        "cron(0 0 ? * 2#6 *)",
        "cron(1,,2 * * * ? *)",
        "cron(x * * * ? *)",
        "rate(30 seconds)",
        "rate(1 second)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(05 minutes)",
        "rate(-5 minutes)",
        "rate(5  minutes)",
        "rate(5 weeks)",
        "rate(5)",
        "at(2030-01-15 10:00:00)",
        "at(2030-01-15T10:00)",
        "at(2030-02-30T10:00:00)",
        "at(2030-01-15T24:00:00)",
        "at(2030-01-15T10:00:00Z)",
    ] {
        assert!(
            validate_eventbridge_expression(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
    let too_long = format!("cron({} * * * ? *)", vec!["1"; 200].join(","));
    assert!(validate_eventbridge_expression(&too_long).is_err());
}

#[test]
fn fields_render_compactly() {
    let bits = |values: &[u32]| values.iter().fold(0u64, |acc, v| acc | (1 << v));
    let cases: &[(&[u32], u32, u32, bool, &str)] = &[
        (&[0], 0, 59, true, "0"),
        (&[0, 30], 0, 59, true, "*/30"),
        (&[5, 35], 0, 59, true, "5,35"),
        (&[5, 20, 35, 50], 0, 59, true, "5/15"),
        (&[0, 1, 2, 3, 4, 5], 0, 59, true, "0-5"),
        (&[1, 15], 0, 59, true, "1,15"),
        (&[0, 5, 10], 0, 59, true, "0,5,10"),
        (&[1, 2, 3, 10, 11, 12, 20], 0, 59, true, "1-3,10-12,20"),
        (
            &[1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31],
            1,
            31,
            true,
            "*/2",
        ),
        (&[1, 2, 3, 4, 5, 6, 7], 1, 7, false, "*"),
        (&[1, 3, 5, 7], 1, 7, false, "1,3,5,7"),
        (&[2, 3, 4, 5, 6], 1, 7, false, "2-6"),
    ];
    for (values, min, max, steps, expected) in cases {
        assert_eq!(
            render_one(bits(values), *min, *max, *steps),
            *expected,
            "{values:?}"
        );
    }
}

#[test]
fn the_longest_possible_rendering_fits_eventbridge_limits() {
    // Alternating values with a break in the progression defeat every compact form.
    let text = "0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,38,40,42,44,46,48,50,52,54,56,59 \
                0,2,4,6,8,10,12,14,16,18,20,23 \
                1,3,5,7,9,11,13,15,17,19,21,23,25,27,28,31 \
                1,3,5,7,9,12 1,3,5";
    let s = Schedule::parse(ScheduleType::Cron, text, zone("UTC")).expect("valid");
    for expr in s.eventbridge().expressions {
        assert!(expr.len() <= 256, "{} characters", expr.len());
        assert_eq!(validate_eventbridge_expression(&expr), Ok(()), "{expr}");
    }
}

/// The `cron` crate expressions are the EventBridge fields with a leading `0` seconds field.
fn assert_same_fields(schedule: &Schedule) {
    let Spec::Cron(spec) = &schedule.spec else {
        panic!("not a cron schedule");
    };
    let from_eventbridge: Vec<String> = schedule
        .eventbridge()
        .expressions
        .iter()
        .map(|e| {
            let inner = e
                .strip_prefix("cron(")
                .and_then(|e| e.strip_suffix(" *)"))
                .expect("cron(... *)");
            format!("0 {inner}")
        })
        .collect();
    assert_eq!(quartz_sources(spec), from_eventbridge);
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn every_rendered_cron_expression_passes_the_validator(expr in cron_expression(), zone_name in zone_name()) {
        if let Ok(s) = Schedule::parse(ScheduleType::Cron, &expr, zone(zone_name)) {
            let eb = s.eventbridge();
            prop_assert!(matches!(eb.expressions.len(), 1 | 2), "{:?}", eb);
            for e in &eb.expressions {
                prop_assert_eq!(validate_eventbridge_expression(e), Ok(()), "{:?} -> {}", expr, e);
            }
            prop_assert_eq!(eb.timezone, zone(zone_name));
            assert_same_fields(&s);
        }
    }

    #[test]
    fn every_rendered_interval_passes_the_validator(n in 1u32..=600, unit in prop::sample::select(vec!['m', 'h', 'd'])) {
        let text = format!("every_{n}{unit}");
        let seconds = n * match unit { 'm' => 60, 'h' => 3_600, _ => 86_400 };
        match Schedule::parse(ScheduleType::Interval, &text, zone("UTC")) {
            Ok(s) => {
                prop_assert_eq!(s.interval_seconds(), Some(seconds));
                let eb = s.eventbridge();
                prop_assert_eq!(eb.expressions.len(), 1);
                prop_assert_eq!(validate_eventbridge_expression(&eb.expressions[0]), Ok(()), "{}", text);
                // The rendered rate has the same period.
                let (count, unit) = eb.expressions[0]
                    .strip_prefix("rate(").and_then(|r| r.strip_suffix(')')).and_then(|r| r.split_once(' '))
                    .expect("rate(N unit)");
                let unit_seconds = match unit.trim_end_matches('s') { "minute" => 60, "hour" => 3_600, _ => 86_400 };
                prop_assert_eq!(count.parse::<u32>().expect("count") * unit_seconds, seconds);
            }
            Err(_) => prop_assert!(seconds > 365 * 86_400, "{} rejected", text),
        }
    }

    #[test]
    fn every_rendered_once_passes_the_validator_and_names_the_same_instant(
        minutes in 0i64..(200 * 366 * 1_440),
        zone_name in zone_name(),
    ) {
        let at = Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).single().expect("1990") + Duration::minutes(minutes);
        let text = at.to_rfc3339();
        let s = Schedule::parse(ScheduleType::Once, &text, zone(zone_name)).expect("valid");
        prop_assert_eq!(s.once_at(), Some(at));
        let eb = s.eventbridge();
        prop_assert_eq!(validate_eventbridge_expression(&eb.expressions[0]), Ok(()));
        // Reading the rendered local time back in the rendered zone gives the same instant.
        let local = eb.expressions[0].strip_prefix("at(").and_then(|e| e.strip_suffix(')')).expect("at(...)");
        let back = Schedule::parse(ScheduleType::Once, local, eb.timezone).expect("round trip");
        prop_assert_eq!(back.once_at(), Some(at));
    }
}
