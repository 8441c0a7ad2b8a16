//! `interval` schedules: `every_30s` and `every_<N>m|h|d`.

use chrono::{DateTime, Utc};

use super::{EventBridgeSchedules, ScheduleError, Timezone, excerpt};

/// The longest supported interval: 365 days of 24 hours.
const MAX_SECONDS: u64 = 365 * 86_400;

/// A fixed period of whole seconds (30, or a whole number of minutes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IntervalSpec {
    seconds: u32,
}

impl IntervalSpec {
    pub(super) fn parse(text: &str) -> Result<IntervalSpec, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidInterval { reason };
        if text == "every_30s" {
            return Ok(IntervalSpec { seconds: 30 });
        }
        let body = text.strip_prefix("every_").ok_or_else(|| {
            invalid(format!(
                "expected every_<N>m, every_<N>h, every_<N>d or every_30s, got {:?}",
                excerpt(text)
            ))
        })?;
        let (digits, unit) = match body.char_indices().last() {
            Some((idx, unit)) => (&body[..idx], unit),
            None => return Err(invalid("missing count and unit".into())),
        };
        let unit_seconds: u64 = match unit {
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            's' => return Err(invalid("every_30s is the only interval in seconds".into())),
            _ => return Err(invalid("unit must be m, h or d".into())),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("count must be a positive whole number".into()));
        }
        if digits.starts_with('0') {
            return Err(invalid(
                "count must be at least 1 and have no leading zeros".into(),
            ));
        }
        // At most 7 digits keeps the product far from overflow; anything longer is too large.
        let count: u64 = if digits.len() <= 7 {
            digits
                .parse()
                .map_err(|_| invalid("count is too large".into()))?
        } else {
            return Err(invalid("interval is longer than 365 days".into()));
        };
        let seconds = count * unit_seconds;
        if seconds > MAX_SECONDS {
            return Err(invalid("interval is longer than 365 days".into()));
        }
        let seconds = u32::try_from(seconds).map_err(|_| invalid("count is too large".into()))?;
        Ok(IntervalSpec { seconds })
    }

    pub(super) fn seconds(self) -> u32 {
        self.seconds
    }

    /// `from + interval`.
    pub(super) fn first_after(self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let secs = from.timestamp().checked_add(i64::from(self.seconds))?;
        DateTime::from_timestamp(secs, 0)
    }

    /// `previous + k * interval` for the smallest `k >= 1` that is strictly after `now`.
    pub(super) fn next_after(
        self,
        previous: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let period = i64::from(self.seconds);
        let previous = previous.timestamp();
        let now = now.timestamp();
        let k = if now < previous {
            1
        } else {
            // Both timestamps lie within chrono's range, so the difference cannot overflow.
            (now - previous) / period + 1
        };
        let secs = previous.checked_add(k.checked_mul(period)?)?;
        DateTime::from_timestamp(secs, 0)
    }

    pub(super) fn eventbridge(self, timezone: Timezone) -> EventBridgeSchedules {
        // EventBridge cannot fire below one minute: every_30s runs every minute and each
        // invocation stands for two fires, 30 seconds apart.
        let (minutes, sub_minute_offset) = if self.seconds < 60 {
            (1, Some(self.seconds))
        } else {
            (self.seconds / 60, None)
        };
        let (count, unit) = if minutes % 1_440 == 0 {
            (minutes / 1_440, "day")
        } else if minutes % 60 == 0 {
            (minutes / 60, "hour")
        } else {
            (minutes, "minute")
        };
        let plural = if count == 1 { "" } else { "s" };
        EventBridgeSchedules {
            expressions: vec![format!("rate({count} {unit}{plural})")],
            timezone,
            anchored: true,
            sub_minute_offset,
        }
    }
}
