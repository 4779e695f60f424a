//! aifn's connection to PostgreSQL, under the registry and the audit log
//! when a fleet keeps them there: a database URL's settings made into the
//! driver's configuration, TLS by rustls that always verifies the server
//! (libpq's `sslmode`, `sslrootcert`, `sslcert`, `sslkey`), and which
//! driver errors mean "the server is not there" rather than a refusal.
//!
//! The registry and the audit log each open their own connections with a
//! [`Connector`]; nothing here holds a connection.

mod error;
mod settings;
mod tls;
mod unreachable;

pub use error::SettingsError;
pub use settings::{Connector, SslMode};
pub use unreachable::{unreachable, unreachable_code};

/// A connection made by a [`Connector`], to be polled while its client is
/// used.
pub type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <tokio_postgres_rustls::MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<
        tokio_postgres::Socket,
    >>::Stream,
>;

/// The TLS connector the driver's pools take (deadpool's `Manager`).
pub use tokio_postgres_rustls::MakeRustlsConnect;
