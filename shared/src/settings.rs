//! Every setting of both runtimes, in one table: its environment variable, the `krafter
//! serve` flag that sets it, what it means, its default and its valid range. `krafter
//! serve` builds its flags from the table (a flag wins over its variable) and the hosted
//! functions read the variables; both parse through [`Settings::load`], so a nonsense value
//! gets the same error in either mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::targets::TargetPolicy;

/// Which runtime reads the settings: some settings belong to one only, and one default
/// differs (the hosted deployment refuses private targets unless told otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Hosted,
}

/// The values a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max`.
    Number { min: u64, max: u64 },
    /// `true`/`false` (or `1`/`0`); as a flag, given alone it means true.
    Switch,
    /// An absolute URL.
    Url,
    /// A socket address (`127.0.0.1:8080`).
    Address,
    /// A file path.
    Path,
    /// A URL path prefix: empty, or `/a/b` (no trailing `/`).
    Prefix,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub env: &'static str,
    /// The `krafter serve` flag (without `--`); `None`: the hosted functions' only.
    pub flag: Option<&'static str>,
    pub help: &'static str,
    pub kind: Kind,
    /// The default, as text (parsed like a given value); `""`: unset.
    pub default: &'static str,
    /// The hosted default where it differs.
    pub hosted_default: Option<&'static str>,
    /// The runtimes that read it.
    pub modes: &'static [Mode],
}

const BOTH: &[Mode] = &[Mode::Embedded, Mode::Hosted];
const EMBEDDED: &[Mode] = &[Mode::Embedded];
const HOSTED: &[Mode] = &[Mode::Hosted];

const fn number(min: u64, max: u64) -> Kind {
    Kind::Number { min, max }
}

pub const BIND: Setting = Setting {
    env: "KRAFTER_BIND",
    flag: Some("bind"),
    help: "Address to listen on",
    kind: Kind::Address,
    default: "127.0.0.1:8080",
    hosted_default: None,
    modes: EMBEDDED,
};
pub const METRICS_BIND: Setting = Setting {
    env: "KRAFTER_METRICS_BIND",
    flag: Some("metrics-bind"),
    help: "Serve Prometheus metrics at http://<this address>/metrics (unset: off)",
    kind: Kind::Address,
    default: "",
    hosted_default: None,
    modes: EMBEDDED,
};
pub const DB: Setting = Setting {
    env: "KRAFTER_DB",
    flag: Some("db"),
    help: "The SQLite database file (created if missing)",
    kind: Kind::Path,
    default: "./krafter-data/krafter.db",
    hosted_default: None,
    modes: EMBEDDED,
};
pub const RETRY_BACKOFF_MS: Setting = Setting {
    env: "KRAFTER_RETRY_BACKOFF_MS",
    flag: Some("retry-backoff-ms"),
    help: "Base of the linear retry backoff, in ms (15000: retries after 15 s, 30 s, 45 s, ...)",
    kind: number(1, 3_600_000),
    default: "15000",
    hosted_default: None,
    modes: BOTH,
};
pub const RATE_LIMIT: Setting = Setting {
    env: "KRAFTER_RATE_LIMIT",
    flag: Some("rate-limit"),
    help: "API requests allowed per team (or per client address before authentication) per window",
    kind: number(1, 1_000_000_000),
    default: "100",
    hosted_default: None,
    modes: BOTH,
};
pub const RATE_LIMIT_WINDOW_SECS: Setting = Setting {
    env: "KRAFTER_RATE_LIMIT_WINDOW_SECS",
    flag: Some("rate-limit-window-secs"),
    help: "The rate limit window, in seconds",
    kind: number(1, 86_400),
    default: "60",
    hosted_default: None,
    modes: BOTH,
};
pub const MAX_JOBS_PER_TEAM: Setting = Setting {
    env: "KRAFTER_MAX_JOBS_PER_TEAM",
    flag: Some("max-jobs-per-team"),
    help: "Most jobs one team may have",
    kind: number(1, 1_000_000_000),
    default: "1000",
    hosted_default: None,
    modes: BOTH,
};
pub const CONCURRENCY: Setting = Setting {
    env: "KRAFTER_CONCURRENCY",
    flag: Some("concurrency"),
    help: "Webhook calls in flight at most",
    kind: number(1, 100_000),
    default: "1024",
    hosted_default: None,
    modes: EMBEDDED,
};
pub const EXECUTION_RETENTION_DAYS: Setting = Setting {
    env: "KRAFTER_EXECUTION_RETENTION_DAYS",
    flag: Some("execution-retention-days"),
    help: "Executions older than this many days are deleted (each job keeps its latest 100)",
    kind: number(1, 3_650),
    default: "30",
    hosted_default: None,
    modes: BOTH,
};
pub const NOTIFY_URL: Setting = Setting {
    env: "KRAFTER_NOTIFY_URL",
    flag: Some("notify-url"),
    help: "POST a JSON notice here when a job with failure_notify fails for good, and when it \
           recovers",
    kind: Kind::Url,
    default: "",
    hosted_default: None,
    modes: BOTH,
};
pub const DENY_PRIVATE_TARGETS: Setting = Setting {
    env: "KRAFTER_DENY_PRIVATE_TARGETS",
    flag: Some("deny-private-targets"),
    help: "Refuse webhook targets on private, loopback, link-local, metadata and other internal \
           addresses, checked when a job is saved and again on the address each call connects \
           to. Off by default in the embedded server, so that local development can call local \
           services; on by default in the hosted deployment",
    kind: Kind::Switch,
    default: "false",
    hosted_default: Some("true"),
    modes: BOTH,
};
pub const SHUTDOWN_GRACE_SECS: Setting = Setting {
    env: "KRAFTER_SHUTDOWN_GRACE_SECS",
    flag: Some("shutdown-grace-secs"),
    help: "Seconds to wait for attempts in flight when stopping",
    kind: number(0, 3_600),
    default: "30",
    hosted_default: None,
    modes: EMBEDDED,
};
pub const KEY_CACHE_SECS: Setting = Setting {
    env: "KRAFTER_KEY_CACHE_SECS",
    flag: None,
    help: "How long an API instance caches a key lookup: a revoked key stops working within \
           this time",
    kind: number(0, 60),
    default: "30",
    hosted_default: None,
    modes: HOSTED,
};

pub const AUDIT_RETENTION_DAYS: Setting = Setting {
    env: "KRAFTER_AUDIT_RETENTION_DAYS",
    flag: Some("audit-retention-days"),
    help: "Days the audit log keeps an entry",
    kind: number(1, 3650),
    default: "90",
    hosted_default: None,
    modes: BOTH,
};

pub const CONSOLE_BASE: Setting = Setting {
    env: "KRAFTER_CONSOLE_BASE",
    flag: Some("console-base"),
    help: "The path the web console is reached under behind a proxy that strips it (e.g. /krafter); empty: /",
    kind: Kind::Prefix,
    default: "",
    hosted_default: None,
    modes: BOTH,
};

pub const SWEEP_CALLS_PER_SEC: Setting = Setting {
    env: "KRAFTER_SWEEP_CALLS_PER_SEC",
    flag: None,
    help: "Scheduler API calls per second the reconcile sweep makes at most (stay under the \
           account's Scheduler quotas, shared with the API and the stream sync)",
    kind: number(1, 200),
    default: "10",
    hosted_default: None,
    modes: HOSTED,
};

pub const SWEEP_PERIOD_HOURS: Setting = Setting {
    env: "KRAFTER_SWEEP_PERIOD_HOURS",
    flag: None,
    help: "Hours between the starts of two reconcile sweeps (each reads every job's schedules \
           once)",
    kind: number(1, 168),
    default: "24",
    hosted_default: None,
    modes: HOSTED,
};

/// The table, in the order `krafter serve --help` lists it.
pub const SETTINGS: [Setting; 17] = [
    BIND,
    METRICS_BIND,
    DB,
    RETRY_BACKOFF_MS,
    RATE_LIMIT,
    RATE_LIMIT_WINDOW_SECS,
    MAX_JOBS_PER_TEAM,
    CONCURRENCY,
    EXECUTION_RETENTION_DAYS,
    AUDIT_RETENTION_DAYS,
    NOTIFY_URL,
    DENY_PRIVATE_TARGETS,
    SHUTDOWN_GRACE_SECS,
    KEY_CACHE_SECS,
    CONSOLE_BASE,
    SWEEP_CALLS_PER_SEC,
    SWEEP_PERIOD_HOURS,
];

/// A setting's value that does not parse or is out of range.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid value {value:?} for {}{}: {reason}", setting.env, flag_note(setting))]
pub struct SettingError {
    pub setting: &'static Setting,
    pub value: String,
    pub reason: String,
}

impl PartialEq for Setting {
    fn eq(&self, other: &Self) -> bool {
        self.env == other.env
    }
}
impl Eq for Setting {}

fn flag_note(s: &'static Setting) -> String {
    s.flag.map(|f| format!(" (--{f})")).unwrap_or_default()
}

/// Every setting, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub bind: SocketAddr,
    /// Where Prometheus metrics are served (embedded; `None`: nowhere).
    pub metrics_bind: Option<SocketAddr>,
    pub db: PathBuf,
    /// Base of the linear retry backoff (15 s: 15 s, 30 s, 45 s, ...).
    pub retry_backoff: Duration,
    /// Requests per window, per team (and per client address before authentication).
    pub rate_limit: u32,
    pub rate_window_secs: u32,
    pub max_jobs_per_team: u64,
    /// Webhook calls in flight at most (embedded).
    pub concurrency: usize,
    /// Executions older than this are deleted, except each job's latest `KEEP_EXECUTIONS`.
    pub execution_retention: Duration,
    /// Audit entries older than this are deleted.
    pub audit_retention: Duration,
    pub notify_url: Option<url::Url>,
    /// Whether webhooks may reach private and internal addresses.
    pub target_policy: TargetPolicy,
    /// How long shutdown waits for attempts in flight (embedded).
    pub shutdown_grace: Duration,
    /// How long an API instance caches a key lookup (hosted).
    pub key_cache: Duration,
    /// The path prefix of the console's links (`""`, or `/a/b`).
    pub console_base: String,
    /// The reconcile sweep's Scheduler calls per second, at most (hosted).
    pub sweep_calls_per_sec: u32,
    /// Time between the starts of two reconcile sweeps (hosted).
    pub sweep_period: Duration,
}

/// Each job keeps at least its latest this many executions, however old.
pub const KEEP_EXECUTIONS: u32 = 100;

impl Settings {
    /// The defaults of a runtime.
    pub fn defaults(mode: Mode) -> Self {
        Self::load(mode, |_| None).expect("the defaults are valid")
    }

    /// Reads every setting `mode` uses through `lookup` (by environment variable name; a
    /// missing or blank value takes the default). The others keep their defaults.
    pub fn load(mode: Mode, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingError> {
        let r = Reader { mode, lookup };
        Ok(Self {
            bind: r.parsed(&BIND)?,
            metrics_bind: r.optional(&METRICS_BIND)?,
            db: PathBuf::from(r.raw(&DB)),
            retry_backoff: Duration::from_millis(r.number(&RETRY_BACKOFF_MS)?),
            rate_limit: r.number(&RATE_LIMIT)? as u32,
            rate_window_secs: r.number(&RATE_LIMIT_WINDOW_SECS)? as u32,
            max_jobs_per_team: r.number(&MAX_JOBS_PER_TEAM)?,
            concurrency: r.number(&CONCURRENCY)? as usize,
            execution_retention: Duration::from_secs(86_400 * r.number(&EXECUTION_RETENTION_DAYS)?),
            audit_retention: Duration::from_secs(86_400 * r.number(&AUDIT_RETENTION_DAYS)?),
            notify_url: r.url(&NOTIFY_URL)?,
            target_policy: match r.switch(&DENY_PRIVATE_TARGETS)? {
                true => TargetPolicy::DenyPrivate,
                false => TargetPolicy::AllowPrivate,
            },
            shutdown_grace: Duration::from_secs(r.number(&SHUTDOWN_GRACE_SECS)?),
            key_cache: Duration::from_secs(r.number(&KEY_CACHE_SECS)?),
            console_base: r.prefix(&CONSOLE_BASE)?,
            sweep_calls_per_sec: r.number(&SWEEP_CALLS_PER_SEC)? as u32,
            sweep_period: Duration::from_secs(3_600 * r.number(&SWEEP_PERIOD_HOURS)?),
        })
    }
}

struct Reader<F> {
    mode: Mode,
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Reader<F> {
    /// The value to parse: the given one when the mode reads the setting and it is not
    /// blank, else the mode's default.
    fn raw(&self, s: &Setting) -> String {
        let given = s
            .modes
            .contains(&self.mode)
            .then(|| (self.lookup)(s.env))
            .flatten()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        given.unwrap_or_else(|| match (self.mode, s.hosted_default) {
            (Mode::Hosted, Some(d)) => d.to_owned(),
            _ => s.default.to_owned(),
        })
    }

    fn invalid(s: &'static Setting, value: &str, reason: impl Into<String>) -> SettingError {
        SettingError {
            setting: s,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    fn number(&self, s: &'static Setting) -> Result<u64, SettingError> {
        let Kind::Number { min, max } = s.kind else {
            unreachable!("{} is not a number setting", s.env)
        };
        let raw = self.raw(s);
        let range = format!("must be a whole number from {min} to {max}");
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Self::invalid(s, &raw, range)),
        }
    }

    fn switch(&self, s: &'static Setting) -> Result<bool, SettingError> {
        let raw = self.raw(s);
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(Self::invalid(s, &raw, "must be true or false")),
        }
    }

    fn url(&self, s: &'static Setting) -> Result<Option<url::Url>, SettingError> {
        let raw = self.raw(s);
        if raw.is_empty() {
            return Ok(None);
        }
        match url::Url::parse(&raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(u)),
            Ok(_) => Err(Self::invalid(s, &raw, "must be an http or https URL")),
            Err(e) => Err(Self::invalid(s, &raw, e.to_string())),
        }
    }

    fn prefix(&self, s: &'static Setting) -> Result<String, SettingError> {
        let raw = self.raw(s);
        let safe = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if raw.is_empty()
            || (raw.starts_with('/') && !raw.ends_with('/') && safe && !raw.contains("//"))
        {
            Ok(raw)
        } else {
            Err(Self::invalid(
                s,
                &raw,
                "must be empty or a path like /krafter (no trailing /)",
            ))
        }
    }

    /// A value that may be unset (blank).
    fn optional<T: std::str::FromStr>(&self, s: &'static Setting) -> Result<Option<T>, SettingError>
    where
        T::Err: std::fmt::Display,
    {
        match self.raw(s).is_empty() {
            true => Ok(None),
            false => self.parsed(s).map(Some),
        }
    }

    fn parsed<T: std::str::FromStr>(&self, s: &'static Setting) -> Result<T, SettingError>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.raw(s);
        raw.parse()
            .map_err(|e: T::Err| Self::invalid(s, &raw, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(mode: Mode, pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        Settings::load(mode, |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn every_default_is_valid_in_both_modes() {
        let embedded = Settings::defaults(Mode::Embedded);
        assert_eq!(embedded.rate_limit, 100);
        assert_eq!(embedded.retry_backoff, Duration::from_secs(15));
        assert_eq!(
            embedded.execution_retention,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(embedded.target_policy, TargetPolicy::AllowPrivate);
        assert_eq!(embedded.db, PathBuf::from("./krafter-data/krafter.db"));
        let hosted = Settings::defaults(Mode::Hosted);
        assert_eq!(hosted.target_policy, TargetPolicy::DenyPrivate);
        assert_eq!(hosted.key_cache, Duration::from_secs(30));
    }

    #[test]
    fn a_nonsense_value_gets_the_same_error_in_both_modes() {
        for mode in [Mode::Embedded, Mode::Hosted] {
            let e = load(mode, &[("KRAFTER_RATE_LIMIT", "0")]).unwrap_err();
            assert_eq!(
                e.to_string(),
                "invalid value \"0\" for KRAFTER_RATE_LIMIT (--rate-limit): must be a whole \
                 number from 1 to 1000000000"
            );
            let e = load(mode, &[("KRAFTER_DENY_PRIVATE_TARGETS", "nope")]).unwrap_err();
            assert!(e.to_string().ends_with("must be true or false"), "{e}");
            let e = load(mode, &[("KRAFTER_NOTIFY_URL", "ftp://x")]).unwrap_err();
            assert!(e.to_string().contains("KRAFTER_NOTIFY_URL"), "{e}");
        }
    }

    #[test]
    fn each_mode_reads_only_its_own_settings() {
        let hosted = load(Mode::Hosted, &[("KRAFTER_CONCURRENCY", "0")]).unwrap();
        assert_eq!(
            hosted.concurrency, 1024,
            "the hosted functions have no concurrency"
        );
        let embedded = load(Mode::Embedded, &[("KRAFTER_KEY_CACHE_SECS", "999")]).unwrap();
        assert_eq!(embedded.key_cache, Duration::from_secs(30));
        assert!(load(Mode::Hosted, &[("KRAFTER_KEY_CACHE_SECS", "61")]).is_err());
    }

    #[test]
    fn private_targets_are_denied_when_hosted_unless_the_deployment_says_false() {
        let policy = |pairs: &[(&str, &str)]| load(Mode::Hosted, pairs).unwrap().target_policy;
        assert_eq!(policy(&[]), TargetPolicy::DenyPrivate);
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "true")]),
            TargetPolicy::DenyPrivate
        );
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "false")]),
            TargetPolicy::AllowPrivate
        );
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "")]),
            TargetPolicy::DenyPrivate
        );
    }

    #[test]
    fn a_console_base_is_a_path_without_a_trailing_slash() {
        let base = |v: &str| load(Mode::Embedded, &[("KRAFTER_CONSOLE_BASE", v)]);
        assert_eq!(
            base("/lambda-url/api").unwrap().console_base,
            "/lambda-url/api"
        );
        assert_eq!(base("").unwrap().console_base, "");
        for bad in ["krafter", "/krafter/", "/a//b", "/a b", "/<x>"] {
            let e = base(bad).unwrap_err();
            assert!(
                e.to_string()
                    .contains("must be empty or a path like /krafter"),
                "{e}"
            );
        }
    }

    #[test]
    fn the_readmes_settings_table_is_this_table() {
        let readme = include_str!("../../README.md");
        for s in SETTINGS.iter().filter(|s| s.flag.is_some()) {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `--{}` |", s.flag.unwrap())))
                .unwrap_or_else(|| panic!("README has no row for --{}", s.flag.unwrap()));
            assert!(row.contains(&format!("`{}`", s.env)), "{row}");
            let default = if s.default.is_empty() {
                "unset".to_owned()
            } else {
                format!("`{}`", s.default)
            };
            assert!(row.contains(&default), "{row} lacks {default}");
            if let Kind::Number { min, max } = s.kind {
                assert!(
                    row.contains(&format!("| {min}..{max} |")),
                    "{row} lacks {min}..{max}"
                );
            }
        }
    }

    #[test]
    fn the_templates_parameters_have_this_tables_defaults_and_ranges() {
        let template = include_str!("../../template.yaml");
        let mut checked = 0;
        for line in template.lines() {
            // `        KRAFTER_RATE_LIMIT: !Ref RateLimit`
            let Some((env, param)) = line.trim().split_once(": !Ref ") else {
                continue;
            };
            let Some(s) = SETTINGS.iter().find(|s| s.env == env) else {
                continue;
            };
            let block: Vec<&str> = template
                .split(&format!("\n  {param}:\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("no parameter {param}"))
                .lines()
                .take_while(|l| l.starts_with("    "))
                .map(str::trim)
                .collect();
            let value = |key: &str| {
                block
                    .iter()
                    .find_map(|l| l.strip_prefix(&format!("{key}: ")))
                    .map(|v| v.trim_matches('"'))
            };
            assert_eq!(value("Default"), Some(s.default), "{param}");
            if let Kind::Number { min, max } = s.kind {
                assert_eq!(value("MinValue"), Some(min.to_string().as_str()), "{param}");
                assert_eq!(value("MaxValue"), Some(max.to_string().as_str()), "{param}");
            }
            checked += 1;
        }
        assert_eq!(checked, 8, "the template's settings parameters");
    }

    #[test]
    fn every_row_is_read_and_has_a_valid_default() {
        for s in SETTINGS {
            assert!(s.env.starts_with("KRAFTER_"), "{}", s.env);
            assert!(!s.help.is_empty());
            if let Kind::Number { min, max } = s.kind {
                let d: u64 = s.default.parse().unwrap();
                assert!((min..=max).contains(&d), "{}", s.env);
            }
        }
    }
}
