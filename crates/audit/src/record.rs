//! The records: what callers hand in, what is chained and what queries return.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aifn_types::{Context, OutcomeKind, RegistryAction, RegistryActionKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::AuditError;
use crate::canon::{canonical_json, sha256_hex};
use crate::timefmt;

/// Error messages and notes are cut here; the chain is no place for megabytes.
const MAX_TEXT: usize = 4096;
/// Routes and remote addresses are cut here.
const MAX_SHORT: usize = 256;

/// One invocation attempt: a success, a failure of any kind, or a refusal of
/// an authenticated caller. Field names are those of the JSONL export and
/// the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The execution id (also the seed of the guest's randomness).
    pub execution_id: String,
    /// When the attempt started (stored with millisecond precision).
    #[serde(with = "crate::timefmt::rfc3339")]
    pub time: SystemTime,
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
}

impl ExecutionRecord {
    /// A record for the call described by `ctx`, with no input or output,
    /// zero resource use and no error message.
    pub fn from_context(ctx: &Context, time: SystemTime, outcome: OutcomeKind) -> ExecutionRecord {
        let mut rec = ExecutionRecord {
            execution_id: ctx.execution_id.clone(),
            time,
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

/// A registry action as recorded: [`RegistryAction`] plus time and node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryRecord {
    /// When it was recorded.
    #[serde(with = "crate::timefmt::rfc3339")]
    pub time: SystemTime,
    /// The tenant the target belongs to.
    pub tenant_id: String,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: RegistryActionKind,
    /// `name@version` or a key id.
    pub target: String,
    /// The module sha256, for version actions.
    pub sha256: Option<String>,
    /// The notes given (cut at 4 KiB).
    pub notes: Option<String>,
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
    #[serde(with = "crate::timefmt::rfc3339")]
    pub time: SystemTime,
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
    #[serde(with = "crate::timefmt::rfc3339")]
    pub time: SystemTime,
    /// What happened.
    pub event: SystemEvent,
    /// Who asked for it.
    pub actor: String,
    /// Records older than this were eligible.
    #[serde(with = "crate::timefmt::rfc3339")]
    pub cutoff: SystemTime,
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
/// `security` and `system` are host-level.
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
            AuditRecord::Registry(r) => Some(&r.tenant_id),
            AuditRecord::Security(_) | AuditRecord::System(_) => None,
        }
    }

    fn time(&self) -> SystemTime {
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
    /// Lowercase hex `sha256(prev_hash || seq || canonical body)`.
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
    pub expires_at: SystemTime,
}

/// The indexed columns of a record, derived from the body only. `verify`
/// derives them again and compares, so editing a column is detected even
/// though the hash covers the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexCols {
    pub(crate) stream: String,
    pub(crate) tenant_id: Option<String>,
    pub(crate) time_ms: i64,
    pub(crate) function: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) execution_id: Option<String>,
}

impl IndexCols {
    pub(crate) fn of(rec: &AuditRecord) -> Result<IndexCols, AuditError> {
        let mut cols = IndexCols {
            stream: rec.stream().as_str().to_owned(),
            tenant_id: rec.tenant_id().map(str::to_owned),
            time_ms: timefmt::to_ms(rec.time())?,
            function: None,
            agent_id: None,
            user_id: None,
            outcome: None,
            execution_id: None,
        };
        match rec {
            AuditRecord::Execution(r) => {
                cols.function = Some(r.function.clone());
                cols.agent_id = Some(r.agent_id.clone());
                cols.user_id = Some(r.user_id.clone());
                cols.outcome = Some(r.outcome.as_str().to_owned());
                cols.execution_id = Some(r.execution_id.clone());
            }
            // Version actions are findable by function name.
            AuditRecord::Registry(r) if is_version_action(r.action) => {
                cols.function = r.target.split('@').next().map(str::to_owned);
            }
            _ => {}
        }
        Ok(cols)
    }
}

fn is_version_action(a: RegistryActionKind) -> bool {
    matches!(
        a,
        RegistryActionKind::Upload
            | RegistryActionKind::Approve
            | RegistryActionKind::Reject
            | RegistryActionKind::Revoke
    )
}

/// A record ready for the writer: its canonical body and columns.
#[derive(Debug)]
pub(crate) struct NewEntry {
    pub(crate) cols: IndexCols,
    pub(crate) body: String,
    pub(crate) capture: Option<CaptureRow>,
}

#[derive(Debug)]
pub(crate) struct CaptureRow {
    pub(crate) input: Vec<u8>,
    pub(crate) output: Option<Vec<u8>>,
    pub(crate) expires_ms: i64,
}

impl NewEntry {
    pub(crate) fn new(
        rec: &AuditRecord,
        capture: Option<CaptureRow>,
    ) -> Result<NewEntry, AuditError> {
        let cols = IndexCols::of(rec)?;
        let value = serde_json::to_value(rec).map_err(|e| AuditError::invalid(e.to_string()))?;
        Ok(NewEntry {
            cols,
            body: canonical_json(&value),
            capture,
        })
    }
}

/// Checks and normalizes a record in the caller's thread, so the writer
/// only ever sees records that will serialize.
pub(crate) fn prepare_execution(
    mut rec: ExecutionRecord,
    node: &str,
    capture: Option<Captured>,
) -> Result<NewEntry, AuditError> {
    if rec.tenant_id.is_empty() {
        return Err(AuditError::invalid(
            "execution record without tenant_id (use record_security)",
        ));
    }
    if rec.execution_id.is_empty() {
        return Err(AuditError::invalid("execution record without execution_id"));
    }
    if !rec.duration_ms.is_finite() || rec.duration_ms < 0.0 {
        return Err(AuditError::invalid(format!(
            "duration_ms {} is not a finite, non-negative number",
            rec.duration_ms
        )));
    }
    // Microseconds: short decimals survive any JSON parser unchanged.
    rec.duration_ms = (rec.duration_ms * 1000.0).round() / 1000.0;
    rec.error_message = rec.error_message.map(|m| cut(m, MAX_TEXT));
    if !is_summary(&rec.input_summary, 0) {
        rec.input_summary = summarize_input(&rec.input_summary);
    }
    rec.node = node.to_owned();
    let capture = match capture {
        None => None,
        Some(c) => {
            let start = timefmt::to_ms(rec.time)?;
            let keep = i64::from(c.retention_days).saturating_mul(86_400_000);
            Some(CaptureRow {
                input: c.input,
                output: c.output,
                expires_ms: start.saturating_add(keep),
            })
        }
    };
    NewEntry::new(&AuditRecord::Execution(rec), capture)
}

pub(crate) fn prepare_registry(a: &RegistryAction, node: &str) -> Result<NewEntry, AuditError> {
    if a.tenant_id.is_empty() {
        return Err(AuditError::invalid("registry action without tenant_id"));
    }
    let rec = RegistryRecord {
        time: SystemTime::now(),
        tenant_id: a.tenant_id.clone(),
        actor: a.actor.clone(),
        action: a.action,
        target: a.target.clone(),
        sha256: a.sha256.clone(),
        notes: a.notes.clone().map(|n| cut(n, MAX_TEXT)),
        node: node.to_owned(),
    };
    NewEntry::new(&AuditRecord::Registry(rec), None)
}

pub(crate) fn prepare_security(mut ev: SecurityEvent, node: &str) -> Result<NewEntry, AuditError> {
    if let Some(q) = ev.route.find(['?', '#']) {
        ev.route.truncate(q);
    }
    ev.route = cut(ev.route, MAX_SHORT);
    ev.remote_addr = ev.remote_addr.map(|a| cut(a, MAX_SHORT));
    ev.node = node.to_owned();
    NewEntry::new(&AuditRecord::Security(ev), None)
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str("…[truncated]");
    s
}

/// Deepest nesting kept by [`summarize_input`].
const MAX_DEPTH: usize = 8;
/// Keys kept per object.
const MAX_KEYS: usize = 64;
/// Distinct element shapes kept per array.
const MAX_SHAPES: usize = 16;
/// Longest key kept (bytes).
const MAX_KEY_LEN: usize = 64;
/// Total nodes in one summary.
const MAX_NODES: usize = 1024;
/// Where something was cut. Not a JSON type name, so it cannot be confused.
const CUT: &str = "…";

/// The shape of a JSON value without any of its values: every leaf becomes
/// its type name (`null`, `boolean`, `number`, `string`), objects keep their
/// keys, arrays become the list of distinct element shapes.
///
/// `{"a":1,"b":{"c":"x"},"d":[1,2]}` → `{"a":"number","b":{"c":"string"},"d":["number"]}`.
///
/// Bounded: nesting deeper than 8 becomes `"object…"` / `"array…"` (no keys
/// below the bound), objects keep their first 64 keys (sorted) plus a `"…"`
/// key counting the rest, arrays keep 16 distinct shapes plus `"…"`, keys
/// are cut at 64 bytes and a summary has at most 1024 nodes.
pub fn summarize_input(v: &Value) -> Value {
    let mut budget = MAX_NODES;
    summarize(v, 0, &mut budget)
}

fn summarize(v: &Value, depth: usize, budget: &mut usize) -> Value {
    if *budget == 0 {
        return Value::String(CUT.into());
    }
    *budget -= 1;
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "boolean".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Object(_) if depth >= MAX_DEPTH => format!("object{CUT}").into(),
        Value::Array(_) if depth >= MAX_DEPTH => format!("array{CUT}").into(),
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys.iter().take(MAX_KEYS) {
                let key = cut_key(k);
                let child = summarize(&map[k.as_str()], depth + 1, budget);
                out.insert(key, child);
            }
            if keys.len() > MAX_KEYS {
                out.insert(
                    CUT.into(),
                    format!("{} more keys", keys.len() - MAX_KEYS).into(),
                );
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            // Deduplicate by canonical form; keep first-seen order.
            let mut seen = BTreeMap::new();
            let mut shapes = Vec::new();
            let mut cut_off = false;
            for item in items {
                let shape = summarize(item, depth + 1, budget);
                let key = canonical_json(&shape);
                if seen.contains_key(&key) {
                    continue;
                }
                if shapes.len() == MAX_SHAPES {
                    cut_off = true;
                    break;
                }
                seen.insert(key, ());
                shapes.push(shape);
            }
            if cut_off {
                shapes.push(CUT.into());
            }
            Value::Array(shapes)
        }
    }
}

fn cut_key(k: &str) -> String {
    if k.len() <= MAX_KEY_LEN {
        return k.to_owned();
    }
    let mut end = MAX_KEY_LEN;
    while !k.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &k[..end])
}

/// True if `v` could have come from [`summarize_input`]: every leaf is a
/// type name or a cut marker, within the bounds.
fn is_summary(v: &Value, depth: usize) -> bool {
    match v {
        Value::Null => depth == 0,
        Value::String(s) => {
            matches!(
                s.as_str(),
                "null" | "boolean" | "number" | "string" | CUT | "object…" | "array…"
            ) || (depth == 0 && s == "invalid_json")
                || (s.ends_with(" more keys")
                    && s.trim_end_matches(" more keys")
                        .bytes()
                        .all(|b| b.is_ascii_digit()))
        }
        Value::Object(m) => {
            depth < MAX_DEPTH
                && m.len() <= MAX_KEYS + 1
                && m.iter()
                    .all(|(k, v)| k.len() <= MAX_KEY_LEN + CUT.len() && is_summary(v, depth + 1))
        }
        Value::Array(a) => {
            depth < MAX_DEPTH
                && a.len() <= MAX_SHAPES + 1
                && a.iter().all(|v| is_summary(v, depth + 1))
        }
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn summary_keeps_names_and_types_only() {
        let v = json!({"a": 1, "b": {"c": "x"}, "d": [1, 2]});
        assert_eq!(
            summarize_input(&v),
            json!({"a": "number", "b": {"c": "string"}, "d": ["number"]})
        );
        let v = json!([1, "s", null, true, 2, {"k": [1.5]}, {"k": [3]}]);
        assert_eq!(
            summarize_input(&v),
            json!(["number", "string", "null", "boolean", {"k": ["number"]}])
        );
        assert_eq!(summarize_input(&json!("secret")), json!("string"));
    }

    #[test]
    fn summary_is_bounded_in_depth_and_width() {
        let mut deep = json!({"leaf": "secret"});
        for _ in 0..20 {
            deep = json!({ "n": deep });
        }
        let s = summarize_input(&deep);
        let text = s.to_string();
        assert!(
            !text.contains("leaf"),
            "keys below the bound must not appear: {text}"
        );
        assert!(text.contains("object…"));
        let mut cur = &s;
        for _ in 0..MAX_DEPTH {
            cur = &cur["n"];
        }
        assert_eq!(cur, &json!("object…"));

        let wide: Map<String, Value> = (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let s = summarize_input(&Value::Object(wide));
        let obj = s.as_object().expect("object");
        assert_eq!(obj.len(), MAX_KEYS + 1);
        assert_eq!(obj["…"], json!("36 more keys"));
        assert!(obj.contains_key("k063") && !obj.contains_key("k064"));

        let many: Vec<Value> = (0..40).map(|i| json!({ format!("f{i}"): i })).collect();
        let s = summarize_input(&Value::Array(many));
        assert_eq!(s.as_array().expect("array").len(), MAX_SHAPES + 1);
        assert_eq!(s[MAX_SHAPES], json!("…"));
    }

    #[test]
    fn summaries_are_recognized_and_values_are_not() {
        let v = json!({"a": [1, {"b": "x"}], "c": null});
        assert!(is_summary(&summarize_input(&v), 0));
        assert!(!is_summary(&json!({"a": 1}), 0));
        assert!(!is_summary(&json!({"password": "hunter2"}), 0));
        assert!(is_summary(&Value::Null, 0));
    }

    #[test]
    fn a_raw_input_passed_as_summary_is_summarized() {
        let mut rec =
            ExecutionRecord::from_context(&Context::local(), SystemTime::now(), OutcomeKind::Ok);
        rec.input_summary = json!({"password": "hunter2"});
        let e = prepare_execution(rec, "n1", None).expect("valid");
        assert!(!e.body.contains("hunter2"));
        assert!(
            e.body.contains(r#""input_summary":{"password":"string"}"#),
            "{}",
            e.body
        );
    }

    #[test]
    fn security_route_drops_query_string() {
        let ev = SecurityEvent {
            time: SystemTime::now(),
            route: "/v1/functions/x/invoke?api_key=sk_live_123".into(),
            reason: SecurityReason::UnknownKey,
            remote_addr: Some("10.0.0.1:5000".into()),
            node: String::new(),
        };
        let e = prepare_security(ev, "n1").expect("valid");
        assert!(!e.body.contains("sk_live"));
        assert!(e.body.contains(r#""route":"/v1/functions/x/invoke""#));
        assert_eq!(e.cols.tenant_id, None);
    }

    #[test]
    fn set_input_hashes_and_summarizes() {
        let mut rec =
            ExecutionRecord::from_context(&Context::local(), SystemTime::now(), OutcomeKind::Ok);
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
    fn entry_serializes_flat_with_stream_tag() {
        let mut rec = ExecutionRecord::from_context(
            &Context::local(),
            SystemTime::UNIX_EPOCH,
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
