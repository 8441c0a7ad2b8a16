//! `krafter serve`'s settings flags, built from the one table (`krafter_shared::settings`):
//! each flag's name, environment variable, help and default come from there, and every
//! value, given or default, is parsed by `Settings::load`, as the hosted functions parse
//! theirs: a nonsense value gets the same error in both modes.

use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use krafter_shared::settings::{Kind, Mode, SETTINGS, Setting, SettingError, Settings};

/// The values given for the embedded settings, by environment variable name.
pub struct SettingsArgs {
    given: Vec<(&'static str, String)>,
}

impl SettingsArgs {
    pub fn settings(&self) -> Result<Settings, SettingError> {
        Settings::load(Mode::Embedded, |env| {
            self.given
                .iter()
                .find(|(name, _)| *name == env)
                .map(|(_, value)| value.clone())
        })
    }
}

/// The table's rows that are `krafter serve` flags.
fn flags() -> impl Iterator<Item = (&'static Setting, &'static str)> {
    SETTINGS
        .iter()
        .filter(|s| s.modes.contains(&Mode::Embedded))
        .filter_map(|s| Some((s, s.flag?)))
}

fn arg(setting: &'static Setting, flag: &'static str) -> Arg {
    let arg = Arg::new(flag)
        .long(flag)
        .env(setting.env)
        .help(setting.help)
        .value_name(flag.to_ascii_uppercase().replace('-', "_"));
    let arg = match setting.default {
        "" => arg,
        default => arg.default_value(default),
    };
    match setting.kind {
        // Given alone, a switch means true: `--deny-private-targets`.
        Kind::Switch => arg.num_args(0..=1).default_missing_value("true"),
        _ => arg,
    }
}

impl Args for SettingsArgs {
    fn augment_args(cmd: Command) -> Command {
        flags().fold(cmd, |cmd, (setting, flag)| cmd.arg(arg(setting, flag)))
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingsArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let given = flags()
            .filter_map(|(setting, flag)| {
                let value = matches.get_one::<String>(flag)?;
                Some((setting.env, value.clone()))
            })
            .collect();
        Ok(Self { given })
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
