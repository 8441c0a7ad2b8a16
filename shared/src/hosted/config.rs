//! The hosted functions' configuration: the AWS resources the template creates (names and
//! ARNs, required), and the [`Settings`] (the same table as `krafter serve`'s), all from the
//! environment.

use crate::adapters::dynamodb::Tables;
use crate::settings::{Mode, SettingError, Settings};

/// The AWS resources the template creates (names and ARNs), as the functions receive them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedResources {
    pub tables: Tables,
    pub run_queue_url: String,
    pub run_queue_arn: String,
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
    pub schedule_group: String,
    pub scheduler_role_arn: String,
}

/// A missing or invalid setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error(transparent)]
    Invalid(#[from] SettingError),
}

/// Reads settings from the environment through `get` (tests pass a map).
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        (self.0)(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing(name))
    }

    /// The table names only (what the operator commands need).
    pub fn tables(&self) -> Result<Tables, ConfigError> {
        Ok(Tables {
            jobs: self.required("KRAFTER_JOBS_TABLE")?,
            executions: self.required("KRAFTER_EXECUTIONS_TABLE")?,
            keys: self.required("KRAFTER_KEYS_TABLE")?,
            teams: self.required("KRAFTER_TEAMS_TABLE")?,
            rate_limits: self.required("KRAFTER_RATE_LIMITS_TABLE")?,
            idempotency: self.required("KRAFTER_IDEMPOTENCY_TABLE")?,
            audit: self.required("KRAFTER_AUDIT_TABLE")?,
        })
    }

    pub fn resources(&self) -> Result<HostedResources, ConfigError> {
        Ok(HostedResources {
            tables: self.tables()?,
            run_queue_url: self.required("KRAFTER_RUN_QUEUE_URL")?,
            run_queue_arn: self.required("KRAFTER_RUN_QUEUE_ARN")?,
            dead_letter_queue_url: (self.0)("KRAFTER_DEAD_LETTER_QUEUE_URL").unwrap_or_default(),
            dead_letter_queue_arn: self.required("KRAFTER_DEAD_LETTER_QUEUE_ARN")?,
            schedule_group: self.required("KRAFTER_SCHEDULE_GROUP")?,
            scheduler_role_arn: self.required("KRAFTER_SCHEDULER_ROLE_ARN")?,
        })
    }

    /// The settings, with the hosted defaults (private targets refused).
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Ok(Settings::load(Mode::Hosted, &self.0)?)
    }
}

/// The process environment.
pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|name: &str| std::env::var(name).ok())
}

/// An environment given as pairs (tests, tools).
pub fn process_env_from<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> Env<impl Fn(&str) -> Option<String> + 'a> {
    Env(move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TargetPolicy;

    #[test]
    fn private_targets_are_denied_unless_the_deployment_says_false() {
        let policy =
            |pairs: &[(&str, &str)]| process_env_from(pairs).settings().map(|s| s.target_policy);
        assert_eq!(policy(&[]).unwrap(), TargetPolicy::DenyPrivate);
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "true")]).unwrap(),
            TargetPolicy::DenyPrivate
        );
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "false")]).unwrap(),
            TargetPolicy::AllowPrivate
        );
        let err = policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "nope")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"nope\" for KRAFTER_DENY_PRIVATE_TARGETS \
             (--deny-private-targets): must be true or false"
        );
    }

    #[test]
    fn a_missing_resource_is_named() {
        let err = process_env_from(&[]).resources().unwrap_err();
        assert_eq!(err.to_string(), "KRAFTER_JOBS_TABLE is not set");
    }
}
