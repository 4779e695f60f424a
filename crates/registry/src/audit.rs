use aifn_types::RegistryAction;

/// Where the registry sends the record of every action it takes.
///
/// `record` is called inside the action's write transaction, just before
/// commit. If it fails the action is rolled back and the caller gets
/// [`RegistryError::Audit`](crate::RegistryError::Audit): no action happens
/// without its record. (If the commit itself then fails, a record exists
/// for an action that did not happen; the reverse never occurs.)
pub trait AuditSink: Send + Sync {
    /// Durably records one action, or says why it could not.
    fn record(&self, action: &RegistryAction) -> Result<(), String>;
}

impl<T: AuditSink + ?Sized> AuditSink for &T {
    fn record(&self, action: &RegistryAction) -> Result<(), String> {
        (**self).record(action)
    }
}

impl<T: AuditSink + ?Sized> AuditSink for std::sync::Arc<T> {
    fn record(&self, action: &RegistryAction) -> Result<(), String> {
        (**self).record(action)
    }
}
