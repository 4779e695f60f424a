//! From a caller's record to a chained entry: checks, cuts, columns.

use aifn_types::{RegistryAction, Timestamp};

use crate::AuditError;
use crate::canon::canonical_json;
use crate::record::{AuditRecord, Captured, ExecutionRecord, RegistryRecord, SecurityEvent};
use crate::summary::{is_summary, summarize_input};

/// Error messages and notes are cut here; the chain is no place for megabytes.
const MAX_TEXT: usize = 4096;
/// Routes and remote addresses are cut here.
const MAX_SHORT: usize = 256;

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
    pub(crate) fn of(rec: &AuditRecord) -> IndexCols {
        let mut cols = IndexCols {
            stream: rec.stream().as_str().to_owned(),
            tenant_id: rec.tenant_id().map(str::to_owned),
            time_ms: rec.time().unix_ms(),
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
            AuditRecord::Registry(r) => {
                cols.function = r.action.target.function_name().map(ToString::to_string);
            }
            _ => {}
        }
        cols
    }
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
        let cols = IndexCols::of(rec);
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
    // These come from callers (a function name that does not exist, any
    // user id) and are index columns too: PostgreSQL's TEXT cannot hold
    // U+0000, and one such record would fail its whole batch.
    for field in [
        &mut rec.function,
        &mut rec.agent_id,
        &mut rec.user_id,
        &mut rec.execution_id,
    ] {
        if field.contains('\0') {
            *field = field.replace('\0', "\u{fffd}");
        }
    }
    let capture = match capture {
        None => None,
        Some(c) => {
            let keep = i64::from(c.retention_days).saturating_mul(86_400_000);
            Some(CaptureRow {
                input: c.input,
                output: c.output,
                expires_ms: rec.time.unix_ms().saturating_add(keep),
            })
        }
    };
    NewEntry::new(&AuditRecord::Execution(rec), capture)
}

/// Timestamps a registry action now; `at` is for tests that pin bytes.
pub(crate) fn prepare_registry(
    a: &RegistryAction,
    node: &str,
    at: Timestamp,
) -> Result<NewEntry, AuditError> {
    let mut action = a.clone();
    action.notes = action.notes.map(|n| cut(n, MAX_TEXT));
    if let Some(r) = &mut action.refused {
        r.reason = cut(std::mem::take(&mut r.reason), MAX_TEXT);
    }
    let rec = RegistryRecord {
        time: at,
        action,
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

#[cfg(test)]
mod tests {
    use aifn_types::{Context, OutcomeKind};
    use serde_json::json;

    use super::*;
    use crate::record::SecurityReason;

    #[test]
    fn a_raw_input_passed_as_summary_is_summarized() {
        let mut rec =
            ExecutionRecord::from_context(&Context::local(), Timestamp::now(), OutcomeKind::Ok);
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
    fn a_nul_in_a_caller_chosen_column_is_recorded_as_a_replacement_character() {
        let mut rec =
            ExecutionRecord::from_context(&Context::local(), Timestamp::now(), OutcomeKind::Ok);
        rec.user_id = "eve\0x".into();
        rec.function = "f\0".into();
        let e = prepare_execution(rec, "n1", None).expect("valid");
        assert_eq!(e.cols.user_id.as_deref(), Some("eve\u{fffd}x"));
        assert_eq!(e.cols.function.as_deref(), Some("f\u{fffd}"));
        // The body says the same, so verify derives the same columns.
        let back: AuditRecord = serde_json::from_str(&e.body).expect("parse");
        assert_eq!(IndexCols::of(&back), e.cols);
        assert!(!e.body.contains("\\u0000"), "{}", e.body);
    }

    #[test]
    fn security_route_drops_query_string() {
        let ev = SecurityEvent {
            time: Timestamp::now(),
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

    /// Bodies and hashes as the release before typed targets wrote them:
    /// the chain of an existing log must verify unchanged.
    #[test]
    fn registry_records_keep_the_bytes_and_hashes_they_always_had() {
        use aifn_types::{
            AuditTarget, FunctionName, Refusal, RefusalKind, RegistryActionKind, Subject, TenantId,
        };

        use crate::canon::{GENESIS, chain_hash};

        let at = Timestamp::from_unix_ms(1_795_341_600_123).expect("time");
        let approve = RegistryAction {
            tenant_id: TenantId::new("acme").expect("tenant"),
            actor: Subject::new("bob").expect("actor"),
            action: RegistryActionKind::Approve,
            target: AuditTarget::Version {
                name: FunctionName::new("echo").expect("name"),
                version: 3,
            },
            sha256: Some("cd".repeat(32)),
            notes: Some("looks fine".into()),
            refused: None,
            before: None,
            after: None,
            override_failing_tests: false,
        };
        let e = prepare_registry(&approve, "node-1", at).expect("entry");
        assert_eq!(
            e.body,
            r#"{"action":"approve","actor":"bob","node":"node-1","notes":"looks fine","sha256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","stream":"registry","target":"echo@3","tenant_id":"acme","time":"2026-11-22T10:00:00.123Z"}"#
        );
        let h1 = chain_hash(&GENESIS, 1, &e.body);
        assert_eq!(
            hex::encode(h1),
            "06107d6877678a43798b82e877db5640842ff5da37d298dc987bced658309ea9"
        );
        assert_eq!(e.cols.function.as_deref(), Some("echo"));
        assert_eq!(e.cols.tenant_id.as_deref(), Some("acme"));
        assert_eq!(e.cols.time_ms, 1_795_341_600_123);

        let key = RegistryAction {
            actor: Subject::new("cli").expect("actor"),
            action: RegistryActionKind::KeyRevoked,
            target: AuditTarget::Key {
                key_id: "0123456789abcdef".into(),
            },
            sha256: None,
            notes: None,
            ..approve.clone()
        };
        let e = prepare_registry(&key, "node-1", at).expect("entry");
        assert_eq!(
            e.body,
            r#"{"action":"key_revoked","actor":"cli","node":"node-1","notes":null,"sha256":null,"stream":"registry","target":"0123456789abcdef","tenant_id":"acme","time":"2026-11-22T10:00:00.123Z"}"#
        );
        assert_eq!(
            hex::encode(chain_hash(&h1, 2, &e.body)),
            "de89d63c67b7b0a7221b57ef9cd19f378e9f845fe9f1266dadb1d399c3391baa"
        );
        assert_eq!(e.cols.function, None, "a key id is never a function");

        // A refusal adds its one field, and a record reads back as written.
        let refused = RegistryAction {
            refused: Some(Refusal {
                kind: RefusalKind::Forbidden,
                reason: "x".repeat(MAX_TEXT + 10),
            }),
            notes: Some("n".repeat(MAX_TEXT + 10)),
            ..approve
        };
        let e = prepare_registry(&refused, "node-1", at).expect("entry");
        let back: AuditRecord = serde_json::from_str(&e.body).expect("parse");
        let AuditRecord::Registry(r) = &back else {
            panic!("{back:?}")
        };
        let reason = &r.action.refused.as_ref().expect("refused").reason;
        assert!(reason.len() < MAX_TEXT + 20 && reason.ends_with("[truncated]"));
        assert!(
            r.action
                .notes
                .as_deref()
                .is_some_and(|n| n.ends_with("[truncated]"))
        );
        assert!(
            e.body
                .contains(r#""refused":{"kind":"forbidden","reason":"xxx"#)
        );
        assert_eq!(IndexCols::of(&back), e.cols);
    }
}
