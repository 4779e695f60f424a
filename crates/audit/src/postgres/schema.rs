//! PostgreSQL schema migrations, applied by the writer at open under an
//! advisory lock, so nodes that start together migrate once.

use tokio_postgres::Client;

/// The advisory lock migrations take ("aifn" and 4; the registry's are 1
/// and 2, the audit append lock 3).
const MIGRATION_LOCK: i64 = 0x6169_666e_0000_0004;

/// The migrations; `audit_schema_migrations` holds the numbers applied.
/// The tables are SQLite's, with PostgreSQL's types. No log on PostgreSQL
/// ever had chain format 1, so format 2 starts at seq 1.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: entries, captures, the chain format boundary.
    "CREATE TABLE audit_entries (
        seq BIGINT PRIMARY KEY,
        stream TEXT NOT NULL,
        tenant_id TEXT,
        time_ms BIGINT NOT NULL,
        function TEXT,
        agent_id TEXT,
        user_id TEXT,
        outcome TEXT,
        execution_id TEXT,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_entries_tenant ON audit_entries (tenant_id, seq);
    CREATE INDEX audit_entries_host ON audit_entries (stream, seq) WHERE tenant_id IS NULL;
    CREATE INDEX audit_entries_execution ON audit_entries (tenant_id, execution_id)
        WHERE execution_id IS NOT NULL;
    CREATE TABLE audit_captures (
        seq BIGINT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        input BYTEA NOT NULL,
        output BYTEA,
        expires_ms BIGINT NOT NULL
    );
    CREATE INDEX audit_captures_execution ON audit_captures (tenant_id, execution_id);
    CREATE INDEX audit_captures_expiry ON audit_captures (expires_ms);
    CREATE TABLE audit_meta (
        key TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    INSERT INTO audit_meta (key, value)
        SELECT 'chain_format_2_from', COALESCE(MAX(seq), 0) + 1 FROM audit_entries;",
];

const TRACK: &str = "CREATE TABLE IF NOT EXISTS audit_schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The newest migration applied (0: none, or no table).
pub(super) async fn version(c: &Client) -> Result<i64, tokio_postgres::Error> {
    // Two steps: a query naming a missing table fails when parsed.
    let exists: bool = c
        .query_one(
            "SELECT to_regclass('audit_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    c.query_one(
        "SELECT coalesce(max(version), 0)::bigint FROM audit_schema_migrations",
        &[],
    )
    .await?
    .try_get(0)
}

/// What `migrate` did: applied what was missing, or found a newer schema.
pub(super) enum Migrated {
    Done,
    TooNew(i64),
}

/// Applies the missing migrations, each in its own transaction.
pub(super) async fn migrate(c: &Client) -> Result<Migrated, tokio_postgres::Error> {
    c.query("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply(c).await;
    let unlocked = c
        .query("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let migrated = result?;
    unlocked?;
    Ok(migrated)
}

async fn apply(c: &Client) -> Result<Migrated, tokio_postgres::Error> {
    // "already exists, skipping" is no news to the operator.
    c.batch_execute("SET client_min_messages = warning").await?;
    c.batch_execute(TRACK).await?;
    c.batch_execute("RESET client_min_messages").await?;
    let applied = version(c).await?;
    let supported = MIGRATIONS.len() as i64;
    if applied > supported {
        return Ok(Migrated::TooNew(applied));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        let n = i32::try_from(i + 1).unwrap_or(i32::MAX);
        c.batch_execute("BEGIN").await?;
        let step = async {
            c.batch_execute(sql).await?;
            c.execute(
                "INSERT INTO audit_schema_migrations (version) VALUES ($1)",
                &[&n],
            )
            .await?;
            c.batch_execute("COMMIT").await
        };
        if let Err(e) = step.await {
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    Ok(Migrated::Done)
}
