//! The module's allocator: inside a `validate` call, memory comes from a per-call arena.
//!
//! Why: a call allocates hundreds of small objects (the pod's JSON tree, the sidecar,
//! the answer) and frees them all at its end; dlmalloc's bookkeeping for that cost a
//! quarter of the call. In the arena, `alloc` bumps a pointer and `free` does nothing;
//! the next call starts again from the arena's beginning, because waPC has copied the
//! previous answer out by then. Outside a call (`wapc_init`, `validate_settings`, and
//! whatever [`outside`] runs, such as the settings cache) the system allocator serves
//! as before, and memory from there is never put in the arena.
//!
//! Only the wasm module uses it (one thread, so its cells need no locking); native
//! builds keep the system allocator, and the tests below drive an [`Arena`] directly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::{self, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::Relaxed};

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("the per-call arena assumes a single-threaded module");

/// The first chunk's size; a call that needs more adds chunks of twice the size, and
/// the next call starts with one chunk as large as all of them together.
const FIRST_CHUNK: usize = 64 * 1024;

/// A chunk of arena memory from the system allocator; its header sits at its start.
#[repr(C, align(16))]
struct Chunk {
    /// The chunk taken before this one, in this call.
    previous: *mut Chunk,
    /// The chunk's size, header included.
    size: usize,
}

const HEADER: usize = std::mem::size_of::<Chunk>();

pub struct Arena {
    active: AtomicBool,
    /// The newest chunk; older chunks of the same call hang off it.
    chunk: AtomicPtr<Chunk>,
    /// The next free byte of the newest chunk, and its end.
    next: AtomicUsize,
    end: AtomicUsize,
    /// The newest allocation, which `realloc` may grow in place.
    last: AtomicUsize,
}

fn align_up(at: usize, align: usize) -> Option<usize> {
    Some(at.checked_add(align - 1)? & !(align - 1))
}

fn chunk_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, std::mem::align_of::<Chunk>()).ok()
}

impl Arena {
    pub const fn new() -> Self {
        Arena {
            active: AtomicBool::new(false),
            chunk: AtomicPtr::new(null_mut()),
            next: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            last: AtomicUsize::new(0),
        }
    }

    /// Starts a call: everything the previous call took is free again.
    pub fn begin(&self) {
        // SAFETY: the chunks on the list came from `System` with `chunk_layout`, and
        // nothing of the previous call is alive (see the module's comment).
        unsafe { self.reset() };
        self.active.store(true, Relaxed);
    }

    /// Ends a call: allocations go to the system allocator again. What the call took
    /// stays readable until the next `begin`.
    pub fn end(&self) {
        self.active.store(false, Relaxed);
    }

    fn is_active(&self) -> bool {
        self.active.load(Relaxed)
    }

    fn call<T>(&self, f: impl FnOnce() -> T) -> T {
        self.begin();
        let answer = f();
        self.end();
        answer
    }

    fn outside<T>(&self, f: impl FnOnce() -> T) -> T {
        let was = self.is_active();
        self.end();
        let out = f();
        self.active.store(was, Relaxed);
        out
    }

    /// Keeps one chunk, as large as the last call's chunks together, and empties it.
    unsafe fn reset(&self) {
        let chunk = self.chunk.load(Relaxed);
        if chunk.is_null() {
            return;
        }
        if (*chunk).previous.is_null() {
            self.start(chunk);
        } else {
            let total = self.release_chunks();
            self.take_chunk(total);
        }
    }

    /// Gives every chunk back to the system, leaving none to allocate from; returns
    /// their total size.
    unsafe fn release_chunks(&self) -> usize {
        self.next.store(0, Relaxed);
        self.end.store(0, Relaxed);
        self.last.store(0, Relaxed);
        let mut total = 0usize;
        let mut chunk = self.chunk.swap(null_mut(), Relaxed);
        while !chunk.is_null() {
            let Chunk { previous, size } = ptr::read(chunk);
            total = total.saturating_add(size);
            if let Some(layout) = chunk_layout(size) {
                System.dealloc(chunk.cast(), layout);
            }
            chunk = previous;
        }
        total
    }

    /// Allocates from the start of `chunk`, the newest.
    unsafe fn start(&self, chunk: *mut Chunk) {
        self.next.store(chunk as usize + HEADER, Relaxed);
        self.end.store(chunk as usize + (*chunk).size, Relaxed);
        // No allocation of this chunk yet that `realloc` could grow in place.
        self.last.store(0, Relaxed);
    }

    /// A new chunk of `size` bytes from the system, made the newest; null if there is
    /// no memory.
    unsafe fn take_chunk(&self, size: usize) -> *mut Chunk {
        let Some(layout) = chunk_layout(size.max(FIRST_CHUNK)) else {
            return null_mut();
        };
        let chunk = System.alloc(layout).cast::<Chunk>();
        if chunk.is_null() {
            return null_mut();
        }
        chunk.write(Chunk {
            previous: self.chunk.load(Relaxed),
            size: layout.size(),
        });
        self.chunk.store(chunk, Relaxed);
        self.start(chunk);
        chunk
    }

    /// Whether `p` is arena memory.
    fn owns(&self, p: *mut u8) -> bool {
        let p = p as usize;
        let mut chunk = self.chunk.load(Relaxed);
        while !chunk.is_null() {
            // SAFETY: every chunk on the list is live and starts with its header.
            let Chunk { previous, size } = unsafe { ptr::read(chunk) };
            let start = chunk as usize;
            if p > start && p < start + size {
                return true;
            }
            chunk = previous;
        }
        false
    }

    /// The next `layout` in the newest chunk, if it fits.
    #[inline(always)]
    fn fit(&self, layout: Layout) -> Option<usize> {
        // At least one byte, so that every arena pointer lies inside its chunk.
        let size = layout.size().max(1);
        let at = align_up(self.next.load(Relaxed), layout.align())?;
        let stop = at.checked_add(size)?;
        if stop > self.end.load(Relaxed) {
            return None;
        }
        self.next.store(stop, Relaxed);
        self.last.store(at, Relaxed);
        Some(at)
    }

    /// Memory from the system outside a call, or from a new chunk.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slowly(&self, layout: Layout) -> *mut u8 {
        if !self.is_active() {
            return System.alloc(layout);
        }
        let newest = self.chunk.load(Relaxed);
        let doubled = if newest.is_null() {
            0
        } else {
            (*newest).size.saturating_mul(2)
        };
        let needed = layout.size().saturating_add(layout.align() + HEADER);
        if self.take_chunk(doubled.max(needed)).is_null() {
            return null_mut();
        }
        self.fit(layout).map_or(null_mut(), |at| at as *mut u8)
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: as in `reset`; no allocation outlives the arena it came from.
        unsafe { self.release_chunks() };
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

// Only the fast path of `alloc` is inlined at the allocation sites (26 KB of module for
// 12k fewer instructions per call); the rest is not worth its size.
// SAFETY: `alloc` hands out disjoint, aligned ranges of live chunks; arena memory is
// never given to `System.dealloc` except through `reset`, between calls.
unsafe impl GlobalAlloc for Arena {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.is_active() {
            if let Some(at) = self.fit(layout) {
                return at as *mut u8;
            }
        }
        self.alloc_slowly(layout)
    }

    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !self.owns(p) {
            System.dealloc(p, layout);
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(p) {
            return System.realloc(p, layout, new_size);
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return null_mut();
        };
        // The newest allocation grows (or shrinks) where it is: a growing answer buffer
        // is not copied at each doubling.
        if self.is_active() && p as usize == self.last.load(Relaxed) {
            if let Some(stop) = (p as usize).checked_add(new_size) {
                if stop <= self.end.load(Relaxed) {
                    self.next.store(stop, Relaxed);
                    return p;
                }
            }
        }
        let moved = self.alloc(new_layout);
        if !moved.is_null() {
            ptr::copy_nonoverlapping(p, moved, layout.size().min(new_size));
        }
        moved
    }
}

/// The allocator of the wasm module.
#[cfg_attr(target_arch = "wasm32", global_allocator)]
static ARENA: Arena = Arena::new();

/// Runs one call of an export in the arena. The answer it returns stays valid until
/// the next call.
pub fn call<T>(f: impl FnOnce() -> T) -> T {
    ARENA.call(f)
}

/// Runs `f` with the system allocator, for what must outlive the call (the settings
/// cache).
pub fn outside<T>(f: impl FnOnce() -> T) -> T {
    ARENA.outside(f)
}

/// Frees a call's objects: in the module, the next call's `begin` does it at once, so
/// walking them to free each would be wasted work.
pub fn discard<T>(value: T) {
    if cfg!(target_arch = "wasm32") {
        std::mem::forget(value);
    } else {
        drop(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Writes `n` distinct bytes at `p` and checks they read back.
    unsafe fn fill(p: *mut u8, n: usize, seed: u8) {
        for i in 0..n {
            p.add(i).write(seed.wrapping_add(i as u8));
        }
    }

    unsafe fn holds(p: *mut u8, n: usize, seed: u8) -> bool {
        (0..n).all(|i| p.add(i).read() == seed.wrapping_add(i as u8))
    }

    #[rstest]
    #[case::bytes(1, 1)]
    #[case::words(24, 8)]
    #[case::over_aligned(100, 256)]
    #[case::larger_than_a_chunk(3 * FIRST_CHUNK, 16)]
    fn allocations_in_a_call_are_aligned_disjoint_and_owned(
        #[case] size: usize,
        #[case] align: usize,
    ) {
        let arena = Arena::new();
        arena.begin();
        unsafe {
            let ptrs: Vec<*mut u8> = (0..5).map(|_| arena.alloc(layout(size, align))).collect();
            for (i, p) in ptrs.iter().enumerate() {
                assert!(!p.is_null());
                assert_eq!(*p as usize % align, 0);
                assert!(arena.owns(*p));
                fill(*p, size, i as u8);
            }
            for (i, p) in ptrs.iter().enumerate() {
                assert!(holds(*p, size, i as u8), "allocation {i} was overwritten");
            }
        }
        arena.end();
    }

    #[test]
    fn outside_a_call_memory_is_the_systems_and_is_freed_there() {
        let arena = Arena::new();
        unsafe {
            let p = arena.alloc(layout(32, 8));
            assert!(!arena.owns(p));
            arena.begin();
            // Freed during a call, system memory still goes back to the system.
            arena.dealloc(p, layout(32, 8));
            let q = arena.alloc(layout(32, 8));
            assert!(arena.owns(q));
            arena.end();
            let r = arena.alloc(layout(32, 8));
            assert!(!arena.owns(r));
            arena.dealloc(r, layout(32, 8));
        }
    }

    #[test]
    fn the_newest_allocation_grows_in_place_and_others_move_with_their_bytes() {
        let arena = Arena::new();
        arena.begin();
        unsafe {
            let a = arena.alloc(layout(16, 8));
            fill(a, 16, 1);
            let b = arena.alloc(layout(16, 8));
            fill(b, 16, 2);
            let grown = arena.realloc(b, layout(16, 8), 1000);
            assert_eq!(grown, b, "the newest allocation grows where it is");
            let moved = arena.realloc(a, layout(16, 8), 64);
            assert_ne!(moved, a);
            assert!(holds(moved, 16, 1));
            assert!(holds(grown, 16, 2));
            // Past the chunk's end, the newest allocation moves too.
            let huge = arena.realloc(moved, layout(64, 8), 2 * FIRST_CHUNK);
            assert!(holds(huge, 16, 1));
        }
        arena.end();
    }

    #[test]
    fn system_memory_reallocated_in_a_call_stays_the_systems() {
        let arena = Arena::new();
        unsafe {
            let p = arena.alloc(layout(8, 8));
            fill(p, 8, 7);
            arena.begin();
            let q = arena.realloc(p, layout(8, 8), 4096);
            assert!(!arena.owns(q));
            assert!(holds(q, 8, 7));
            arena.end();
            arena.dealloc(q, layout(4096, 8));
        }
    }

    #[test]
    fn arena_memory_reallocated_after_the_call_leaves_the_arena() {
        let arena = Arena::new();
        unsafe {
            arena.begin();
            let p = arena.alloc(layout(8, 8));
            fill(p, 8, 3);
            arena.end();
            let q = arena.realloc(p, layout(8, 8), 64);
            assert!(!arena.owns(q));
            assert!(holds(q, 8, 3));
            arena.dealloc(q, layout(64, 8));
        }
    }

    #[test]
    fn the_next_call_reuses_one_chunk_as_large_as_the_last_calls_chunks() {
        let arena = Arena::new();
        arena.begin();
        for _ in 0..10 {
            unsafe { arena.alloc(layout(FIRST_CHUNK / 2, 8)) };
        }
        assert!(!unsafe { (*arena.chunk.load(Relaxed)).previous }.is_null());
        arena.end();
        arena.begin();
        let chunk = arena.chunk.load(Relaxed);
        unsafe {
            assert!((*chunk).previous.is_null(), "one chunk after the reset");
            assert!((*chunk).size >= 5 * FIRST_CHUNK, "{}", (*chunk).size);
            for _ in 0..9 {
                arena.alloc(layout(FIRST_CHUNK / 2, 8));
            }
            assert!((*arena.chunk.load(Relaxed)).previous.is_null(), "it fits");
        }
        arena.end();
    }

    #[test]
    fn outside_runs_with_the_system_allocator_and_restores_the_call() {
        let arena = Arena::new();
        let kept = arena.call(|| {
            let p = unsafe { arena.alloc(layout(8, 8)) };
            assert!(arena.owns(p));
            let kept = arena.outside(|| unsafe { arena.alloc(layout(8, 8)) });
            assert!(!arena.owns(kept));
            assert!(arena.owns(unsafe { arena.alloc(layout(8, 8)) }));
            kept
        });
        assert!(!arena.is_active());
        unsafe { arena.dealloc(kept, layout(8, 8)) };
    }
}
