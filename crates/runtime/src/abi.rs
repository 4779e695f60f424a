//! ABI v1 host functions (module `aifn`), see docs/abi.md.

use aifn_types::{LogLevel, LogStream};
use wasmtime::{Caller, Linker};

use crate::host::{HostState, HostTrap, charge, check_range, length, read_guest, write_guest};
use crate::imports::{Sig, Ty};

/// The ABI's import module name.
pub(crate) const MODULE: &str = "aifn";

/// Every `aifn` import a guest may use, with its exact signature.
pub(crate) const FUNCS: &[(&str, Sig)] = &[
    ("input_len", Sig::new(&[], &[Ty::I32])),
    ("input_read", Sig::new(&[Ty::I32], &[])),
    ("context_len", Sig::new(&[], &[Ty::I32])),
    ("context_read", Sig::new(&[Ty::I32], &[])),
    ("output_write", Sig::new(&[Ty::I32, Ty::I32], &[])),
    ("log", Sig::new(&[Ty::I32, Ty::I32, Ty::I32], &[])),
];

/// The engine-only import module: the JavaScript function's source (when
/// compiling) or bytecode (when calling). Refused for uploaded modules.
pub(crate) const SCRIPT_MODULE: &str = "aifn_js";

/// The `aifn_js` imports.
pub(crate) const SCRIPT_FUNCS: &[(&str, Sig)] = &[
    ("script_len", Sig::new(&[], &[Ty::I32])),
    ("script_read", Sig::new(&[Ty::I32], &[])),
];

fn len_i32(n: usize) -> i32 {
    // Inputs and contexts are capped far below 2 GiB.
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "input_len",
        |mut c: Caller<'_, HostState>| -> wasmtime::Result<i32> {
            charge(&mut c, "input_len", 0)?;
            Ok(len_i32(c.data().input.len()))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "input_read",
        |mut c: Caller<'_, HostState>, dst: i32| -> wasmtime::Result<()> {
            charge(&mut c, "input_read", 0)?;
            let input = std::mem::take(&mut c.data_mut().input);
            let r = write_guest(&mut c, "input_read", dst, &input);
            c.data_mut().input = input;
            r
        },
    )?;
    linker.func_wrap(
        SCRIPT_MODULE,
        "script_len",
        |mut c: Caller<'_, HostState>| -> wasmtime::Result<i32> {
            charge(&mut c, "script_len", 0)?;
            Ok(len_i32(c.data().script.as_ref().map_or(0, |s| s.len())))
        },
    )?;
    linker.func_wrap(
        SCRIPT_MODULE,
        "script_read",
        |mut c: Caller<'_, HostState>, dst: i32| -> wasmtime::Result<()> {
            charge(&mut c, "script_read", 0)?;
            let script = c.data().script.clone().unwrap_or_else(|| Vec::new().into());
            write_guest(&mut c, "script_read", dst, &script)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "context_len",
        |mut c: Caller<'_, HostState>| -> wasmtime::Result<i32> {
            charge(&mut c, "context_len", 0)?;
            Ok(len_i32(c.data().context.len()))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "context_read",
        |mut c: Caller<'_, HostState>, dst: i32| -> wasmtime::Result<()> {
            charge(&mut c, "context_read", 0)?;
            let ctx = std::mem::take(&mut c.data_mut().context);
            let r = write_guest(&mut c, "context_read", dst, &ctx);
            c.data_mut().context = ctx;
            r
        },
    )?;
    linker.func_wrap(
        MODULE,
        "output_write",
        |mut c: Caller<'_, HostState>, src: i32, len: i32| -> wasmtime::Result<()> {
            let len = length("output_write", src, len)?;
            let limit = c.data().output_limit as u64;
            if len > limit {
                return Err(wasmtime::Error::new(HostTrap::OutputTooLarge {
                    len,
                    limit,
                }));
            }
            charge(&mut c, "output_write", 0)?;
            let bytes = read_guest(&mut c, "output_write", src, len)?;
            c.data_mut().output = Some(bytes);
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "log",
        |mut c: Caller<'_, HostState>, level: i32, src: i32, len: i32| -> wasmtime::Result<()> {
            let len = length("log", src, len)?;
            charge(&mut c, "log", 0)?;
            // The whole range must be valid; only what the budget keeps
            // (plus one byte, to mark truncation) is copied and paid for.
            check_range(&mut c, "log", src, len)?;
            let keep = len.min(c.data().logs.room() as u64 + 1);
            let bytes = read_guest(&mut c, "log", src, keep)?;
            c.data_mut()
                .logs
                .push(LogLevel::from_abi(level), LogStream::Log, &bytes);
            Ok(())
        },
    )?;
    Ok(())
}
