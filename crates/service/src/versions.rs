//! Reading what a version runs: its module bytes and, for a version
//! uploaded as source, the source text. For the people who review and
//! author code (authors, approvers, admins); agents run functions, they
//! do not read them.

use aifn_registry::Principal;
use aifn_types::{Role, Source};

use crate::auth::require;
use crate::{Service, ServiceError};

/// Who may read a version's code, and diffs of it.
pub(crate) const CODE_READERS: &[Role] = &[Role::Author, Role::Approver, Role::Admin];

impl Service {
    /// The module bytes of `name@version`, exactly as uploaded (or built
    /// from its source), checked against the version's sha256.
    pub fn module(
        &self,
        who: &Principal,
        (name, version): (&str, u32),
    ) -> Result<Vec<u8>, ServiceError> {
        require(who, CODE_READERS, "reading a version's module")?;
        let info = self.get_version(who, name, version)?;
        Ok(self.inner.registry.module_bytes(&info.sha256)?)
    }

    /// The source `name@version` was uploaded as: `not_found` when it was
    /// uploaded as a module.
    pub fn source(
        &self,
        who: &Principal,
        (name, version): (&str, u32),
    ) -> Result<Source, ServiceError> {
        require(who, CODE_READERS, "reading a version's source")?;
        let info = self.get_version(who, name, version)?;
        // "source of f@1 not found": the version was uploaded as a module.
        self.source_of(&info)?
            .ok_or_else(|| ServiceError::NotFound {
                what: format!("source of {name}@{version}"),
            })
    }
}
