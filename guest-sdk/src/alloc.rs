//! A bump allocator, the SDK's global allocator on wasm32 (feature
//! `bump-alloc`, on by default).
//!
//! Why: every call runs in a fresh instance that is thrown away afterwards,
//! so memory never needs to be reused across calls. A bump allocator is a
//! few dozen instructions instead of dlmalloc's few kilobytes of code, and
//! each allocation costs less fuel. Measured on the example functions
//! (Rust 1.63, opt-level "s"): about 5 KiB less `.wasm` per function (e.g.
//! calculate_leave_days 101,150 bytes instead of 106,288 with dlmalloc) and
//! 8-16% less fuel per typical call; the price is a somewhat higher memory
//! peak (redact_pii on 100 KB of text: 1.70 MB instead of 1.44 MB). To limit waste within a call, the most recent
//! allocation is freed, grown and shrunk in place, which is the common
//! pattern of `Vec`/`String` growth and of temporary buffers.
//!
//! When not to use it: a function that allocates and frees a lot in a long
//! loop (its memory only grows, up to the `memory_bytes` limit, 64 MiB by
//! default). Such a function can turn the feature off
//! (`default-features = false`) and gets Rust's default dlmalloc.
//!
//! Memory comes from `memory.grow` above the memory the module starts with
//! (its data and stack). A refused grow makes the allocation fail: the
//! allocator logs `memory allocation failed: memory.grow refused` at level
//! error and Rust aborts; the host reports `memory_limit`.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::ptr;

const PAGE: usize = 65536;

struct Bump;

/// Next free byte and end of the memory owned by the allocator. The guest
/// is single-threaded (threads are refused by the host).
static mut NEXT: usize = 0;
static mut END: usize = 0;

/// Makes `[.., end)` available, growing the memory when needed.
unsafe fn reserve(end: usize) -> bool {
    if END == 0 {
        let top = wasm32::memory_size(0) * PAGE;
        NEXT = top;
        END = top;
    }
    if end <= END {
        return true;
    }
    let pages = (end - END + PAGE - 1) / PAGE;
    if wasm32::memory_grow(0, pages) == usize::MAX {
        return false;
    }
    END += pages * PAGE;
    true
}

/// Logs the failure (without allocating).
#[cold]
#[inline(never)]
fn report_failure() {
    crate::host::log(
        crate::log::Level::Error as i32,
        b"memory allocation failed: memory.grow refused",
    );
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if END == 0 && !reserve(0) {
            return ptr::null_mut();
        }
        let align = layout.align();
        let start = match NEXT.checked_add(align - 1) {
            Some(v) => v & !(align - 1),
            None => return ptr::null_mut(),
        };
        let end = match start.checked_add(layout.size()) {
            Some(v) => v,
            None => {
                report_failure();
                return ptr::null_mut();
            }
        };
        if !reserve(end) {
            report_failure();
            return ptr::null_mut();
        }
        NEXT = end;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the most recent allocation can be given back.
        if ptr as usize + layout.size() == NEXT {
            NEXT = ptr as usize;
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if ptr as usize + old == NEXT {
            // The most recent allocation grows or shrinks in place.
            let end = match (ptr as usize).checked_add(new_size) {
                Some(v) => v,
                None => return ptr::null_mut(),
            };
            if !reserve(end) {
                report_failure();
                return ptr::null_mut();
            }
            NEXT = end;
            return ptr;
        }
        if new_size <= old {
            return ptr;
        }
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            ptr::copy_nonoverlapping(ptr, new, old);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Bump = Bump;
