//! The per-call host state kept in each `Store`: the injected input and
//! context, the output, bounded logs, memory accounting and the deadline.

use std::time::Instant;

use aifn_types::{LogLevel, LogLine, LogStream};
use wasmtime::{Caller, Extern, Memory, ResourceLimiter};

use crate::wasi::WasiState;

/// Fuel every host call costs before copying anything.
pub(crate) const HOST_CALL_FUEL: u64 = 100;
/// Bytes a host call may copy per unit of fuel.
pub(crate) const BYTES_PER_FUEL: u64 = 4;

const TRUNCATION_MARKER: &str = "[log truncated]";

/// Why the host ended a call from inside a host function. Classified by
/// type, never by message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostTrap {
    #[error("out of bounds host call: {call} was given {ptr:#x}+{len} but memory is {size} bytes")]
    OutOfBounds {
        call: &'static str,
        ptr: u64,
        len: u64,
        size: u64,
    },
    #[error("host call {call} has no memory to work on")]
    NoMemory { call: &'static str },
    #[error("all fuel consumed by a host call ({call})")]
    OutOfFuel { call: &'static str },
    #[error("output of {len} bytes is over the limit of {limit} bytes")]
    OutputTooLarge { len: u64, limit: u64 },
    #[error("proc_exit({0})")]
    Exit(i32),
}

/// Enforces the memory and table limits and remembers refusals, so that a
/// trap after a refused `memory.grow` is reported as `memory_limit`.
pub(crate) struct Limiter {
    pub(crate) memory_bytes: usize,
    pub(crate) table_elements: usize,
    pub(crate) peak_memory: usize,
    pub(crate) memory_refused: bool,
    pub(crate) table_refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes && maximum.is_none_or(|m| desired <= m);
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        } else {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.table_elements && maximum.is_none_or(|m| desired <= m);
        if !allowed {
            self.table_refused = true;
        }
        Ok(allowed)
    }

    // One instance, one memory, one table per store.
    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// Log lines kept with the outcome, bounded in total bytes.
pub(crate) struct LogBuffer {
    pub(crate) lines: Vec<LogLine>,
    used: usize,
    limit: usize,
    truncated: bool,
    /// Unterminated WASI stdout/stderr text, joined into lines at newlines.
    partial: [Vec<u8>; 2],
}

impl LogBuffer {
    pub(crate) fn new(limit: usize) -> LogBuffer {
        LogBuffer {
            lines: Vec::new(),
            used: 0,
            limit,
            truncated: false,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Keeps as much of `text` as fits; past the budget adds one marker.
    pub(crate) fn push(&mut self, level: LogLevel, stream: LogStream, text: &[u8]) {
        if self.truncated {
            return;
        }
        let room = self.limit.saturating_sub(self.used);
        let (kept, cut) = if text.len() > room {
            (&text[..room], true)
        } else {
            (text, false)
        };
        if !kept.is_empty() || !cut {
            self.used += kept.len();
            self.lines.push(LogLine {
                level,
                stream,
                message: String::from_utf8_lossy(kept).into_owned(),
            });
        }
        if cut {
            self.truncated = true;
            self.lines.push(LogLine {
                level: LogLevel::Warn,
                stream: LogStream::Host,
                message: TRUNCATION_MARKER.to_owned(),
            });
        }
    }

    /// WASI stdout (fd 1) or stderr (fd 2) bytes: one line per newline.
    pub(crate) fn push_stream(&mut self, stderr: bool, mut bytes: &[u8]) {
        let (level, stream, idx) = if stderr {
            (LogLevel::Warn, LogStream::Stderr, 1)
        } else {
            (LogLevel::Info, LogStream::Stdout, 0)
        };
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&bytes[..nl]);
            self.push(level, stream, &line);
            bytes = &bytes[nl + 1..];
        }
        // Keep at most the remaining budget of an unterminated line.
        let room = self
            .limit
            .saturating_sub(self.used)
            .saturating_sub(self.partial[idx].len());
        let take = bytes.len().min(room + 1);
        self.partial[idx].extend_from_slice(&bytes[..take]);
    }

    /// Flushes unterminated stream text at the end of a call.
    pub(crate) fn finish(&mut self) {
        for (idx, (level, stream)) in [
            (LogLevel::Info, LogStream::Stdout),
            (LogLevel::Warn, LogStream::Stderr),
        ]
        .into_iter()
        .enumerate()
        {
            let rest = std::mem::take(&mut self.partial[idx]);
            if !rest.is_empty() {
                self.push(level, stream, &rest);
            }
        }
    }

    /// Bytes still kept before truncation.
    pub(crate) fn room(&self) -> usize {
        if self.truncated {
            0
        } else {
            self.limit.saturating_sub(self.used)
        }
    }

    /// The last error-level line the guest logged (SDK panic messages).
    pub(crate) fn last_error(&self) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find(|l| l.level == LogLevel::Error && l.stream == LogStream::Log)
            .map(|l| l.message.as_str())
    }
}

/// Everything a call's `Store` holds. Nothing here refers to host
/// resources: a guest can only reach what is copied in.
pub(crate) struct HostState {
    pub(crate) input: Vec<u8>,
    pub(crate) context: Vec<u8>,
    pub(crate) output: Option<Vec<u8>>,
    pub(crate) output_limit: usize,
    pub(crate) logs: LogBuffer,
    pub(crate) limiter: Limiter,
    pub(crate) deadline: Instant,
    /// Set by the caller to interrupt the call (checked between fuel slices).
    pub(crate) cancel: Option<crate::CancelToken>,
    pub(crate) memory: Option<Memory>,
    pub(crate) wasi: WasiState,
    /// A JavaScript function's source or bytecode, for the engine's
    /// `aifn_js` imports; `None` for every other module.
    pub(crate) script: Option<std::sync::Arc<[u8]>>,
}

/// Charges a host call its base fuel plus the bytes it copies.
pub(crate) fn charge(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    bytes: u64,
) -> wasmtime::Result<()> {
    pay(
        caller,
        call,
        HOST_CALL_FUEL + bytes.div_ceil(BYTES_PER_FUEL),
    )
}

fn pay(caller: &mut Caller<'_, HostState>, call: &'static str, cost: u64) -> wasmtime::Result<()> {
    let left = caller.get_fuel()?;
    if cost > left {
        caller.set_fuel(0)?;
        return Err(wasmtime::Error::new(HostTrap::OutOfFuel { call }));
    }
    caller.set_fuel(left - cost)?;
    Ok(())
}

/// The guest's memory: cached after instantiation, looked up by name while
/// the start function or `_initialize` runs.
pub(crate) fn memory(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
) -> wasmtime::Result<Memory> {
    if let Some(m) = caller.data().memory {
        return Ok(m);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::new(HostTrap::NoMemory { call })),
    }
}

/// Checks `ptr..ptr+len` against a memory of `size` bytes. The pointer and
/// length are the guest's i32 values read as unsigned.
pub(crate) fn range(
    call: &'static str,
    ptr: i32,
    len: u64,
    size: usize,
) -> wasmtime::Result<std::ops::Range<usize>> {
    let start = u64::from(ptr as u32);
    let end = start.checked_add(len);
    match end {
        Some(end) if end <= size as u64 => Ok(start as usize..end as usize),
        _ => Err(wasmtime::Error::new(HostTrap::OutOfBounds {
            call,
            ptr: start,
            len,
            size: size as u64,
        })),
    }
}

/// A guest length argument: negative values are out of bounds.
pub(crate) fn length(call: &'static str, ptr: i32, len: i32) -> wasmtime::Result<u64> {
    u64::try_from(len).map_err(|_| {
        wasmtime::Error::new(HostTrap::OutOfBounds {
            call,
            ptr: u64::from(ptr as u32),
            len: len as u64,
            size: 0,
        })
    })
}

/// Copies guest bytes out: bounds first, then fuel for the bytes, then
/// the copy, so a bad pointer always traps and nothing is copied unpaid.
pub(crate) fn read_guest(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    ptr: i32,
    len: u64,
) -> wasmtime::Result<Vec<u8>> {
    let mem = memory(caller, call)?;
    let r = range(call, ptr, len, mem.data_size(&*caller))?;
    pay(caller, call, len.div_ceil(BYTES_PER_FUEL))?;
    Ok(mem.data(&*caller)[r].to_vec())
}

/// Copies bytes into guest memory: bounds, fuel, copy.
pub(crate) fn write_guest(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let mem = memory(caller, call)?;
    let r = range(call, ptr, bytes.len() as u64, mem.data_size(&*caller))?;
    pay(caller, call, (bytes.len() as u64).div_ceil(BYTES_PER_FUEL))?;
    mem.data_mut(&mut *caller)[r].copy_from_slice(bytes);
    Ok(())
}

/// Checks a guest range without copying.
pub(crate) fn check_range(
    caller: &mut Caller<'_, HostState>,
    call: &'static str,
    ptr: i32,
    len: u64,
) -> wasmtime::Result<()> {
    let mem = memory(caller, call)?;
    range(call, ptr, len, mem.data_size(&*caller)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_budget_truncates_once_with_a_marker() {
        let mut b = LogBuffer::new(10);
        b.push(LogLevel::Info, LogStream::Log, b"12345");
        b.push(LogLevel::Info, LogStream::Log, b"1234567890");
        b.push(LogLevel::Info, LogStream::Log, b"more");
        let msgs: Vec<_> = b.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(msgs, ["12345", "12345", TRUNCATION_MARKER]);
    }

    #[test]
    fn streams_split_at_newlines_and_flush_the_rest() {
        let mut b = LogBuffer::new(100);
        b.push_stream(false, b"hello\nwor");
        b.push_stream(false, b"ld\nbye");
        b.push_stream(true, b"oops\n");
        b.finish();
        let msgs: Vec<_> = b
            .lines
            .iter()
            .map(|l| (l.stream, l.message.as_str()))
            .collect();
        assert_eq!(
            msgs,
            [
                (LogStream::Stdout, "hello"),
                (LogStream::Stdout, "world"),
                (LogStream::Stderr, "oops"),
                (LogStream::Stdout, "bye")
            ]
        );
    }

    #[test]
    fn ranges_are_checked_without_overflow() {
        assert!(range("t", 0, 10, 10).is_ok());
        assert!(range("t", 1, 10, 10).is_err());
        assert!(range("t", -1, 1, 65536).is_err());
        assert!(range("t", i32::MAX, u64::MAX, 65536).is_err());
        assert!(length("t", 0, -1).is_err());
    }
}
