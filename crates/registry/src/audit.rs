use aifn_types::RegistryAction;

/// Why a record could not be written, as the sink's own error.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Where the registry sends the record of every action it takes or refuses.
/// Given to the registry once, when it opens.
///
/// For an action taken, `record` is called inside the action's write
/// transaction, just before commit. If it fails the action is rolled back
/// and the caller gets [`RegistryError::Audit`](crate::RegistryError::Audit):
/// no action happens without its record. (If the commit itself then fails,
/// a record exists for an action that did not happen; the reverse never
/// occurs.) For an action the registry refuses, the record (with
/// `refused` set) is written after the rollback; if that fails, the caller
/// still gets the refusal and the failure is logged.
pub trait AuditSink: Send + Sync {
    /// Durably records one action, or says why it could not.
    fn record(&self, action: &RegistryAction) -> Result<(), SinkError>;
}

impl<T: AuditSink + ?Sized> AuditSink for &T {
    fn record(&self, action: &RegistryAction) -> Result<(), SinkError> {
        (**self).record(action)
    }
}

impl<T: AuditSink + ?Sized> AuditSink for std::sync::Arc<T> {
    fn record(&self, action: &RegistryAction) -> Result<(), SinkError> {
        (**self).record(action)
    }
}
