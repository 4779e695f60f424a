//! Appending on PostgreSQL: under the append lock, the head and new rows
//! chained onto it, a batch in one statement.

use tokio_postgres::Error;

use super::{APPEND_LOCK, Session, seq_param};
use crate::canon::{ChainFormat, GENESIS, decode_hash};
use crate::prepare::NewEntry;
use crate::{Appended, AuditError};

/// The whole batch in one round trip: arrays, unnested into rows.
const INSERT: &str = "INSERT INTO audit_entries
    (seq, stream, tenant_id, time_ms, function, agent_id, user_id, outcome, execution_id, body, prev_hash, hash)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])";

const INSERT_CAPTURES: &str = "INSERT INTO audit_captures
    (seq, tenant_id, execution_id, input, output, expires_ms)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bigint[])";

/// What went wrong inside an append: the database, or the chain itself.
pub(super) enum AppendError {
    Db(Error),
    Chain(AuditError),
}

impl From<Error> for AppendError {
    fn from(e: Error) -> AppendError {
        AppendError::Db(e)
    }
}

/// Starts a write transaction and takes the append lock.
pub(super) async fn begin_locked(s: &mut Session) -> Result<(), Error> {
    s.begin("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
    s.query("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
        .await
        .map(drop)
}

/// The head inside the lock: (last seq, last hash), or the genesis.
pub(super) async fn head_in(s: &mut Session) -> Result<(u64, [u8; 32]), AppendError> {
    let row = s
        .query_opt(
            "SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let Some(row) = row else {
        return Ok((0, GENESIS));
    };
    let seq: i64 = row.try_get(0)?;
    let seq = u64::try_from(seq).map_err(|_| {
        AppendError::Chain(AuditError::Corrupt {
            seq: 0,
            reason: "negative seq".into(),
        })
    })?;
    let hash: Option<String> = row.try_get(1).ok();
    let hash = hash.as_deref().and_then(decode_hash).ok_or_else(|| {
        AppendError::Chain(AuditError::Corrupt {
            seq,
            reason: "hash is not 32 hex bytes".into(),
        })
    })?;
    Ok((seq, hash))
}

/// Inserts entries after `head`, chaining each; returns their seq and hash.
pub(super) async fn insert_chained(
    s: &mut Session,
    format: ChainFormat,
    head: (u64, [u8; 32]),
    entries: &[NewEntry],
) -> Result<Vec<Appended>, Error> {
    let (mut seq, mut prev) = head;
    let n = entries.len();
    let mut seqs = Vec::with_capacity(n);
    let mut streams = Vec::with_capacity(n);
    let mut tenants = Vec::with_capacity(n);
    let mut times = Vec::with_capacity(n);
    let mut functions = Vec::with_capacity(n);
    let mut agents = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut executions = Vec::with_capacity(n);
    let mut bodies = Vec::with_capacity(n);
    let mut prevs = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut captures = Captures::default();
    let mut out = Vec::with_capacity(n);
    for entry in entries {
        seq += 1;
        let hash = format.hash(&prev, seq, &entry.body);
        let c = &entry.cols;
        seqs.push(seq_param(seq));
        streams.push(c.stream.as_str());
        tenants.push(c.tenant_id.as_deref());
        times.push(c.time_ms);
        functions.push(c.function.as_deref());
        agents.push(c.agent_id.as_deref());
        users.push(c.user_id.as_deref());
        outcomes.push(c.outcome.as_deref());
        executions.push(c.execution_id.as_deref());
        bodies.push(entry.body.as_str());
        prevs.push(hex::encode(prev));
        hashes.push(hex::encode(hash));
        if let Some(capture) = &entry.capture {
            captures.seqs.push(seq_param(seq));
            captures
                .tenants
                .push(c.tenant_id.as_deref().unwrap_or_default());
            captures
                .executions
                .push(c.execution_id.as_deref().unwrap_or_default());
            captures.inputs.push(capture.input.as_slice());
            captures.outputs.push(capture.output.as_deref());
            captures.expires.push(capture.expires_ms);
        }
        out.push(Appended {
            seq,
            hash: hex::encode(hash),
        });
        prev = hash;
    }
    s.execute(
        INSERT,
        &[
            &seqs,
            &streams,
            &tenants,
            &times,
            &functions,
            &agents,
            &users,
            &outcomes,
            &executions,
            &bodies,
            &prevs,
            &hashes,
        ],
    )
    .await?;
    if !captures.seqs.is_empty() {
        s.execute(
            INSERT_CAPTURES,
            &[
                &captures.seqs,
                &captures.tenants,
                &captures.executions,
                &captures.inputs,
                &captures.outputs,
                &captures.expires,
            ],
        )
        .await?;
    }
    Ok(out)
}

#[derive(Default)]
struct Captures<'a> {
    seqs: Vec<i64>,
    tenants: Vec<&'a str>,
    executions: Vec<&'a str>,
    inputs: Vec<&'a [u8]>,
    outputs: Vec<Option<&'a [u8]>>,
    expires: Vec<i64>,
}
