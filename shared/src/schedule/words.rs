//! A schedule in words, for people: "every 5 minutes", "at 09:00 on Monday–Friday,
//! Europe/Berlin". Common cron shapes are put into words; any other expression is shown as
//! it is written.

/// The schedule of type `kind` (`cron`, `interval`, `once`) written `text`, in `timezone`.
pub fn describe(kind: &str, text: &str, timezone: &str) -> String {
    match kind {
        "interval" => interval(text).unwrap_or_else(|| text.to_owned()),
        "once" => format!("once, at {text} ({timezone})"),
        _ => match cron(text.trim()) {
            Some(words) => format!("{words}, {timezone}"),
            None => format!("cron {}, {timezone}", text.trim()),
        },
    }
}

fn interval(text: &str) -> Option<String> {
    let spec = text.strip_prefix("every_")?;
    let unit = match spec.chars().last()? {
        's' => "second",
        'm' => "minute",
        'h' => "hour",
        'd' => "day",
        _ => return None,
    };
    let n: u32 = spec[..spec.len() - 1].parse().ok()?;
    Some(every(n, unit))
}

fn every(n: u32, unit: &str) -> String {
    if n == 1 {
        format!("every {unit}")
    } else {
        format!("every {n} {unit}s")
    }
}

fn cron(text: &str) -> Option<String> {
    if let Some(name) = text.strip_prefix('@') {
        return macro_words(&name.to_ascii_lowercase());
    }
    let f: Vec<&str> = text.split_whitespace().collect();
    let [minute, hour, dom, month, dow] = f.as_slice() else {
        return None;
    };
    let days = days(dom, month, dow)?;
    match (number(minute), number(hour)) {
        (Some(m), Some(h)) => Some(format!("at {h:02}:{m:02} {days}")),
        (Some(m), None) if *hour == "*" => {
            Some(format!("at minute {m} of every hour{}", on(&days)))
        }
        _ if *hour == "*" => {
            let step = minute.strip_prefix("*/").and_then(number);
            let base = match (*minute, step) {
                ("*", _) => "every minute".to_owned(),
                (_, Some(n)) => every(n, "minute"),
                _ => return None,
            };
            Some(format!("{base}{}", on(&days)))
        }
        _ => None,
    }
}

/// `days` after a time of day, or nothing for "every day".
fn on(days: &str) -> String {
    if days == "every day" {
        String::new()
    } else {
        format!(", {days}")
    }
}

fn days(dom: &str, month: &str, dow: &str) -> Option<String> {
    if month != "*" {
        return None;
    }
    match (dom, dow) {
        ("*", "*") => Some("every day".into()),
        ("*", dow) => Some(format!("on {}", weekdays(dow)?)),
        (dom, "*") => Some(format!("on day {} of every month", number(dom)?)),
        _ => None,
    }
}

fn weekdays(dow: &str) -> Option<String> {
    let parts: Option<Vec<String>> = dow
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => Some(format!("{}–{}", weekday(a)?, weekday(b)?)),
            None => weekday(part).map(str::to_owned),
        })
        .collect();
    Some(parts?.join(", "))
}

fn weekday(d: &str) -> Option<&'static str> {
    const NAMES: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let i = match number(d) {
        Some(n) if n <= 7 => n as usize % 7,
        Some(_) => return None,
        None => {
            let short = d.to_ascii_lowercase();
            NAMES
                .iter()
                .position(|n| n[..3].eq_ignore_ascii_case(&short))?
        }
    };
    Some(NAMES[i])
}

fn macro_words(name: &str) -> Option<String> {
    Some(
        match name {
            "hourly" => "every hour, on the hour",
            "daily" | "midnight" => "at 00:00 every day",
            "weekly" => "at 00:00 on Sunday",
            "monthly" => "at 00:00 on day 1 of every month",
            "yearly" | "annually" => "at 00:00 on 1 January",
            _ => return None,
        }
        .to_owned(),
    )
}

fn number(s: &str) -> Option<u32> {
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_schedules_are_put_into_words() {
        let cases = [
            ("interval", "every_5m", "UTC", "every 5 minutes"),
            ("interval", "every_1h", "UTC", "every hour"),
            ("interval", "every_30s", "UTC", "every 30 seconds"),
            (
                "cron",
                "0 9 * * 1-5",
                "Europe/Berlin",
                "at 09:00 on Monday–Friday, Europe/Berlin",
            ),
            ("cron", "*/5 * * * *", "UTC", "every 5 minutes, UTC"),
            ("cron", "* * * * *", "UTC", "every minute, UTC"),
            ("cron", "30 2 * * *", "UTC", "at 02:30 every day, UTC"),
            (
                "cron",
                "15 * * * *",
                "UTC",
                "at minute 15 of every hour, UTC",
            ),
            (
                "cron",
                "0 0 1 * *",
                "UTC",
                "at 00:00 on day 1 of every month, UTC",
            ),
            (
                "cron",
                "0 18 * * SAT,SUN",
                "UTC",
                "at 18:00 on Saturday, Sunday, UTC",
            ),
            ("cron", "0 6 * * 0", "UTC", "at 06:00 on Sunday, UTC"),
            ("cron", "@daily", "UTC", "at 00:00 every day, UTC"),
            (
                "cron",
                "*/15 9-17 * * 1-5",
                "UTC",
                "cron */15 9-17 * * 1-5, UTC",
            ),
            (
                "once",
                "2030-01-15T10:00:00Z",
                "UTC",
                "once, at 2030-01-15T10:00:00Z (UTC)",
            ),
        ];
        for (kind, text, tz, want) in cases {
            assert_eq!(describe(kind, text, tz), want, "{kind} {text}");
        }
    }
}
