//! The records: what callers hand in, what is chained and what queries return.

use aifn_types::{Admission, Context, Finding, OutcomeKind, RegistryAction, RunKind, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canon::sha256_hex;
use crate::summary::summarize_input;

/// One invocation attempt: a success, a failure of any kind, or a refusal of
/// an authenticated caller. Field names are those of the JSONL export and
/// the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The execution id (also the seed of the guest's randomness).
    pub execution_id: String,
    /// When the attempt started.
    pub time: Timestamp,
    /// The caller's tenant (from its credentials).
    pub tenant_id: String,
    /// The agent (API key subject) that called.
    pub agent_id: String,
    /// The end user the agent acted for.
    pub user_id: String,
    /// The function name asked for.
    pub function: String,
    /// The version that ran, if one was resolved.
    pub version: Option<u32>,
    /// The sha256 of the module that ran, if one was resolved.
    pub module_sha256: Option<String>,
    /// How the attempt ended.
    pub outcome: OutcomeKind,
    /// The error message, for anything but `ok` (cut at 4 KiB).
    pub error_message: Option<String>,
    /// Wall-clock duration in milliseconds (stored to the microsecond).
    pub duration_ms: f64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Peak linear memory in bytes.
    pub memory_peak_bytes: u64,
    /// Lowercase hex sha256 of the raw input bytes.
    pub input_sha256: String,
    /// Size of the raw input in bytes.
    pub input_size: u64,
    /// Lowercase hex sha256 of the output bytes, if there was output.
    pub output_sha256: Option<String>,
    /// Size of the output in bytes (0 without output).
    pub output_size: u64,
    /// The input's shape from [`summarize_input`]: field names and JSON
    /// types, never values. Anything else is re-summarized before storing.
    pub input_summary: Value,
    /// The host that recorded it; set by the log from its config.
    #[serde(default)]
    pub node: String,
    /// The gateway's decision (allow or reject, why, by which policy
    /// version); absent in records made before agent policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// What the output guard found (kinds and JSON paths, never values);
    /// absent when it found nothing or did not scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// The W3C `traceparent` the caller sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// True when the client cancelled or disconnected and the guest was
    /// interrupted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// Why the version ran. Absent (an agent's invocation) in records made
    /// before test runs and replays, so their bytes and hashes are unchanged.
    #[serde(default, skip_serializing_if = "RunKind::is_invocation")]
    pub run: RunKind,
    /// The manifest test's name, for a test run of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_name: Option<String>,
    /// The execution id this replay re-ran, for a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
}

impl ExecutionRecord {
    /// A record for the call described by `ctx`, with no input or output,
    /// zero resource use and no error message.
    pub fn from_context(
        ctx: &Context,
        time: impl Into<Timestamp>,
        outcome: OutcomeKind,
    ) -> ExecutionRecord {
        let mut rec = ExecutionRecord {
            execution_id: ctx.execution_id.clone(),
            time: time.into(),
            tenant_id: ctx.tenant_id.clone(),
            agent_id: ctx.agent_id.clone(),
            user_id: ctx.user_id.clone(),
            function: ctx.function.clone(),
            version: ctx.version.parse().ok(),
            module_sha256: None,
            outcome,
            error_message: None,
            duration_ms: 0.0,
            fuel_used: 0,
            memory_peak_bytes: 0,
            input_sha256: String::new(),
            input_size: 0,
            output_sha256: None,
            output_size: 0,
            input_summary: Value::Null,
            node: String::new(),
            admission: None,
            findings: Vec::new(),
            traceparent: None,
            cancelled: false,
            run: RunKind::Invocation,
            test_name: None,
            replay_of: None,
        };
        rec.set_input(b"");
        rec
    }

    /// Fills `input_sha256`, `input_size` and `input_summary` from the raw
    /// input. Input that is not JSON is summarized as `"invalid_json"`.
    pub fn set_input(&mut self, input: &[u8]) {
        match serde_json::from_slice::<Value>(input) {
            Ok(v) => self.set_parsed_input(input, &v),
            Err(_) => {
                self.input_sha256 = sha256_hex(input);
                self.input_size = input.len() as u64;
                self.input_summary = if input.is_empty() {
                    Value::Null
                } else {
                    Value::String("invalid_json".into())
                };
            }
        }
    }

    /// [`ExecutionRecord::set_input`] for input the caller has already
    /// parsed (so it is not parsed twice): `parsed` is what `input` encodes.
    pub fn set_parsed_input(&mut self, input: &[u8], parsed: &Value) {
        self.input_sha256 = sha256_hex(input);
        self.input_size = input.len() as u64;
        self.input_summary = summarize_input(parsed);
    }

    /// Fills `output_sha256` and `output_size` from the output, if any.
    pub fn set_output(&mut self, output: Option<&[u8]>) {
        self.output_sha256 = output.map(sha256_hex);
        self.output_size = output.map_or(0, |o| o.len() as u64);
    }
}

/// A registry action as recorded: [`RegistryAction`] (taken or refused)
/// plus time and node, its fields flat beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// When it was recorded.
    pub time: Timestamp,
    /// What was done or refused (notes and reason cut at 4 KiB).
    #[serde(flatten)]
    pub action: RegistryAction,
    /// The host that recorded it.
    pub node: String,
}

/// Why a request had no valid API key. The key itself is never recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityReason {
    /// No key was presented.
    MissingKey,
    /// The presented key is not in a valid format.
    MalformedKey,
    /// No such key.
    UnknownKey,
    /// The key was revoked.
    RevokedKey,
}

/// An unauthenticated attempt, recorded in the host-level `security` stream
/// (it has no tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// When it happened.
    pub time: Timestamp,
    /// The route asked for; any query string is dropped before storing,
    /// since credentials sometimes travel there.
    pub route: String,
    /// Why it was refused.
    pub reason: SecurityReason,
    /// The peer address, if known.
    pub remote_addr: Option<String>,
    /// The host that recorded it; set by the log from its config.
    #[serde(default)]
    pub node: String,
}

/// What a `system` record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemEvent {
    /// Records older than a cutoff were deleted by retention.
    Prune,
}

/// A record the log writes about itself. After a prune the remaining chain
/// starts right after `anchor_seq`, whose hash was `anchor_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRecord {
    /// When it was recorded.
    pub time: Timestamp,
    /// What happened.
    pub event: SystemEvent,
    /// Who asked for it.
    pub actor: String,
    /// Records older than this were eligible.
    pub cutoff: Timestamp,
    /// How many records were deleted.
    pub pruned: u64,
    /// The seq of the last deleted record (the chain now starts after it).
    pub anchor_seq: u64,
    /// The hash of that record (the `prev_hash` of the first one kept).
    pub anchor_hash: String,
    /// How many captured payloads were deleted with it.
    pub captures_expired: u64,
    /// The host that recorded it.
    pub node: String,
}

/// The streams of the log. `execution` and `registry` belong to a tenant;
/// `security` and `system` are host-level. Deserializes from its name, so
/// it can be a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Invocation attempts.
    Execution,
    /// Registry actions.
    Registry,
    /// Unauthenticated attempts.
    Security,
    /// The log's own records (pruning).
    System,
}

impl Stream {
    /// The stream's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Execution => "execution",
            Stream::Registry => "registry",
            Stream::Security => "security",
            Stream::System => "system",
        }
    }
}

/// Any record, tagged with its stream (`"stream": "execution"`, ...). This
/// tagged form, canonicalized, is the chained body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stream", rename_all = "snake_case")]
pub enum AuditRecord {
    /// An invocation attempt.
    Execution(ExecutionRecord),
    /// A registry action.
    Registry(RegistryRecord),
    /// An unauthenticated attempt.
    Security(SecurityEvent),
    /// A record about the log itself.
    System(SystemRecord),
}

impl AuditRecord {
    /// The record's stream.
    pub fn stream(&self) -> Stream {
        match self {
            AuditRecord::Execution(_) => Stream::Execution,
            AuditRecord::Registry(_) => Stream::Registry,
            AuditRecord::Security(_) => Stream::Security,
            AuditRecord::System(_) => Stream::System,
        }
    }

    /// The owning tenant; `None` for host-level streams.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            AuditRecord::Execution(r) => Some(&r.tenant_id),
            AuditRecord::Registry(r) => Some(r.action.tenant_id.as_str()),
            AuditRecord::Security(_) | AuditRecord::System(_) => None,
        }
    }

    pub(crate) fn time(&self) -> Timestamp {
        match self {
            AuditRecord::Execution(r) => r.time,
            AuditRecord::Registry(r) => r.time,
            AuditRecord::Security(r) => r.time,
            AuditRecord::System(r) => r.time,
        }
    }
}

/// A stored record with its place in the chain. Serializes flat: the
/// record's fields plus `seq`, `stream`, `hash` and `prev_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, contiguous from 1.
    pub seq: u64,
    /// Lowercase hex hash of the previous record (zeros for seq 1).
    pub prev_hash: String,
    /// Lowercase hex `sha256(prev_hash || seq || sha256(canonical body))`
    /// (chain format 2), or `sha256(prev_hash || seq || canonical body)` for
    /// records made before migration 3 (format 1).
    pub hash: String,
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// Raw payloads the caller opted to keep for replay (the manifest's capture
/// policy). Stored outside the chain, deleted after `retention_days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The raw input.
    pub input: Vec<u8>,
    /// The raw output, if there was one.
    pub output: Option<Vec<u8>>,
    /// Days to keep them, counted from the record's time.
    pub retention_days: u32,
}

/// A captured payload read back. Check it against the chained record's
/// `input_sha256` / `output_sha256` before trusting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCapture {
    /// The seq of the execution record it belongs to.
    pub seq: u64,
    /// The execution id.
    pub execution_id: String,
    /// The raw input.
    pub input: Vec<u8>,
    /// The raw output, if any.
    pub output: Option<Vec<u8>>,
    /// When it will be deleted.
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn set_input_hashes_and_summarizes() {
        let mut rec =
            ExecutionRecord::from_context(&Context::local(), Timestamp::now(), OutcomeKind::Ok);
        rec.set_input(br#"{"days": 3}"#);
        assert_eq!(rec.input_size, 11);
        assert_eq!(rec.input_sha256, sha256_hex(br#"{"days": 3}"#));
        assert_eq!(rec.input_summary, json!({"days": "number"}));
        let mut parsed = rec.clone();
        parsed.set_input(b"");
        parsed.set_parsed_input(br#"{"days": 3}"#, &json!({"days": 3}));
        assert_eq!(parsed, rec);
        rec.set_input(b"not json");
        assert_eq!(rec.input_summary, json!("invalid_json"));
        rec.set_output(Some(b"{}"));
        assert_eq!(rec.output_size, 2);
        assert_eq!(
            rec.output_sha256.as_deref(),
            Some(sha256_hex(b"{}").as_str())
        );
    }

    #[test]
    fn run_fields_are_left_out_of_an_invocation_and_kept_otherwise() {
        let rec = ExecutionRecord::from_context(
            &Context::local(),
            Timestamp::UNIX_EPOCH,
            OutcomeKind::Ok,
        );
        assert_eq!(
            (rec.run, &rec.test_name, &rec.replay_of),
            (RunKind::Invocation, &None, &None)
        );
        // An invocation's bytes are what they were before these fields.
        let v = serde_json::to_value(&rec).expect("serialize");
        for absent in ["run", "test_name", "replay_of"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
        let old: ExecutionRecord = serde_json::from_value(v).expect("old record");
        assert_eq!(old, rec);

        let test = ExecutionRecord {
            run: RunKind::TestRun,
            test_name: Some("three_days".into()),
            ..rec.clone()
        };
        let v = serde_json::to_value(&test).expect("serialize");
        assert_eq!(
            (&v["run"], &v["test_name"]),
            (&json!("test_run"), &json!("three_days"))
        );
        assert_eq!(
            serde_json::from_value::<ExecutionRecord>(v).expect("back"),
            test
        );
        let replay = ExecutionRecord {
            run: RunKind::Replay,
            replay_of: Some("exec-1".into()),
            ..rec
        };
        let v = serde_json::to_value(&replay).expect("serialize");
        assert_eq!(
            (&v["run"], &v["replay_of"]),
            (&json!("replay"), &json!("exec-1"))
        );
        assert_eq!(
            serde_json::from_value::<ExecutionRecord>(v).expect("back"),
            replay
        );
    }

    #[test]
    fn entry_serializes_flat_with_stream_tag() {
        let mut rec = ExecutionRecord::from_context(
            &Context::local(),
            Timestamp::UNIX_EPOCH,
            OutcomeKind::Timeout,
        );
        rec.node = "n1".into();
        let entry = AuditEntry {
            seq: 7,
            prev_hash: "aa".into(),
            hash: "bb".into(),
            record: AuditRecord::Execution(rec),
        };
        let v = serde_json::to_value(&entry).expect("serialize");
        assert_eq!(v["stream"], "execution");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["outcome"], "timeout");
        assert_eq!(v["time"], "1970-01-01T00:00:00.000Z");
        let back: AuditEntry = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back, entry);
    }
}
