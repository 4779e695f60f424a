//! Test-only guest exercising SDK behaviours through the real runtime:
//! logging, the typed context, input errors, function errors, panics and
//! allocation failure. Not an example function; `tests/functions` uses it.

use aifn_guest::{Context, FunctionError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    action: Action,
    /// Text for `echo`, `fail`, `panic` and `log`.
    #[serde(default)]
    message: String,
    /// A typed field so invalid input can be tested (`count` must be a u32).
    #[serde(default)]
    count: u32,
    /// Bytes to allocate for `alloc`.
    #[serde(default)]
    bytes: u64,
}

#[derive(Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Action {
    /// Returns `message` and `count`.
    Echo,
    /// Returns the context.
    Context,
    /// Logs `message` at every level, then returns.
    Log,
    /// Returns a function error with `message`.
    Fail,
    /// Panics with `message`.
    Panic,
    /// Logs an error line, then panics: the trap message ends with the panic.
    LogThenPanic,
    /// Allocates and touches `bytes` bytes, returns their count.
    Alloc,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    Echo { message: String, count: u32 },
    Context(Context),
    Done { done: bool },
    Allocated { allocated: u64 },
}

fn probe(ctx: &Context, p: Probe) -> Result<Reply, FunctionError> {
    match p.action {
        Action::Echo => Ok(Reply::Echo {
            message: p.message,
            count: p.count,
        }),
        Action::Context => Ok(Reply::Context(ctx.clone())),
        Action::Log => {
            aifn_guest::log::trace(&p.message);
            aifn_guest::log::debug!("{} (debug)", p.message);
            aifn_guest::log::info!("{} (info)", p.message);
            aifn_guest::log::warn!("{} (warn)", p.message);
            aifn_guest::log::error!("{} (error)", p.message);
            Ok(Reply::Done { done: true })
        }
        Action::Fail => Err(FunctionError::new(p.message)),
        Action::Panic => panic!("{}", p.message),
        Action::LogThenPanic => {
            aifn_guest::log::error("about to panic");
            panic!("{} (count {})", p.message, p.count)
        }
        Action::Alloc => {
            let mut v = vec![0u8; p.bytes as usize];
            // Touch every page so the memory is really used.
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            let touched = v.iter().filter(|b| **b == 1).count() as u64;
            aifn_guest::log::info!("touched {} pages", touched);
            Ok(Reply::Allocated {
                allocated: v.len() as u64,
            })
        }
    }
}

aifn_guest::export!(probe);
