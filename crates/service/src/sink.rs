//! The registry's audit hook, writing into the audit log.

use aifn_audit::AuditLog;
use aifn_registry::{AuditSink, SinkError};
use aifn_types::RegistryAction;

/// Records registry actions durably: taken ones inside the registry's
/// transaction, refused ones after it. Given to the registry at open.
pub(crate) struct RegistryAudit(pub(crate) AuditLog);

impl AuditSink for RegistryAudit {
    fn record(&self, action: &RegistryAction) -> Result<(), SinkError> {
        self.0.record_registry(action).map(drop).map_err(Into::into)
    }
}
