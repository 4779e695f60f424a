use std::fmt;

use serde::{Deserialize, Serialize};

/// A name or id that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// What was being validated (`function name`, `tenant id`, ...).
    pub what: &'static str,
    /// Why it was refused.
    pub reason: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for NameError {}

fn check(
    what: &'static str,
    s: &str,
    max: usize,
    first: fn(char) -> bool,
    rest: fn(char) -> bool,
    rule: &'static str,
) -> Result<(), NameError> {
    let mut chars = s.chars();
    match chars.next() {
        None => {
            return Err(NameError {
                what,
                reason: "must not be empty",
            });
        }
        Some(c) if !first(c) => return Err(NameError { what, reason: rule }),
        Some(_) => {}
    }
    if s.len() > max {
        return Err(NameError {
            what,
            reason: "too long",
        });
    }
    if !chars.all(rest) {
        return Err(NameError { what, reason: rule });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $first:expr, $rest:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a string.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                check($what, &s, $max, $first, $rest, $rule)?;
                Ok(Self(s))
            }

            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A function name, unique within a tenant: a lowercase letter, then up
    /// to 63 lowercase letters, digits or `_`. It is also a tool name for
    /// LLM function calling, whose rules are stricter than most.
    FunctionName,
    "function name",
    64,
    |c| c.is_ascii_lowercase(),
    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
    "use a lowercase letter, then lowercase letters, digits or '_'"
);

name_type!(
    /// A tenant id: 1 to 64 ASCII letters, digits, `_`, `-` or `.`,
    /// starting with a letter or digit.
    TenantId,
    "tenant id",
    64,
    |c| c.is_ascii_alphanumeric(),
    |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
    "use ASCII letters, digits, '_', '-' or '.', starting with a letter or digit"
);

name_type!(
    /// The subject an API key speaks for (a person or a service account):
    /// 1 to 128 printable ASCII characters without spaces.
    Subject,
    "subject",
    128,
    |c| c.is_ascii_graphic(),
    |c| c.is_ascii_graphic(),
    "use printable ASCII without spaces"
);

name_type!(
    /// The id of one execution attempt: 32 lowercase hex digits, time-ordered
    /// (a millisecond timestamp, then randomness). It seeds the guest's WASI
    /// randomness, so a run can be reproduced from its audit record.
    ExecutionId,
    "execution id",
    64,
    |c| c.is_ascii_alphanumeric(),
    |c| c.is_ascii_alphanumeric() || c == '-',
    "use ASCII letters, digits or '-'"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        assert!(FunctionName::new("calculate_leave_days").is_ok());
        assert!(FunctionName::new("a").is_ok());
        assert!(FunctionName::new("").is_err());
        assert!(FunctionName::new("1abc").is_err());
        assert!(FunctionName::new("Abc").is_err());
        assert!(FunctionName::new("a-b").is_err());
        assert!(FunctionName::new("a".repeat(64)).is_ok());
        assert!(FunctionName::new("a".repeat(65)).is_err());
        assert!(FunctionName::new("../etc").is_err());
    }

    #[test]
    fn tenants_and_subjects() {
        assert!(TenantId::new("acme-corp.eu_1").is_ok());
        assert!(TenantId::new("-acme").is_err());
        assert!(TenantId::new("acme corp").is_err());
        assert!(Subject::new("alice@example.com").is_ok());
        assert!(Subject::new("alice smith").is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: Result<FunctionName, _> = serde_json::from_str("\"echo\"");
        assert!(ok.is_ok());
        let bad: Result<FunctionName, _> = serde_json::from_str("\"Echo!\"");
        assert!(bad.is_err());
    }
}
