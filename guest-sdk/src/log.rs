//! Log lines, kept by the host with the call's outcome (up to the
//! `log_bytes` limit, 16 KiB by default; logging never fails a call).
//!
//! ```
//! aifn_guest::log::info("starting");
//! aifn_guest::log::warn!("{} holidays fall on a weekend", 2);
//! ```
//!
//! The macros take `format!` arguments; the functions take a `&str`.

/// Severity of a log line; the numbers are ABI v1's `level` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// 0
    Trace = 0,
    /// 1
    Debug = 1,
    /// 2
    Info = 2,
    /// 3
    Warn = 3,
    /// 4. A panic's message is logged at this level just before the trap.
    Error = 4,
}

impl Level {
    /// Maps an ABI level; below 0 is trace, above 4 is error.
    pub fn from_abi(level: i32) -> Level {
        match level {
            i32::MIN..=0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            _ => Level::Error,
        }
    }
}

/// Logs one line at `level`.
pub fn write(level: Level, message: &str) {
    crate::host::log(level as i32, message.as_bytes());
}

/// Logs one line at level trace.
pub fn trace(message: &str) {
    write(Level::Trace, message)
}

/// Logs one line at level debug.
pub fn debug(message: &str) {
    write(Level::Debug, message)
}

/// Logs one line at level info.
pub fn info(message: &str) {
    write(Level::Info, message)
}

/// Logs one line at level warn.
pub fn warn(message: &str) {
    write(Level::Warn, message)
}

/// Logs one line at level error. The host appends the last error line to
/// a `trap` outcome's message.
pub fn error(message: &str) {
    write(Level::Error, message)
}

pub use crate::{debug, error, info, trace, warn};

/// Logs a formatted line at level trace: `trace!("x = {}", x)`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs a formatted line at level debug: `debug!("x = {}", x)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs a formatted line at level info: `info!("x = {}", x)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs a formatted line at level warn: `warn!("x = {}", x)`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs a formatted line at level error: `error!("x = {}", x)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+)) };
}
