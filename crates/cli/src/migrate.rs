//! `aifn migrate`: the schema of a fleet's PostgreSQL database brought up
//! to this release, before (or while) its nodes start.

use aifn_types::DatabaseUrl;

use crate::Exit;
use crate::output::out;

#[derive(clap::Args)]
pub(crate) struct MigrateArgs {
    /// The fleet's PostgreSQL database (default: $AIFN_DATABASE_URL).
    #[arg(long, env = "AIFN_DATABASE_URL", hide_env_values = true)]
    database: DatabaseUrl,
}

pub(crate) fn migrate(a: MigrateArgs) -> anyhow::Result<Exit> {
    aifn_service::migrate_database(&a.database)?;
    out!(
        "migrated {}: the registry and the audit log are at this release's schema",
        a.database
    );
    Ok(Exit::Ok)
}
