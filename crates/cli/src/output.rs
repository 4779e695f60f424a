//! Readable tables by default, JSON for scripts; and output that survives
//! a closed pipe (`aifn audit list | head -1`): once stdout or stderr is
//! closed, what would go there is dropped and the command ends as it would
//! have, without a panic.

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// Prints a line on stdout (see [`write_line`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_line(false, format_args!($($arg)*)) };
}

/// Prints a line on stderr (see [`write_line`]).
macro_rules! err {
    ($($arg:tt)*) => { $crate::output::write_line(true, format_args!($($arg)*)) };
}

pub(crate) use {err, out};

/// Writes one line; after a closed pipe, writes nothing more there.
pub(crate) fn write_line(to_stderr: bool, args: fmt::Arguments<'_>) {
    let closed = if to_stderr {
        &STDERR_CLOSED
    } else {
        &STDOUT_CLOSED
    };
    if closed.load(Ordering::Relaxed) {
        return;
    }
    let result = if to_stderr {
        writeln!(std::io::stderr().lock(), "{args}")
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{args}").and_then(|()| out.flush())
    };
    // Any write error means nobody reads it any more (EPIPE, a full disk
    // behind a redirect): stop writing; the exit status still tells.
    if result.is_err() {
        closed.store(true, Ordering::Relaxed);
    }
}

/// Whether stdout was closed: long listings stop early.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// A writer over stdout for streamed output (`audit export`), closed-pipe
/// safe like [`write_line`].
pub(crate) struct Stdout;

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if stdout_closed() {
            return Ok(buf.len());
        }
        match std::io::stdout().lock().write_all(buf) {
            Ok(()) => Ok(buf.len()),
            Err(_) => {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !stdout_closed() && std::io::stdout().lock().flush().is_err() {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Prints one JSON document.
pub(crate) fn json(v: &Value) {
    out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints aligned columns.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| (*h).to_owned()).collect());
    if rows.is_empty() {
        out!("(none)");
    }
    for row in rows {
        if stdout_closed() {
            break;
        }
        line(row);
    }
}
