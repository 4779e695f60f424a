//! A JavaScript function's loaded heap: the parts of the engine's memory
//! that reading its bytecode changed (`aifn_js_load`), kept once per
//! function. Each call's fresh instance of the engine's snapshot starts
//! from them instead of reading the bytecode again, which is most of a
//! small function's work. Top-level code still runs in every call.

use wasmparser::{Operator, Parser, Payload};
use wasmtime::{Memory, Store};

use crate::host::HostState;

/// The granularity of the image. A call's write faults in whole OS pages
/// anyway, but what reading bytecode changes is scattered over the heap a
/// few bytes at a time, so small chunks keep the image (held per function)
/// small.
const CHUNK: usize = 256;

/// A heap larger than this is not kept (calls then read the bytecode
/// themselves), so the cache of loaded functions stays bounded.
pub(crate) const MAX_HEAP_BYTES: usize = 1 << 20;

const WASM_PAGE: usize = 65536;

/// Where the engine's shadow stack starts (it grows down from there): the
/// initial value of its first global, the stack pointer; 0 if it has none.
pub(crate) fn stack_top(engine: &[u8]) -> usize {
    for payload in Parser::new(0).parse_all(engine) {
        let Ok(Payload::GlobalSection(globals)) = payload else {
            continue;
        };
        let Some(Ok(global)) = globals.into_iter().next() else {
            return 0;
        };
        let mut ops = global.init_expr.get_operators_reader();
        return match ops.read() {
            Ok(Operator::I32Const { value }) if global.ty.mutable => {
                usize::try_from(value).unwrap_or(0)
            }
            _ => 0,
        };
    }
    0
}

/// The changed chunks, as runs of consecutive chunks.
pub(crate) struct HeapImage {
    /// The memory's size after loading, in bytes.
    size: usize,
    runs: Vec<(usize, Box<[u8]>)>,
}

impl HeapImage {
    /// The chunks of `after` that differ from `before` (the memory right
    /// after instantiation; memory past its end was zero), at or above
    /// `stack_top`: the shadow stack below it holds only dead frames once
    /// the load returned.
    pub(crate) fn diff(before: &[u8], after: &[u8], stack_top: usize) -> HeapImage {
        let mut runs: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, page) in after.chunks(CHUNK).enumerate() {
            let at = i * CHUNK;
            if at + page.len() <= stack_top {
                continue;
            }
            let changed = match before.get(at..(at + page.len()).min(before.len())) {
                Some(old) if old.len() == page.len() => old != page,
                _ => page.iter().any(|b| *b != 0),
            };
            if !changed {
                continue;
            }
            match runs.last_mut() {
                Some((start, bytes)) if *start + bytes.len() == at => bytes.extend_from_slice(page),
                _ => runs.push((at, page.to_vec())),
            }
        }
        HeapImage {
            size: after.len(),
            runs: runs
                .into_iter()
                .map(|(at, bytes)| (at, bytes.into_boxed_slice()))
                .collect(),
        }
    }

    /// The bytes kept.
    pub(crate) fn bytes(&self) -> usize {
        self.runs.iter().map(|(_, b)| b.len()).sum()
    }

    /// Grows `memory` to the loaded size (under the store's limiter) and
    /// writes the changed chunks.
    pub(crate) fn apply(
        &self,
        store: &mut Store<HostState>,
        memory: Memory,
    ) -> wasmtime::Result<()> {
        let current = memory.data_size(&*store);
        if self.size > current {
            let pages = (self.size - current).div_ceil(WASM_PAGE);
            memory.grow(&mut *store, pages as u64)?;
        }
        let data = memory.data_mut(&mut *store);
        for (at, bytes) in &self.runs {
            data.get_mut(*at..*at + bytes.len())
                .ok_or_else(|| wasmtime::Error::msg("a loaded heap chunk lies past the memory"))?
                .copy_from_slice(bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, HeapImage};

    #[test]
    fn only_changed_chunks_are_kept_in_runs() {
        let before = vec![0u8; 8 * CHUNK];
        let mut after = before.clone();
        after[CHUNK + 1] = 1;
        after[2 * CHUNK] = 2;
        after[5 * CHUNK + 7] = 3;
        // Grown past the old end: a non-zero chunk is kept, a zero one not.
        after.resize(12 * CHUNK, 0);
        after[10 * CHUNK] = 4;
        let image = HeapImage::diff(&before, &after, 0);
        let starts: Vec<usize> = image.runs.iter().map(|(at, _)| *at).collect();
        assert_eq!(starts, [CHUNK, 5 * CHUNK, 10 * CHUNK]);
        assert_eq!(image.bytes(), 4 * CHUNK);
        assert_eq!(image.size, 12 * CHUNK);
        assert!(HeapImage::diff(&before, &before, 0).runs.is_empty());
        // Chunks wholly below the stack's top are dead frames.
        let above = HeapImage::diff(&before, &after, 2 * CHUNK);
        let starts: Vec<usize> = above.runs.iter().map(|(at, _)| *at).collect();
        assert_eq!(starts, [2 * CHUNK, 5 * CHUNK, 10 * CHUNK]);
    }
}
