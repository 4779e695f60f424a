//! Where shared state lives when it is not the embedded SQLite: a
//! PostgreSQL URL, whose password must never reach a log line.

use std::fmt;
use std::str::FromStr;

/// A PostgreSQL connection URL (`postgres://` or `postgresql://`, as libpq
/// reads it). `Display` and `Debug` show it without its password and
/// without its query (where `password=` and key files may be given);
/// [`DatabaseUrl::expose`] gives the whole text to the driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// Why a text is not a [`DatabaseUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrlError {
    reason: &'static str,
}

impl fmt::Display for DatabaseUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a PostgreSQL URL: {} (expected postgres://[user[:password]@]host[:port]/database[?options])",
            self.reason
        )
    }
}

impl std::error::Error for DatabaseUrlError {}

const SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];

impl DatabaseUrl {
    /// The whole URL, password included: for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL without password and query: what logs and errors show.
    pub fn redacted(&self) -> String {
        let (scheme, rest) = SCHEMES
            .iter()
            .find_map(|s| self.0.strip_prefix(s).map(|r| (*s, r)))
            .unwrap_or(("", self.0.as_str()));
        let rest = rest.split('?').next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = match authority.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or_default();
                format!("{user}@{host}")
            }
            None => authority.to_owned(),
        };
        format!("{scheme}{host}/{path}")
    }
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(s: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        let err = |reason| Err(DatabaseUrlError { reason });
        let Some(rest) = SCHEMES.iter().find_map(|p| s.strip_prefix(p)) else {
            return err("it does not start with postgres:// or postgresql://");
        };
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return err("it contains whitespace or control characters");
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // A Unix socket directory may come as `?host=/run/...` instead.
        if host.is_empty() && !rest.contains("host=") {
            return err("it names no host");
        }
        Ok(DatabaseUrl(s.to_owned()))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

/// The whole URL, so a configuration written out reads back the same;
/// nothing serializes a configuration where others can read it.
impl serde::Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<DatabaseUrl, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_parses_and_never_shows_its_password() {
        let url: DatabaseUrl =
            "postgres://aifn:s3cret@db.internal:5432/aifn?sslmode=verify-full&password=x"
                .parse()
                .expect("url");
        assert_eq!(url.to_string(), "postgres://aifn@db.internal:5432/aifn");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.expose().contains("s3cret"));
        let socket: DatabaseUrl = "postgresql://postgres@%2Ftmp%2Fpg/t_1"
            .parse()
            .expect("socket");
        assert_eq!(socket.to_string(), "postgresql://postgres@%2Ftmp%2Fpg/t_1");
        let by_option: DatabaseUrl = "postgresql:///aifn?host=/run/postgresql"
            .parse()
            .expect("host=");
        assert_eq!(by_option.to_string(), "postgresql:///aifn");
    }

    #[test]
    fn other_texts_are_refused_with_the_reason() {
        for (bad, why) in [
            ("/var/lib/aifn/registry.sqlite3", "does not start"),
            ("mysql://db/aifn", "does not start"),
            ("host=db dbname=aifn", "does not start"),
            ("postgres://db/ai fn", "whitespace"),
            ("postgres:///aifn", "no host"),
            ("postgres://user:pw@/aifn", "no host"),
        ] {
            let e = bad.parse::<DatabaseUrl>().expect_err(bad);
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
    }
}
