//! Zero-capability WASI preview 1 (`wasi_snapshot_preview1`).
//!
//! It exists so that ordinary wasm32-wasi toolchain output links; it grants
//! nothing. No files (no preopens), no sockets, no args, no environment,
//! empty stdin, stdout/stderr into the bounded logs, every clock reads the
//! invocation's start time, randomness is a ChaCha20 stream seeded from the
//! execution id, and nothing ever blocks or sleeps.

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use wasmtime::{Caller, Linker};

use crate::host::{
    HostState, HostTrap, charge, check_range, memory, range, read_guest, write_guest,
};
use crate::imports::{Sig, Ty};

pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ENOTDIR: i32 = 54;
const ENOTCAPABLE: i32 = 76;
const ESPIPE: i32 = 70;

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;
const FDFLAG_APPEND: u16 = 1;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const EVENT_FD_READWRITE_HANGUP: u16 = 1;
const SUBSCRIPTION_SIZE: u64 = 48;
const EVENT_SIZE: usize = 32;

const I: Ty = Ty::I32;
const L: Ty = Ty::I64;

/// Every WASI preview 1 function, with its exact signature.
pub(crate) const FUNCS: &[(&str, Sig)] = &[
    ("args_get", Sig::new(&[I, I], &[I])),
    ("args_sizes_get", Sig::new(&[I, I], &[I])),
    ("environ_get", Sig::new(&[I, I], &[I])),
    ("environ_sizes_get", Sig::new(&[I, I], &[I])),
    ("clock_res_get", Sig::new(&[I, I], &[I])),
    ("clock_time_get", Sig::new(&[I, L, I], &[I])),
    ("fd_advise", Sig::new(&[I, L, L, I], &[I])),
    ("fd_allocate", Sig::new(&[I, L, L], &[I])),
    ("fd_close", Sig::new(&[I], &[I])),
    ("fd_datasync", Sig::new(&[I], &[I])),
    ("fd_fdstat_get", Sig::new(&[I, I], &[I])),
    ("fd_fdstat_set_flags", Sig::new(&[I, I], &[I])),
    ("fd_fdstat_set_rights", Sig::new(&[I, L, L], &[I])),
    ("fd_filestat_get", Sig::new(&[I, I], &[I])),
    ("fd_filestat_set_size", Sig::new(&[I, L], &[I])),
    ("fd_filestat_set_times", Sig::new(&[I, L, L, I], &[I])),
    ("fd_pread", Sig::new(&[I, I, I, L, I], &[I])),
    ("fd_prestat_get", Sig::new(&[I, I], &[I])),
    ("fd_prestat_dir_name", Sig::new(&[I, I, I], &[I])),
    ("fd_pwrite", Sig::new(&[I, I, I, L, I], &[I])),
    ("fd_read", Sig::new(&[I, I, I, I], &[I])),
    ("fd_readdir", Sig::new(&[I, I, I, L, I], &[I])),
    ("fd_renumber", Sig::new(&[I, I], &[I])),
    ("fd_seek", Sig::new(&[I, L, I, I], &[I])),
    ("fd_sync", Sig::new(&[I], &[I])),
    ("fd_tell", Sig::new(&[I, I], &[I])),
    ("fd_write", Sig::new(&[I, I, I, I], &[I])),
    ("path_create_directory", Sig::new(&[I, I, I], &[I])),
    ("path_filestat_get", Sig::new(&[I, I, I, I, I], &[I])),
    (
        "path_filestat_set_times",
        Sig::new(&[I, I, I, I, L, L, I], &[I]),
    ),
    ("path_link", Sig::new(&[I, I, I, I, I, I, I], &[I])),
    ("path_open", Sig::new(&[I, I, I, I, I, L, L, I, I], &[I])),
    ("path_readlink", Sig::new(&[I, I, I, I, I, I], &[I])),
    ("path_remove_directory", Sig::new(&[I, I, I], &[I])),
    ("path_rename", Sig::new(&[I, I, I, I, I, I], &[I])),
    ("path_symlink", Sig::new(&[I, I, I, I, I], &[I])),
    ("path_unlink_file", Sig::new(&[I, I, I], &[I])),
    ("poll_oneoff", Sig::new(&[I, I, I, I], &[I])),
    ("proc_exit", Sig::new(&[I], &[])),
    ("proc_raise", Sig::new(&[I], &[I])),
    ("sched_yield", Sig::new(&[], &[I])),
    ("random_get", Sig::new(&[I, I], &[I])),
    ("sock_accept", Sig::new(&[I, I, I], &[I])),
    ("sock_recv", Sig::new(&[I, I, I, I, I, I], &[I])),
    ("sock_send", Sig::new(&[I, I, I, I, I], &[I])),
    ("sock_shutdown", Sig::new(&[I, I], &[I])),
];

/// Per-call WASI state: the frozen clock and the seeded random stream.
pub(crate) struct WasiState {
    start_ns: u64,
    seed: [u8; 32],
    rng: Option<ChaCha20Rng>,
}

impl WasiState {
    pub(crate) fn new(start_ns: u64, execution_id: &str) -> WasiState {
        let mut h = Sha256::new();
        h.update(b"aifn wasi random v1\0");
        h.update(execution_id.as_bytes());
        WasiState {
            start_ns,
            seed: h.finalize().into(),
            rng: None,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let seed = self.seed;
        self.rng
            .get_or_insert_with(|| ChaCha20Rng::from_seed(seed))
            .fill_bytes(buf);
    }
}

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

/// The errno for an fd operation that only stdio fds could support.
fn fd_errno(fd: i32, stdio: i32) -> i32 {
    if is_stdio(fd) { stdio } else { EBADF }
}

fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the iovec array `iovs[..n]` as (ptr, len) pairs, bounds-checked.
fn iovecs(
    c: &mut Caller<'_, HostState>,
    call: &'static str,
    iovs: i32,
    n: i32,
) -> wasmtime::Result<Vec<(i32, u64)>> {
    let n = crate::host::length(call, iovs, n)?;
    let raw = read_guest(c, call, iovs, n * 8)?;
    Ok(raw
        .chunks_exact(8)
        .map(|v| (u32_at(v, 0) as i32, u64::from(u32_at(v, 4))))
        .collect())
}

/// Registers an always-refusing WASI function with the given arguments.
macro_rules! refuse {
    ($linker:expr, $name:literal, |$($arg:ident : $ty:ty),*| $errno:expr) => {
        $linker.func_wrap(MODULE, $name, |mut caller: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
            charge(&mut caller, $name, 0)?;
            Ok($errno)
        })?;
    };
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // Nothing to list: no args, no environment.
    for name in ["args_sizes_get", "environ_sizes_get"] {
        linker.func_wrap(
            MODULE,
            name,
            move |mut c: Caller<'_, HostState>, count: i32, size: i32| {
                charge(&mut c, name, 8)?;
                write_guest(&mut c, name, count, &0u32.to_le_bytes())?;
                write_guest(&mut c, name, size, &0u32.to_le_bytes())?;
                Ok(SUCCESS)
            },
        )?;
    }
    refuse!(linker, "args_get", |_a: i32, _b: i32| SUCCESS);
    refuse!(linker, "environ_get", |_a: i32, _b: i32| SUCCESS);

    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, HostState>, id: i32, out: i32| {
            charge(&mut c, "clock_res_get", 8)?;
            if !(0..=3).contains(&id) {
                return Ok(EINVAL);
            }
            write_guest(&mut c, "clock_res_get", out, &1_000u64.to_le_bytes())?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, HostState>, id: i32, _precision: i64, out: i32| {
            charge(&mut c, "clock_time_get", 8)?;
            if !(0..=3).contains(&id) {
                return Ok(EINVAL);
            }
            let now = c.data().wasi.start_ns;
            write_guest(&mut c, "clock_time_get", out, &now.to_le_bytes())?;
            Ok(SUCCESS)
        },
    )?;

    refuse!(linker, "fd_advise", |fd: i32, _o: i64, _l: i64, _a: i32| {
        fd_errno(fd, ESPIPE)
    });
    refuse!(linker, "fd_allocate", |fd: i32, _o: i64, _l: i64| fd_errno(
        fd,
        ENOTCAPABLE
    ));
    refuse!(linker, "fd_close", |fd: i32| fd_errno(fd, SUCCESS));
    refuse!(linker, "fd_datasync", |fd: i32| fd_errno(fd, EINVAL));
    refuse!(linker, "fd_sync", |fd: i32| fd_errno(fd, EINVAL));
    refuse!(linker, "fd_fdstat_set_flags", |fd: i32, _f: i32| fd_errno(
        fd,
        ENOTCAPABLE
    ));
    refuse!(
        linker,
        "fd_fdstat_set_rights",
        |fd: i32, _b: i64, _i: i64| fd_errno(fd, ENOTCAPABLE)
    );
    refuse!(linker, "fd_filestat_set_size", |fd: i32, _s: i64| fd_errno(
        fd,
        ENOTCAPABLE
    ));
    refuse!(
        linker,
        "fd_filestat_set_times",
        |fd: i32, _a: i64, _m: i64, _f: i32| fd_errno(fd, ENOTCAPABLE)
    );
    refuse!(
        linker,
        "fd_pread",
        |fd: i32, _i: i32, _n: i32, _o: i64, _r: i32| fd_errno(fd, ESPIPE)
    );
    refuse!(
        linker,
        "fd_pwrite",
        |fd: i32, _i: i32, _n: i32, _o: i64, _r: i32| fd_errno(fd, ESPIPE)
    );
    refuse!(linker, "fd_prestat_get", |_fd: i32, _b: i32| EBADF);
    refuse!(
        linker,
        "fd_prestat_dir_name",
        |_fd: i32, _p: i32, _l: i32| EBADF
    );
    refuse!(
        linker,
        "fd_readdir",
        |fd: i32, _b: i32, _l: i32, _cookie: i64, _u: i32| fd_errno(fd, ENOTDIR)
    );
    refuse!(linker, "fd_renumber", |fd: i32, _to: i32| fd_errno(
        fd,
        ENOTCAPABLE
    ));
    refuse!(linker, "fd_seek", |fd: i32, _o: i64, _w: i32, _r: i32| {
        fd_errno(fd, ESPIPE)
    });
    refuse!(linker, "fd_tell", |fd: i32, _r: i32| fd_errno(fd, ESPIPE));

    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, HostState>, fd: i32, out: i32| {
            charge(&mut c, "fd_fdstat_get", 24)?;
            if !is_stdio(fd) {
                return Ok(EBADF);
            }
            let mut stat = [0u8; 24];
            stat[0] = FILETYPE_CHARACTER_DEVICE;
            let (flags, rights) = if fd == 0 {
                (0, RIGHT_FD_READ)
            } else {
                (FDFLAG_APPEND, RIGHT_FD_WRITE)
            };
            put_u16(&mut stat, 2, flags);
            put_u64(&mut stat, 8, rights);
            write_guest(&mut c, "fd_fdstat_get", out, &stat)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut c: Caller<'_, HostState>, fd: i32, out: i32| {
            charge(&mut c, "fd_filestat_get", 64)?;
            if !is_stdio(fd) {
                return Ok(EBADF);
            }
            let mut stat = [0u8; 64];
            stat[16] = FILETYPE_CHARACTER_DEVICE;
            write_guest(&mut c, "fd_filestat_get", out, &stat)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, n: i32, nread: i32| {
            charge(&mut c, "fd_read", 0)?;
            if fd != 0 {
                return Ok(EBADF);
            }
            iovecs(&mut c, "fd_read", iovs, n)?;
            // Stdin is empty: end of file.
            write_guest(&mut c, "fd_read", nread, &0u32.to_le_bytes())?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, n: i32, nwritten: i32| {
            charge(&mut c, "fd_write", 0)?;
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let vecs = iovecs(&mut c, "fd_write", iovs, n)?;
            let mut total: u64 = 0;
            for (ptr, len) in vecs {
                let bytes = read_guest(&mut c, "fd_write", ptr, len)?;
                c.data_mut().logs.push_stream(fd == 2, &bytes);
                total += len;
            }
            let total = u32::try_from(total).unwrap_or(u32::MAX);
            write_guest(&mut c, "fd_write", nwritten, &total.to_le_bytes())?;
            Ok(SUCCESS)
        },
    )?;

    // No preopened directories: every path operation has no directory fd.
    refuse!(
        linker,
        "path_create_directory",
        |_fd: i32, _p: i32, _l: i32| EBADF
    );
    refuse!(
        linker,
        "path_filestat_get",
        |_fd: i32, _f: i32, _p: i32, _l: i32, _b: i32| EBADF
    );
    refuse!(
        linker,
        "path_filestat_set_times",
        |_fd: i32, _f: i32, _p: i32, _l: i32, _a: i64, _m: i64, _s: i32| EBADF
    );
    refuse!(
        linker,
        "path_link",
        |_a: i32, _b: i32, _x: i32, _d: i32, _e: i32, _f: i32, _g: i32| EBADF
    );
    refuse!(
        linker,
        "path_open",
        |_fd: i32, _d: i32, _p: i32, _l: i32, _o: i32, _rb: i64, _ri: i64, _f: i32, _r: i32| EBADF
    );
    refuse!(
        linker,
        "path_readlink",
        |_fd: i32, _p: i32, _l: i32, _b: i32, _bl: i32, _u: i32| EBADF
    );
    refuse!(
        linker,
        "path_remove_directory",
        |_fd: i32, _p: i32, _l: i32| EBADF
    );
    refuse!(
        linker,
        "path_rename",
        |_fd: i32, _p: i32, _l: i32, _nfd: i32, _np: i32, _nl: i32| EBADF
    );
    refuse!(
        linker,
        "path_symlink",
        |_p: i32, _l: i32, _fd: i32, _np: i32, _nl: i32| EBADF
    );
    refuse!(linker, "path_unlink_file", |_fd: i32, _p: i32, _l: i32| {
        EBADF
    });

    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut c: Caller<'_, HostState>, subs: i32, events: i32, n: i32, nevents: i32| {
            let count = crate::host::length("poll_oneoff", subs, n)?;
            if count == 0 {
                charge(&mut c, "poll_oneoff", 0)?;
                return Ok(EINVAL);
            }
            charge(&mut c, "poll_oneoff", 0)?;
            let raw = read_guest(&mut c, "poll_oneoff", subs, count * SUBSCRIPTION_SIZE)?;
            let mut out = Vec::with_capacity(raw.len() / 48 * EVENT_SIZE);
            // Every subscription is answered at once: a clock fires now, stdin
            // is at end of file, stdout/stderr are writable. The host never waits.
            for sub in raw.chunks_exact(SUBSCRIPTION_SIZE as usize) {
                let mut ev = [0u8; EVENT_SIZE];
                ev[..8].copy_from_slice(&sub[..8]);
                let tag = sub[8];
                let fd = u32_at(sub, 16) as i32;
                let (error, flags) = match tag {
                    t if t == EVENTTYPE_CLOCK => (SUCCESS, 0),
                    t if t == EVENTTYPE_FD_READ && fd == 0 => (SUCCESS, EVENT_FD_READWRITE_HANGUP),
                    t if t == EVENTTYPE_FD_WRITE && (fd == 1 || fd == 2) => (SUCCESS, 0),
                    t if t <= EVENTTYPE_FD_WRITE => (EBADF, 0),
                    _ => (EINVAL, 0),
                };
                put_u16(&mut ev, 8, error as u16);
                ev[10] = tag;
                put_u16(&mut ev, 24, flags);
                out.extend_from_slice(&ev);
            }
            write_guest(&mut c, "poll_oneoff", events, &out)?;
            let mut n_out = [0u8; 4];
            put_u32(&mut n_out, 0, count as u32);
            write_guest(&mut c, "poll_oneoff", nevents, &n_out)?;
            Ok(SUCCESS)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |mut c: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
            charge(&mut c, "proc_exit", 0)?;
            Err(wasmtime::Error::new(HostTrap::Exit(code)))
        },
    )?;
    refuse!(linker, "proc_raise", |_sig: i32| ENOSYS);
    linker.func_wrap(MODULE, "sched_yield", |mut c: Caller<'_, HostState>| {
        charge(&mut c, "sched_yield", 0)?;
        Ok(SUCCESS)
    })?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, HostState>, buf: i32, len: i32| {
            let len = crate::host::length("random_get", buf, len)?;
            check_range(&mut c, "random_get", buf, len)?;
            charge(&mut c, "random_get", len)?;
            let mem = memory(&mut c, "random_get")?;
            let (data, state) = mem.data_and_store_mut(&mut c);
            let r = range("random_get", buf, len, data.len())?;
            state.wasi.fill(&mut data[r]);
            Ok(SUCCESS)
        },
    )?;
    refuse!(linker, "sock_accept", |_fd: i32, _f: i32, _r: i32| {
        ENOTCAPABLE
    });
    refuse!(
        linker,
        "sock_recv",
        |_fd: i32, _a: i32, _b: i32, _x: i32, _d: i32, _e: i32| ENOTCAPABLE
    );
    refuse!(
        linker,
        "sock_send",
        |_fd: i32, _a: i32, _b: i32, _x: i32, _d: i32| ENOTCAPABLE
    );
    refuse!(linker, "sock_shutdown", |_fd: i32, _h: i32| ENOTCAPABLE);
    Ok(())
}
