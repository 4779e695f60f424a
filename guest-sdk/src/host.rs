//! The ABI v1 host calls (module `aifn`). On `wasm32` these are the real
//! imports; elsewhere a per-thread stand-in records what a call did, so the
//! SDK and functions built on it can be tested with `cargo test`.

#[cfg(target_arch = "wasm32")]
mod imp {
    mod sys {
        #[link(wasm_import_module = "aifn")]
        extern "C" {
            pub(super) fn input_len() -> i32;
            pub(super) fn input_read(dst: *mut u8);
            pub(super) fn context_len() -> i32;
            pub(super) fn context_read(dst: *mut u8);
            pub(super) fn output_write(src: *const u8, len: i32);
            pub(super) fn log(level: i32, src: *const u8, len: i32);
        }
    }

    fn read(len: i32, read: unsafe extern "C" fn(*mut u8)) -> Vec<u8> {
        // The ABI's lengths are unsigned i32s.
        let n = len as u32 as usize;
        let mut buf: Vec<u8> = Vec::with_capacity(n);
        if n > 0 {
            // SAFETY: the host writes exactly `n` bytes at `dst`, inside the
            // `n` bytes of capacity just reserved.
            unsafe {
                read(buf.as_mut_ptr());
                buf.set_len(n);
            }
        }
        buf
    }

    pub(crate) fn input() -> Vec<u8> {
        // SAFETY: host calls without pointer arguments.
        read(unsafe { sys::input_len() }, sys::input_read)
    }

    pub(crate) fn context() -> Vec<u8> {
        // SAFETY: as above.
        read(unsafe { sys::context_len() }, sys::context_read)
    }

    pub(crate) fn output_write(bytes: &[u8]) {
        // SAFETY: the host only reads `bytes`; the length fits in i32
        // because wasm32 memory is at most 4 GiB and the host caps output
        // far below 2 GiB (a larger length reads as negative and traps).
        unsafe { sys::output_write(bytes.as_ptr(), bytes.len() as i32) }
    }

    pub(crate) fn log(level: i32, bytes: &[u8]) {
        // SAFETY: the host only reads `bytes`.
        unsafe { sys::log(level, bytes.as_ptr(), bytes.len() as i32) }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;

    /// What one simulated call saw and did.
    #[derive(Debug, Default)]
    pub(crate) struct State {
        pub(crate) input: Vec<u8>,
        pub(crate) context: Vec<u8>,
        pub(crate) output: Option<Vec<u8>>,
        pub(crate) logs: Vec<(i32, String)>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    /// Replaces this thread's state, returning the previous one.
    pub(crate) fn swap(state: State) -> State {
        STATE.with(|s| std::mem::replace(&mut *s.borrow_mut(), state))
    }

    pub(crate) fn input() -> Vec<u8> {
        STATE.with(|s| s.borrow().input.clone())
    }

    pub(crate) fn context() -> Vec<u8> {
        STATE.with(|s| s.borrow().context.clone())
    }

    pub(crate) fn output_write(bytes: &[u8]) {
        STATE.with(|s| s.borrow_mut().output = Some(bytes.to_vec()))
    }

    pub(crate) fn log(level: i32, bytes: &[u8]) {
        let line = String::from_utf8_lossy(bytes).into_owned();
        STATE.with(|s| s.borrow_mut().logs.push((level, line)))
    }
}

pub(crate) use imp::*;
