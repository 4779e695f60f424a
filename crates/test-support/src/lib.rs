//! Dev-only support for aifn's tests and fuzz targets (never published,
//! never a dependency of the product): the WAT guests several test
//! binaries share, the table of which error kinds fit which HTTP status,
//! the check every error body of the API must pass, probes of the test
//! process's resources, and a service over a temporary data dir.
//!
//! Without features it depends on nothing, so the runtime's tests can use
//! its fixtures without building the service; the `service` feature adds
//! what needs `aifn-service` (the error kind names come from
//! `aifn_service::ErrorKind::ALL`, the product's single list), and the
//! `postgres` feature a real PostgreSQL server per test process.

mod fixtures;
mod kinds;
mod process;

#[cfg(feature = "service")]
mod body;
#[cfg(feature = "service")]
mod harness;
#[cfg(feature = "postgres")]
mod postgres;

pub use fixtures::{CONTEXT_ECHO_WAT, ECHO_WAT, OLDER_ENGINE_WAT};
pub use kinds::{MODULE_REFUSALS, RUN_KINDS, kinds_for};
pub use process::{open_fds, rss_bytes, run_alone, threads};

#[cfg(feature = "service")]
pub use body::{LEAKS, check_error_body, error_kinds};
#[cfg(feature = "service")]
pub use harness::{TempService, plenty_of_fuel};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresServer, TlsFiles, postgres_url, psql_at};
