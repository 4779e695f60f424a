//! [`Service::diff`]: which versions a version is compared against. For
//! those who read code (authors, approvers, admins): a diff shows the
//! source, which agents never read.

use aifn_registry::{Principal, VersionInfo, VersionRef};
use aifn_types::Source;

use super::{DiffRelation, DiffReport, VersionDiff};
use crate::auth::require;
use crate::versions::CODE_READERS;
use crate::{Service, ServiceError};

impl Service {
    /// The diffs of `name@version`: against `against` when given (it must
    /// be readable too), else against the previous version (if there is
    /// one the caller may read) and against the active version when that
    /// is neither this one nor the previous one. Authors, approvers and
    /// admins only.
    pub fn diff(
        &self,
        who: &Principal,
        (name, version): (&str, u32),
        against: Option<u32>,
    ) -> Result<DiffReport, ServiceError> {
        require(who, CODE_READERS, "diffing versions")?;
        let after = self.get_version(who, name, version)?;
        let mut others = Vec::new();
        match against {
            Some(n) => others.push((self.get_version(who, name, n)?, DiffRelation::Chosen)),
            None => {
                let previous = match version.checked_sub(1).filter(|v| *v > 0) {
                    Some(p) => match self.get_version(who, name, p) {
                        Ok(info) => Some(info),
                        // The previous number was never used: no diff.
                        Err(ServiceError::NotFound { .. }) => None,
                        Err(e) => return Err(e),
                    },
                    None => None,
                };
                let previous_version = previous.as_ref().map(|p| p.version);
                if let Some(p) = previous {
                    others.push((p, DiffRelation::Previous));
                }
                match self.inner.registry.active(&who.tenant, &after.name) {
                    Ok(active)
                        if active.version != version
                            && Some(active.version) != previous_version =>
                    {
                        others.push((active, DiffRelation::Active));
                    }
                    Ok(_) | Err(aifn_registry::RegistryError::NotActive { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let after_source = self.source_of(&after)?;
        let mut diffs = Vec::with_capacity(others.len());
        for (before, relation) in others {
            let before_source = self.source_of(&before)?;
            diffs.push(VersionDiff::between(
                relation,
                (&before, before_source.as_ref()),
                (&after, after_source.as_ref()),
            ));
        }
        Ok(DiffReport { version, diffs })
    }

    /// The source a version was uploaded as, if it was.
    pub(crate) fn source_of(&self, info: &VersionInfo) -> Result<Option<Source>, ServiceError> {
        let target = VersionRef {
            tenant: info.tenant.clone(),
            name: info.name.clone(),
            version: info.version,
        };
        Ok(self.inner.registry.source(&target)?)
    }
}
