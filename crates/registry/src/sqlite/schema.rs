//! Versioned schema migrations, applied at open; `PRAGMA user_version` is
//! the number applied. Never edit a released migration: append one.

use rusqlite::{Connection, TransactionBehavior};

use super::db;
use crate::RegistryError;
use crate::store::Result;

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The migration that edits a CHECK constraint's text in place (see V4).
const LOOSENS_A_CHECK: usize = 3;

/// Applies the migrations not applied yet, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let supported = u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX);
    // IMMEDIATE: two processes opening a fresh file migrate one after the other.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db("begin migration"))?;
    let found: u32 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db("read schema version"))?;
    if found > supported {
        return Err(RegistryError::SchemaTooNew { found, supported });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql).map_err(db("migrate schema"))?;
        if done == LOOSENS_A_CHECK {
            // Every connection (this one too) re-reads the schema.
            let v: i64 = tx
                .pragma_query_value(None, "schema_version", |r| r.get(0))
                .map_err(db("read schema cookie"))?;
            tx.pragma_update(None, "schema_version", v + 1)
                .map_err(db("bump schema cookie"))?;
        }
        let now = u32::try_from(done + 1).unwrap_or(u32::MAX);
        tx.pragma_update(None, "user_version", now)
            .map_err(db("record schema version"))?;
    }
    tx.commit().map_err(db("commit migration"))
}

/// Tables, constraints and indexes are plain SQL that PostgreSQL also
/// accepts; the triggers at the end are SQLite's way to make rows
/// immutable, the state machine binding and decisions append-only.
const V1: &str = r#"
CREATE TABLE modules (
    sha256     TEXT PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    bytes      BLOB NOT NULL,
    CHECK (length(bytes) = size_bytes)
);

CREATE TABLE functions (
    id         INTEGER PRIMARY KEY,
    tenant     TEXT NOT NULL CHECK (length(tenant) BETWEEN 1 AND 64),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at TEXT NOT NULL,
    UNIQUE (tenant, name)
);

CREATE TABLE versions (
    id          INTEGER PRIMARY KEY,
    function_id INTEGER NOT NULL REFERENCES functions (id),
    version     INTEGER NOT NULL CHECK (version >= 1),
    sha256      TEXT NOT NULL REFERENCES modules (sha256),
    author      TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('pending', 'active', 'rejected', 'revoked', 'superseded')),
    description TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    report      TEXT NOT NULL,
    UNIQUE (function_id, version)
);

-- At most one active version per function.
CREATE UNIQUE INDEX versions_one_active ON versions (function_id) WHERE state = 'active';
CREATE INDEX versions_by_sha256 ON versions (sha256);

CREATE TABLE decisions (
    id         INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES versions (id),
    action     TEXT NOT NULL CHECK (action IN ('approve', 'reject', 'revoke', 'supersede')),
    actor      TEXT NOT NULL,
    at         TEXT NOT NULL,
    notes      TEXT NOT NULL CHECK (length(trim(notes)) > 0),
    sha256     TEXT NOT NULL
);
CREATE INDEX decisions_by_version ON decisions (version_id);

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('author', 'approver', 'admin', 'agent')),
    subject       TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    revoked_at    TEXT,
    revoked_by    TEXT,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant);

CREATE TRIGGER versions_start_pending BEFORE INSERT ON versions
WHEN NEW.state <> 'pending'
BEGIN SELECT RAISE(ABORT, 'a version starts pending'); END;

CREATE TRIGGER versions_immutable
BEFORE UPDATE OF id, function_id, version, sha256, author, uploaded_at, description, manifest, report
ON versions
BEGIN SELECT RAISE(ABORT, 'only a version''s state changes'); END;

CREATE TRIGGER versions_transition BEFORE UPDATE OF state ON versions
WHEN NOT ((OLD.state = 'pending' AND NEW.state IN ('active', 'rejected'))
       OR (OLD.state = 'active' AND NEW.state IN ('revoked', 'superseded')))
BEGIN SELECT RAISE(ABORT, 'illegal version state transition'); END;

-- A state change needs its decision, bound to the version's hash.
CREATE TRIGGER versions_decided BEFORE UPDATE OF state ON versions
WHEN NOT EXISTS (
    SELECT 1 FROM decisions d
    WHERE d.version_id = NEW.id AND d.sha256 = NEW.sha256
      AND d.action = CASE NEW.state WHEN 'active' THEN 'approve' WHEN 'rejected' THEN 'reject'
                                    WHEN 'revoked' THEN 'revoke' WHEN 'superseded' THEN 'supersede' END)
BEGIN SELECT RAISE(ABORT, 'a state change needs its decision'); END;

CREATE TRIGGER versions_kept BEFORE DELETE ON versions
BEGIN SELECT RAISE(ABORT, 'versions are never deleted'); END;

CREATE TRIGGER decisions_bound BEFORE INSERT ON decisions
WHEN NEW.sha256 IS NOT (SELECT v.sha256 FROM versions v WHERE v.id = NEW.version_id)
BEGIN SELECT RAISE(ABORT, 'a decision is bound to its version''s sha256'); END;

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;

CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;

CREATE TRIGGER modules_immutable BEFORE UPDATE ON modules
BEGIN SELECT RAISE(ABORT, 'modules are immutable'); END;

CREATE TRIGGER api_keys_immutable
BEFORE UPDATE OF key_id, tenant, role, subject, secret_sha256, created_at, created_by ON api_keys
BEGIN SELECT RAISE(ABORT, 'only a key''s revocation changes'); END;

CREATE TRIGGER api_keys_revoked_once BEFORE UPDATE OF revoked_at, revoked_by ON api_keys
WHEN OLD.revoked_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a revoked key stays revoked'); END;
"#;

/// Agent policies and tenant settings. A policy's history is append-only
/// and its versions unique per agent, so a version is never reused, not
/// even after a delete; the current policy points into the history.
const V2: &str = r#"
CREATE TABLE policy_history (
    tenant     TEXT NOT NULL CHECK (length(tenant) BETWEEN 1 AND 64),
    subject    TEXT NOT NULL CHECK (length(subject) BETWEEN 1 AND 128),
    version    INTEGER NOT NULL CHECK (version >= 1),
    policy     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    UNIQUE (tenant, subject, version)
);

CREATE TABLE agent_policies (
    tenant  TEXT NOT NULL,
    subject TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant, subject),
    FOREIGN KEY (tenant, subject, version) REFERENCES policy_history (tenant, subject, version)
);

CREATE TABLE tenant_settings (
    tenant     TEXT PRIMARY KEY CHECK (length(tenant) BETWEEN 1 AND 64),
    settings   TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

-- A new policy version is always the next one of its agent.
CREATE TRIGGER policy_history_next BEFORE INSERT ON policy_history
WHEN NEW.version <> 1 + coalesce((SELECT max(h.version) FROM policy_history h
                                  WHERE h.tenant = NEW.tenant AND h.subject = NEW.subject), 0)
BEGIN SELECT RAISE(ABORT, 'a policy version follows the last one'); END;

CREATE TRIGGER policy_history_no_update BEFORE UPDATE ON policy_history
BEGIN SELECT RAISE(ABORT, 'policy history is append-only'); END;

CREATE TRIGGER policy_history_no_delete BEFORE DELETE ON policy_history
BEGIN SELECT RAISE(ABORT, 'policy history is append-only'); END;

CREATE TRIGGER tenant_settings_first BEFORE INSERT ON tenant_settings
WHEN NEW.version <> 1
BEGIN SELECT RAISE(ABORT, 'tenant settings start at version 1'); END;

CREATE TRIGGER tenant_settings_next BEFORE UPDATE ON tenant_settings
WHEN NEW.version <> OLD.version + 1 OR NEW.tenant <> OLD.tenant
BEGIN SELECT RAISE(ABORT, 'tenant settings change one version at a time'); END;
"#;

/// Source uploads and manifest tests. A version's source (its language,
/// text and the text's sha256) is all there or all absent, and as
/// immutable as the rest of the version. An approval of a version whose
/// stored report has a failing test needs the recorded override: the
/// database refuses it otherwise, whatever the code above it does.
const V3: &str = r#"
ALTER TABLE versions ADD COLUMN source_language TEXT NULL
    CHECK (source_language IS NULL OR source_language IN ('wat'));
ALTER TABLE versions ADD COLUMN source TEXT NULL
    CHECK ((source IS NULL) = (source_language IS NULL));
ALTER TABLE versions ADD COLUMN source_sha256 TEXT NULL
    CHECK ((source_sha256 IS NULL) = (source IS NULL)
           AND (source_sha256 IS NULL
                OR (length(source_sha256) = 64 AND source_sha256 NOT GLOB '*[^0-9a-f]*')));

CREATE TRIGGER versions_source_immutable
BEFORE UPDATE OF source_language, source, source_sha256 ON versions
BEGIN SELECT RAISE(ABORT, 'only a version''s state changes'); END;

ALTER TABLE decisions ADD COLUMN override_failing_tests INTEGER NOT NULL DEFAULT 0
    CHECK (override_failing_tests IN (0, 1));

CREATE TRIGGER decisions_tests_pass BEFORE INSERT ON decisions
WHEN NEW.action = 'approve' AND NEW.override_failing_tests = 0 AND EXISTS (
    SELECT 1 FROM versions v, json_each(v.report, '$.tests') t
    WHERE v.id = NEW.version_id AND json_extract(t.value, '$.passed') = 0)
BEGIN SELECT RAISE(ABORT, 'approving a version with failing tests needs the override'); END;
"#;

/// JavaScript sources. SQLite cannot alter a column's CHECK, and this one
/// only widens: SQLite documents editing the table's text in
/// `sqlite_schema` (with `writable_schema`, then a new schema cookie, set
/// above) for changes that leave every stored row valid, as this one does.
const V4: &str = r#"
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'source_language IN (''wat'')', 'source_language IN (''wat'', ''javascript'')')
 WHERE type = 'table' AND name = 'versions';
PRAGMA writable_schema = OFF;
"#;
