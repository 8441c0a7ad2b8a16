//! `krafter serve`: the embedded server until Ctrl-C or SIGTERM.

use clap::Args;
use krafter_shared::embedded::{Bootstrap, Embedded, EmbeddedConfig};

use crate::settings_args::SettingsArgs;
use crate::{AnyError, say};

/// Every flag is a row of the settings table (`settings_args`).
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    settings: SettingsArgs,
}

pub async fn serve(args: ServeArgs) -> Result<(), AnyError> {
    // A nonsense setting is a usage error (exit 2), refused before anything is opened.
    let settings = args.settings.settings().unwrap_or_else(|e| {
        clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n")).exit()
    });
    let db = settings.db.clone();
    let app = Embedded::start(EmbeddedConfig::new(settings)).await?;
    let base = format!("http://{}", app.local_addr());
    say(format_args!(
        "krafter: serving {base}/api/v1/cron and the console at {base}/ (data in {})",
        db.display()
    ));
    if let Some(addr) = app.metrics_addr() {
        say(format_args!("krafter: metrics at http://{addr}/metrics"));
    }
    if let Some(first) = app.bootstrap() {
        print_first_key(&base, first);
    }
    shutdown_signal().await;
    say(format_args!(
        "krafter: stopping (letting attempts in flight finish)"
    ));
    app.shutdown().await;
    Ok(())
}

/// The key and signing secret created for an empty store, with a ready-to-paste `curl`.
fn print_first_key(base: &str, first: &Bootstrap) {
    println!(
        "A cron:write key for team \"default\" was created. It is shown only this once:\n\n  \
         {key}\n\nWebhooks are signed with the team's secret (krafter teams show-secret \
         --team default):\n\n  {secret}\n\nTry it:\n\n  curl -X POST {base}/api/v1/cron/jobs \\\n    \
         -H \"Authorization: Bearer {key}\" \\\n    \
         -H \"Content-Type: application/json\" \\\n    \
         -d '{{\"name\": \"Health Check\", \"schedule_type\": \"interval\", \
         \"schedule\": \"every_5m\", \"url\": \"https://example.com/api/health\", \
         \"method\": \"GET\"}}'\n",
        key = first.key.as_str(),
        secret = first.signing_secret.as_str(),
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
