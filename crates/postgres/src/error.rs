//! What can be wrong with a database URL's settings, found before any
//! connection is tried. No variant holds the URL: it may carry a password.

use std::path::PathBuf;

/// A database URL that cannot be used as given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A setting aifn reads itself has a value it does not accept.
    #[error("database URL: {reason}")]
    Invalid {
        /// Which setting, and why.
        reason: String,
    },
    /// The driver refused the rest of the URL.
    #[error("database URL")]
    Driver(#[source] tokio_postgres::Error),
    /// A certificate or key file named by the URL cannot be used.
    #[error("database URL: {setting}={}: {reason}", path.display())]
    File {
        /// `sslrootcert`, `sslcert` or `sslkey`.
        setting: &'static str,
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the client settings (e.g. a key that does not fit
    /// its certificate).
    #[error("database URL: TLS client settings")]
    Tls(#[source] rustls::Error),
}
