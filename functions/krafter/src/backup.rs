//! `krafter backup` and `krafter restore`: an online copy of the embedded store, and
//! putting one back (refused while a server holds the store).

use std::path::PathBuf;

use clap::Args;
use krafter_shared::adapters::sqlite::backup::{backup, restore};

use crate::stores::DbArg;
use crate::{AnyError, say};

#[derive(Args)]
pub struct BackupArgs {
    /// The file to write the copy to (must not exist).
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    db: DbArg,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A file `krafter backup` wrote.
    from: PathBuf,
    #[command(flatten)]
    db: DbArg,
}

/// Copies the store while a server may be running on it.
pub fn run_backup(args: BackupArgs) -> Result<(), AnyError> {
    let report = backup(&args.db.db, &args.to)?;
    say(format_args!(
        "krafter: backed up {} to {} ({} pages, {} bytes, copied in {} ms)",
        args.db.db.display(),
        args.to.display(),
        report.pages,
        report.bytes,
        report.copying.as_millis()
    ));
    Ok(())
}

pub fn run_restore(args: RestoreArgs) -> Result<(), AnyError> {
    restore(&args.from, &args.db.db)?;
    say(format_args!(
        "krafter: restored {} from {}; start `krafter serve` on it (runs and attempts after \
         the backup was taken are not in it)",
        args.db.db.display(),
        args.from.display()
    ));
    Ok(())
}
