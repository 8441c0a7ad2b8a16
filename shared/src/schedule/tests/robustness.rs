//! The parsers never panic, whatever the input; whatever they accept renders valid expressions.

use proptest::prelude::*;

use super::{config, utc, zone, zone_name};
use crate::schedule::{Schedule, ScheduleType, Timezone, validate_eventbridge_expression};

/// Parses `text` as every kind and exercises whatever parses.
fn exercise(text: &str, zone_name: &str) -> Result<(), TestCaseError> {
    for kind in ScheduleType::ALL {
        match Schedule::parse(kind, text, zone(zone_name)) {
            Ok(s) => {
                prop_assert_eq!(s.text(), text);
                for e in &s.eventbridge().expressions {
                    prop_assert_eq!(
                        validate_eventbridge_expression(e),
                        Ok(()),
                        "{:?} -> {}",
                        text,
                        e
                    );
                }
                let from = utc("2025-06-01T00:00:00Z");
                if let Some(first) = s.first_run(from) {
                    prop_assert!(first > from);
                    if let Some(next) = s.next_run(first, first) {
                        prop_assert!(next > first);
                    }
                }
            }
            Err(err) => prop_assert!(!err.message().is_empty()),
        }
    }
    let _ = Timezone::parse(text);
    let _ = text.parse::<ScheduleType>();
    let _ = validate_eventbridge_expression(text);
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parsers_never_panic_on_arbitrary_unicode(text in any::<String>(), zone_name in zone_name()) {
        exercise(&text, zone_name)?;
    }

    #[test]
    fn parsers_never_panic_on_cron_field_soup(
        text in "[0-9*/,\\-?LW#@ \t]{0,24}|([0-9*/,\\-]{1,6}[ \t]){4}[0-9A-Za-z*/,\\-?#]{1,8}|@[a-zA-Z]{0,9}",
        zone_name in zone_name(),
    ) {
        exercise(&text, zone_name)?;
    }

    #[test]
    fn parsers_never_panic_on_datetime_soup(
        text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{0,12})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?|[0-9T:+\\-Zz., ]{0,30}",
        zone_name in zone_name(),
    ) {
        exercise(&text, zone_name)?;
    }

    #[test]
    fn parsers_never_panic_on_interval_soup(text in "every_[0-9]{0,12}[smhdMHD]?|every_30s|[a-z_0-9]{0,12}", zone_name in zone_name()) {
        exercise(&text, zone_name)?;
    }

    #[test]
    fn the_validator_never_panics_on_expression_soup(
        text in "(cron|rate|at)\\([0-9A-Za-z*/,\\-?#LW: T]{0,40}\\)",
    ) {
        let _ = validate_eventbridge_expression(&text);
    }
}
