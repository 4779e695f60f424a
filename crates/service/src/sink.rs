//! The registry's audit hook, writing into the audit log.

use aifn_audit::AuditLog;
use aifn_registry::AuditSink;
use aifn_types::RegistryAction;

/// Records registry actions durably, inside the registry's transaction.
pub(crate) struct RegistryAudit<'a>(pub(crate) &'a AuditLog);

impl AuditSink for RegistryAudit<'_> {
    fn record(&self, action: &RegistryAction) -> Result<(), String> {
        self.0
            .record_registry(action)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
