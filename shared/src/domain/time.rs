//! Timestamps: RFC 3339, UTC, `Z`, whole seconds — in the API, in the stores, everywhere.

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serializer;

/// Drops sub-second precision: every stored and displayed time is whole seconds.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

/// `2025-01-15T10:05:00Z`.
pub fn format(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn from_unix(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `#[serde(serialize_with = "time::serialize")]`
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// `#[serde(serialize_with = "time::serialize_opt")]`
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_whole_seconds_with_z() {
        let t = Utc.with_ymd_and_hms(2025, 1, 15, 10, 5, 0).unwrap()
            + chrono::Duration::milliseconds(999);
        assert_eq!(format(t), "2025-01-15T10:05:00Z");
        assert_eq!(format(whole_seconds(t)), "2025-01-15T10:05:00Z");
    }
}
