//! A database URL made into the driver's configuration. The TLS settings
//! are read here, not by the driver: it knows only `disable`, `prefer`
//! and `require`, verifies nothing itself, and refuses `sslrootcert`.

use std::path::PathBuf;

use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::SettingsError;
use crate::{Connection, tls};

/// libpq's `sslmode`, with one difference: whenever TLS is used the
/// server's certificate is verified (aifn has no unverified TLS), so
/// `prefer` and `require` check the chain and the host name as
/// `verify-full` does. `allow` (plaintext first) is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it, plaintext otherwise (libpq's
    /// default). A Unix socket never offers it.
    #[default]
    Prefer,
    /// TLS or no connection; chain and host name verified.
    Require,
    /// TLS or no connection; the chain verified, not the host name.
    VerifyCa,
    /// TLS or no connection; chain and host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, SettingsError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(invalid(
                    "sslmode=allow (plaintext first) is not supported: use prefer, require or verify-full",
                ));
            }
            other => {
                return Err(invalid(format!(
                    "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
                )));
            }
        })
    }

    /// The mode the driver negotiates with; verification is rustls's.
    fn driver(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }

    /// Whether a connection without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// The TLS settings of one URL.
#[derive(Debug, Default)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    /// `None` or `system`: the system's trusted roots.
    pub(crate) root_cert: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

/// How to connect to one database: the driver's configuration and the
/// TLS connector its settings ask for.
#[derive(Clone)]
pub struct Connector {
    config: Config,
    tls: MakeRustlsConnect,
    mode: SslMode,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The driver's Config debug-prints no password; the TLS connector
        // has nothing to show.
        f.debug_struct("Connector")
            .field("config", &self.config)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Reads a `postgres://` / `postgresql://` URL, or a libpq key=value
    /// string (whose TLS settings are then the driver's: `sslmode` only).
    /// Certificate files are read now, so a wrong path fails at start.
    pub fn parse(url: &str) -> Result<Connector, SettingsError> {
        let (rest, settings) = split(url)?;
        let config: Config = rest.parse().map_err(SettingsError::Driver)?;
        let settings = settings.unwrap_or_else(|| TlsSettings {
            mode: match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => SslMode::Disable,
                tokio_postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
            ..TlsSettings::default()
        });
        let tls = MakeRustlsConnect::new(tls::client_config(&settings)?);
        Ok(Connector {
            config,
            tls,
            mode: settings.mode,
        })
    }

    /// The driver's configuration (host, database, user, ...).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The driver's configuration, to add session options to.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// The TLS connector, for a pool's manager.
    pub fn tls(&self) -> MakeRustlsConnect {
        self.tls.clone()
    }

    /// The URL's `sslmode`.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// Opens one connection; the caller polls the [`Connection`].
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, Connection), tokio_postgres::Error> {
        self.config.connect(self.tls.clone()).await
    }
}

/// Splits a URL into what the driver reads (with `sslmode` mapped to its
/// three) and the TLS settings read here; a key=value string passes whole.
fn split(url: &str) -> Result<(String, Option<TlsSettings>), SettingsError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Ok((url.to_owned(), None));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut settings = TlsSettings::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let path = || decode(value).map(PathBuf::from);
        match key {
            "sslmode" => settings.mode = SslMode::parse(&decode(value)?)?,
            "sslrootcert" => {
                settings.root_cert = Some(path()?).filter(|p| p.as_os_str() != "system")
            }
            "sslcert" => settings.client_cert = Some(path()?),
            "sslkey" => settings.client_key = Some(path()?),
            "sslpassword" => {
                return Err(invalid(
                    "sslpassword is not supported: give sslkey an unencrypted key file readable only by aifn",
                ));
            }
            "sslcrl" | "sslcrldir" | "sslsni" | "requiressl" => {
                return Err(invalid(format!("{key} is not supported")));
            }
            _ => kept.push(pair),
        }
    }
    kept.push(match settings.mode.driver() {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok((format!("{base}?{}", kept.join("&")), Some(settings)))
}

/// Percent-decoding of one query value (paths are given encoded).
fn decode(value: &str) -> Result<String, SettingsError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = value
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| invalid("a % in a setting not followed by two hex digits"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("a setting that is not UTF-8 once decoded"))
}

fn invalid(reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> (String, TlsSettings) {
        let (rest, s) = split(url).expect("split");
        (rest, s.expect("a URL has settings"))
    }

    #[test]
    fn tls_settings_are_taken_out_and_sslmode_is_mapped_for_the_driver() {
        let (rest, s) = settings(
            "postgresql://aifn:pw@db.internal:5433/aifn?sslmode=verify-full&sslrootcert=%2Fetc%2Faifn%2Fca.pem\
             &application_name=node-1&sslcert=/c.pem&sslkey=/k.pem",
        );
        assert_eq!(
            rest,
            "postgresql://aifn:pw@db.internal:5433/aifn?application_name=node-1&sslmode=require"
        );
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/etc/aifn/ca.pem")));
        assert_eq!(s.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(s.client_key, Some(PathBuf::from("/k.pem")));
        let config: Config = rest.parse().expect("the driver reads the rest");
        assert_eq!(config.get_application_name(), Some("node-1"));
    }

    #[test]
    fn the_default_is_prefer_and_sslrootcert_system_means_the_system_roots() {
        let (rest, s) = settings("postgres://u@h/db");
        assert_eq!(rest, "postgres://u@h/db?sslmode=prefer");
        assert_eq!(s.mode, SslMode::Prefer);
        let (_, s) = settings("postgres://u@h/db?sslrootcert=system&sslmode=require");
        assert_eq!((s.mode, s.root_cert), (SslMode::Require, None));
        assert_eq!(
            split("host=/tmp dbname=x").expect("kv").0,
            "host=/tmp dbname=x"
        );
    }

    #[test]
    fn unsupported_or_malformed_settings_are_refused_by_name() {
        for (url, says) in [
            ("postgres://u@h/db?sslmode=allow", "sslmode=allow"),
            ("postgres://u@h/db?sslmode=verify", "sslmode=\"verify\""),
            ("postgres://u@h/db?sslpassword=x", "sslpassword"),
            ("postgres://u@h/db?sslcrl=/x", "sslcrl"),
            ("postgres://u@h/db?sslrootcert=%zz", "two hex digits"),
        ] {
            let e = split(url).err().unwrap_or_else(|| panic!("{url} accepted"));
            assert!(e.to_string().contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn a_missing_certificate_file_fails_at_parse_naming_the_setting_not_the_password() {
        let e = Connector::parse(
            "postgres://u:topsecret@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .expect_err("no such file");
        let text = e.to_string();
        assert!(text.contains("sslrootcert=/nonexistent/ca.pem"), "{text}");
        assert!(!format!("{e:?}").contains("topsecret"), "{e:?}");
        let e = Connector::parse("postgres://u@h/db?sslcert=/c.pem").expect_err("no key");
        assert!(e.to_string().contains("sslkey"), "{e}");
    }

    #[test]
    fn a_connector_never_debug_prints_the_password() {
        let c = Connector::parse("postgres://u:topsecret@h/db?sslmode=disable").expect("parse");
        assert!(!format!("{c:?}").contains("topsecret"), "{c:?}");
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert!(!c.ssl_mode().requires_tls());
    }
}
