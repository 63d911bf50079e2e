//! The module's allocator: inside a `validate` call, memory comes from a per-call arena.
//!
//! Why: a call allocates hundreds of small objects (the pod's JSON tree, the sidecar,
//! the answer) and frees them all at its end; dlmalloc's bookkeeping for that cost a
//! quarter of the call. In the arena, `alloc` bumps a pointer and `free` does nothing;
//! the next call starts again from the arena's beginning, because waPC has copied the
//! previous answer out by then. Outside a call (`wapc_init`, `validate_settings`, and
//! whatever [`outside`] runs, such as the settings cache) the backing allocator serves
//! as before, and memory from there is never put in the arena.
//!
//! The contract ([`call`]'s `# Safety`): nothing a call allocates is used after the next
//! call begins. A lazily initialised global first touched inside a call (a `OnceLock`, a
//! lazy `thread_local!`, stdout's buffer) breaks it; debug builds (and feature
//! `arena-poison`) poison the memory of a finished call so that such a global fails loudly
//! (`e2e-tests/runner/tests/one_instance.rs` on a module built with the feature) instead
//! of reading the previous call's bytes as if they were still its own.
//!
//! Only the wasm module uses it (one thread, so its cells need no locking); native
//! builds keep the system allocator, and the tests below drive an [`Arena`] directly,
//! over `System` or over an allocator that fails on demand. Its state is pointers, never
//! addresses cast back, so that miri checks it under `-Zmiri-strict-provenance`
//! (`scripts/miri.sh`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::{self, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering::Relaxed};

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("the per-call arena assumes a single-threaded module");

/// The first chunk's size; a call that needs more adds chunks of twice the size, and
/// the next call starts with one chunk as large as all of them together. Smaller under
/// miri, which interprets every byte the tests touch.
const FIRST_CHUNK: usize = if cfg!(miri) { 1024 } else { 64 * 1024 };

/// What debug builds write over a finished call's memory.
const POISON: u8 = 0xA5;

/// A chunk of arena memory from the backing allocator; its header sits at its start.
#[repr(C, align(16))]
struct Chunk {
    /// The chunk taken before this one, in this call.
    previous: *mut Chunk,
    /// The chunk's size, header included.
    size: usize,
}

const HEADER: usize = std::mem::size_of::<Chunk>();

pub struct Arena<A: GlobalAlloc = System> {
    backing: A,
    active: AtomicBool,
    /// The newest chunk; older chunks of the same call hang off it.
    chunk: AtomicPtr<Chunk>,
    /// The next free byte of the newest chunk, and its end; null without a chunk.
    next: AtomicPtr<u8>,
    end: AtomicPtr<u8>,
    /// The newest allocation, which `realloc` may grow in place; null when none.
    last: AtomicPtr<u8>,
}

fn align_up(at: usize, align: usize) -> Option<usize> {
    Some(at.checked_add(align - 1)? & !(align - 1))
}

fn chunk_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, std::mem::align_of::<Chunk>()).ok()
}

impl Arena<System> {
    pub const fn new() -> Self {
        Self::over(System)
    }
}

impl<A: GlobalAlloc> Arena<A> {
    /// An arena whose chunks, and whose memory outside a call, come from `backing`.
    pub const fn over(backing: A) -> Self {
        Arena {
            backing,
            active: AtomicBool::new(false),
            chunk: AtomicPtr::new(null_mut()),
            next: AtomicPtr::new(null_mut()),
            end: AtomicPtr::new(null_mut()),
            last: AtomicPtr::new(null_mut()),
        }
    }

    /// Starts a call: everything the previous call took is free again.
    ///
    /// # Safety
    /// Nothing allocated in the arena during a previous call is used again (read,
    /// written, freed or reallocated) after this: its memory is reused or given back.
    /// No call is under way (`call` checks it in debug builds).
    pub unsafe fn begin(&self) {
        // SAFETY: the chunks on the list came from `backing` with `chunk_layout`, and
        // the caller promises nothing in them is alive.
        unsafe { self.reset() };
        self.active.store(true, Relaxed);
    }

    /// Ends a call: allocations go to the backing allocator again. What the call took
    /// stays readable until the next `begin`.
    pub fn end(&self) {
        self.active.store(false, Relaxed);
    }

    fn is_active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Runs `f` as one call.
    ///
    /// # Safety
    /// As [`Arena::begin`]'s: what `f` allocated in the arena, including what it
    /// returns, is not used after the next call begins.
    unsafe fn call<T>(&self, f: impl FnOnce() -> T) -> T {
        debug_assert!(!self.is_active(), "an arena call inside another one");
        // SAFETY: the caller's promise, and no call is under way (checked above).
        unsafe { self.begin() };
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
    ///
    /// # Safety
    /// Nothing in the arena's chunks is alive.
    unsafe fn reset(&self) {
        let chunk = self.chunk.load(Relaxed);
        if chunk.is_null() {
            return;
        }
        // SAFETY: the caller's promise; the newest chunk is live with its header.
        unsafe {
            self.poison();
            if (*chunk).previous.is_null() {
                self.start(chunk);
            } else {
                let total = self.release_chunks();
                self.take_chunk(total);
            }
        }
    }

    /// In debug builds (and with feature `arena-poison`), overwrites every chunk's memory
    /// past its header, so that what still points there after a call reads garbage, not
    /// the previous call's objects.
    ///
    /// # Safety
    /// Nothing in the arena's chunks is alive.
    unsafe fn poison(&self) {
        if !cfg!(any(debug_assertions, feature = "arena-poison")) {
            return;
        }
        let mut chunk = self.chunk.load(Relaxed);
        while !chunk.is_null() {
            // SAFETY: every chunk on the list is live, `size` bytes from its start, and
            // the caller promises nothing past its header is in use.
            unsafe {
                let Chunk { previous, size } = ptr::read(chunk);
                ptr::write_bytes(chunk.cast::<u8>().add(HEADER), POISON, size - HEADER);
                chunk = previous;
            }
        }
    }

    /// Gives every chunk back to the backing allocator, leaving none to allocate from;
    /// returns their total size.
    ///
    /// # Safety
    /// Nothing in the arena's chunks is alive.
    unsafe fn release_chunks(&self) -> usize {
        self.next.store(null_mut(), Relaxed);
        self.end.store(null_mut(), Relaxed);
        self.last.store(null_mut(), Relaxed);
        let mut total = 0usize;
        let mut chunk = self.chunk.swap(null_mut(), Relaxed);
        while !chunk.is_null() {
            // SAFETY: every chunk on the list is live, came from `backing` with
            // `chunk_layout(size)`, and is off the list now.
            unsafe {
                let Chunk { previous, size } = ptr::read(chunk);
                total = total.saturating_add(size);
                if let Some(layout) = chunk_layout(size) {
                    self.backing.dealloc(chunk.cast(), layout);
                }
                chunk = previous;
            }
        }
        total
    }

    /// Allocates from the start of `chunk`, the newest.
    ///
    /// # Safety
    /// `chunk` is live, on the list, and nothing in it is alive.
    unsafe fn start(&self, chunk: *mut Chunk) {
        // SAFETY: the header and the `size` bytes it counts are the chunk's own.
        unsafe {
            let bytes = chunk.cast::<u8>();
            self.next.store(bytes.add(HEADER), Relaxed);
            self.end.store(bytes.add((*chunk).size), Relaxed);
        }
        // No allocation of this chunk yet that `realloc` could grow in place.
        self.last.store(null_mut(), Relaxed);
    }

    /// A new chunk of `size` bytes from the backing allocator, made the newest; null if
    /// there is no memory (the arena then has nothing to allocate from until the next
    /// chunk).
    fn take_chunk(&self, size: usize) -> *mut Chunk {
        let Some(layout) = chunk_layout(size.max(FIRST_CHUNK)) else {
            return null_mut();
        };
        // SAFETY: the layout is not zero-sized (at least `FIRST_CHUNK`).
        let chunk = unsafe { self.backing.alloc(layout) }.cast::<Chunk>();
        if chunk.is_null() {
            return null_mut();
        }
        // SAFETY: `chunk` is fresh, aligned for `Chunk` and larger than its header.
        unsafe {
            chunk.write(Chunk {
                previous: self.chunk.load(Relaxed),
                size: layout.size(),
            });
            self.chunk.store(chunk, Relaxed);
            self.start(chunk);
        }
        chunk
    }

    /// Whether `p` is arena memory.
    fn owns(&self, p: *mut u8) -> bool {
        let p = p.addr();
        let mut chunk = self.chunk.load(Relaxed);
        while !chunk.is_null() {
            // SAFETY: every chunk on the list is live and starts with its header.
            let Chunk { previous, size } = unsafe { ptr::read(chunk) };
            let start = chunk.addr();
            if p > start && p < start + size {
                return true;
            }
            chunk = previous;
        }
        false
    }

    /// The next `layout` in the newest chunk, if it fits.
    #[inline(always)]
    fn fit(&self, layout: Layout) -> Option<*mut u8> {
        // At least one byte, so that every arena pointer lies inside its chunk.
        let size = layout.size().max(1);
        let next = self.next.load(Relaxed);
        let at = align_up(next.addr(), layout.align())?;
        let stop = at.checked_add(size)?;
        if stop > self.end.load(Relaxed).addr() {
            return None;
        }
        // Both stay inside the newest chunk (`stop <= end`), so they keep its provenance.
        let p = next.with_addr(at);
        self.next.store(next.with_addr(stop), Relaxed);
        self.last.store(p, Relaxed);
        Some(p)
    }

    /// Memory from the backing allocator outside a call, or from a new chunk.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc`'s: `layout` is not zero-sized.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slowly(&self, layout: Layout) -> *mut u8 {
        if !self.is_active() {
            // SAFETY: the caller's.
            return unsafe { self.backing.alloc(layout) };
        }
        let newest = self.chunk.load(Relaxed);
        let doubled = if newest.is_null() {
            0
        } else {
            // SAFETY: the newest chunk is live and starts with its header.
            unsafe { (*newest).size.saturating_mul(2) }
        };
        let needed = layout.size().saturating_add(layout.align() + HEADER);
        if self.take_chunk(doubled.max(needed)).is_null() {
            return null_mut();
        }
        self.fit(layout).unwrap_or(null_mut())
    }
}

impl<A: GlobalAlloc> Drop for Arena<A> {
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
// never given to the backing allocator except through `reset`, between calls.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Arena<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.is_active() {
            if let Some(p) = self.fit(layout) {
                return p;
            }
        }
        // SAFETY: the caller's.
        unsafe { self.alloc_slowly(layout) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !self.owns(p) {
            // SAFETY: not arena memory, so it came from `backing` with this layout.
            unsafe { self.backing.dealloc(p, layout) };
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(p) {
            // SAFETY: not arena memory, so it came from `backing` with this layout.
            return unsafe { self.backing.realloc(p, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return null_mut();
        };
        // The newest allocation grows (or shrinks) where it is: a growing answer buffer
        // is not copied at each doubling.
        if self.is_active() && p == self.last.load(Relaxed) {
            if let Some(stop) = p.addr().checked_add(new_size) {
                if stop <= self.end.load(Relaxed).addr() {
                    self.next.store(p.with_addr(stop), Relaxed);
                    return p;
                }
            }
        }
        // SAFETY: `new_layout` is not zero-sized (the caller's), and the old block is
        // `layout.size()` readable bytes, disjoint from a fresh one.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(p, moved, layout.size().min(new_size));
            }
            moved
        }
    }
}

/// The allocator of the wasm module.
#[cfg_attr(target_arch = "wasm32", global_allocator)]
static ARENA: Arena = Arena::new();

/// Runs one call of an export in the arena. The answer it returns stays valid until
/// the next call. Native builds do not allocate from the arena, so there it only runs
/// `f` (and tests may call it from many threads at once).
///
/// # Safety
/// Nothing `f` allocates, including what it returns, is used after the next `call`
/// begins; in particular `f` initialises no lazy global that outlives it (put that in
/// [`outside`]).
pub unsafe fn call<T>(f: impl FnOnce() -> T) -> T {
    if cfg!(target_arch = "wasm32") {
        // SAFETY: the caller's promise.
        unsafe { ARENA.call(f) }
    } else {
        f()
    }
}

/// Runs `f` with the system allocator, for what must outlive the call (the settings
/// cache).
pub fn outside<T>(f: impl FnOnce() -> T) -> T {
    if cfg!(target_arch = "wasm32") {
        ARENA.outside(f)
    } else {
        f()
    }
}

/// Writes the arena's state before anything reads the memory page it lies in.
///
/// policy-server serves each request in a new instance, whose memory maps the module's
/// data copy-on-write. The writable statics (wapc-guest's registry, the arena's state)
/// and the heap's start share one page, and its first access was a read (the registry's
/// lazy check): the kernel mapped the module's page, and the first write then faulted
/// again to copy it. Written first, the page is copied at once: one page fault fewer per
/// request (`make bench-phases` counts them), about 3 % of a fresh request's time.
pub fn touch_statics() {
    if cfg!(target_arch = "wasm32") {
        ARENA.end();
    }
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
    use proptest::prelude::*;
    use rstest::rstest;
    use std::cell::Cell;
    use std::rc::Rc;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Writes `n` distinct bytes at `p`.
    unsafe fn fill(p: *mut u8, n: usize, seed: u8) {
        for i in 0..n {
            unsafe { p.add(i).write(seed.wrapping_add(i as u8)) };
        }
    }

    /// Whether the `n` bytes at `p` are those `fill` wrote.
    unsafe fn holds(p: *mut u8, n: usize, seed: u8) -> bool {
        (0..n).all(|i| unsafe { p.add(i).read() } == seed.wrapping_add(i as u8))
    }

    /// The system allocator, failing while `failing` is set, counting the blocks it
    /// holds; clones share both.
    #[derive(Default, Clone)]
    struct Flaky {
        failing: Rc<Cell<bool>>,
        held: Rc<Cell<usize>>,
    }

    unsafe impl GlobalAlloc for Flaky {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if self.failing.get() {
                return null_mut();
            }
            self.held.set(self.held.get() + 1);
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
            self.held.set(self.held.get() - 1);
            unsafe { System.dealloc(p, layout) }
        }

        unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if self.failing.get() {
                return null_mut();
            }
            unsafe { System.realloc(p, layout, new_size) }
        }
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
        unsafe {
            arena.begin();
            let ptrs: Vec<*mut u8> = (0..5).map(|_| arena.alloc(layout(size, align))).collect();
            for (i, p) in ptrs.iter().enumerate() {
                assert!(!p.is_null());
                assert_eq!(p.addr() % align, 0);
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
    fn outside_a_call_memory_is_the_backings_and_is_freed_there() {
        let arena = Arena::new();
        unsafe {
            let p = arena.alloc(layout(32, 8));
            assert!(!arena.owns(p));
            arena.begin();
            // Freed during a call, backing memory still goes back to the backing.
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
        unsafe {
            arena.begin();
            let a = arena.alloc(layout(16, 8));
            fill(a, 16, 1);
            let b = arena.alloc(layout(16, 8));
            fill(b, 16, 2);
            let grown = arena.realloc(b, layout(16, 8), FIRST_CHUNK / 2);
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
    fn the_newest_allocation_shrunk_gives_its_room_to_the_next() {
        let arena = Arena::new();
        unsafe {
            arena.begin();
            let text = arena.alloc(layout(2048, 1));
            fill(text, 100, 3);
            let shrunk = arena.realloc(text, layout(2048, 1), 100);
            assert_eq!(shrunk, text, "shrunk where it is");
            assert!(holds(shrunk, 100, 3));
            let next = arena.alloc(layout(16, 1));
            assert_eq!(
                next,
                text.wrapping_add(100),
                "the next allocation follows the kept bytes"
            );
        }
        arena.end();
    }

    #[test]
    fn backing_memory_reallocated_in_a_call_stays_the_backings() {
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

    /// `size` bytes filled from `seed`, allocated in a call that has ended.
    unsafe fn left_by_a_call(arena: &Arena, size: usize, seed: u8) -> *mut u8 {
        unsafe {
            arena.begin();
            let p = arena.alloc(layout(size, 8));
            fill(p, size, seed);
            arena.end();
            p
        }
    }

    #[test]
    fn arena_memory_reallocated_after_the_call_leaves_the_arena() {
        let arena = Arena::new();
        unsafe {
            let p = left_by_a_call(&arena, 8, 3);
            let q = arena.realloc(p, layout(8, 8), 64);
            assert!(!arena.owns(q));
            assert!(holds(q, 8, 3));
            arena.dealloc(q, layout(64, 8));
        }
    }

    #[test]
    fn the_next_call_reuses_one_chunk_as_large_as_the_last_calls_chunks() {
        let arena = Arena::new();
        unsafe {
            arena.begin();
            for _ in 0..10 {
                arena.alloc(layout(FIRST_CHUNK / 2, 8));
            }
            assert!(!(*arena.chunk.load(Relaxed)).previous.is_null());
            arena.end();
            arena.begin();
            let chunk = arena.chunk.load(Relaxed);
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
    fn outside_runs_with_the_backing_allocator_and_restores_the_call() {
        let arena = Arena::new();
        // SAFETY: nothing of the call is used after it but `kept`, which is not arena memory.
        let kept = unsafe {
            arena.call(|| {
                let p = arena.alloc(layout(8, 8));
                assert!(arena.owns(p));
                let kept = arena.outside(|| arena.alloc(layout(8, 8)));
                assert!(!arena.owns(kept));
                assert!(arena.owns(arena.alloc(layout(8, 8))));
                kept
            })
        };
        assert!(!arena.is_active());
        unsafe { arena.dealloc(kept, layout(8, 8)) };
    }

    #[test]
    #[cfg(debug_assertions)]
    fn a_finished_calls_memory_reads_as_poison_in_debug_builds() {
        let arena = Arena::new();
        unsafe {
            let p = left_by_a_call(&arena, 64, 9);
            arena.begin();
            // The same chunk, reset: what a dangling global would read.
            assert!((0..64).all(|i| p.add(i).read() == POISON));
            arena.end();
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "an arena call inside another one")]
    fn a_call_inside_a_call_is_refused_in_debug_builds() {
        let arena = Arena::new();
        unsafe { arena.call(|| arena.call(|| ())) };
    }

    #[test]
    fn without_backing_memory_every_allocation_is_null_and_the_arena_recovers() {
        let arena = Arena::over(Flaky::default());
        unsafe {
            arena.backing.failing.set(true);
            assert!(arena.alloc(layout(8, 8)).is_null(), "outside a call");
            arena.begin();
            assert!(arena.alloc(layout(8, 8)).is_null(), "no first chunk");
            arena.backing.failing.set(false);
            let p = arena.alloc(layout(8, 8));
            assert!(arena.owns(p));
            fill(p, 8, 1);
            arena.backing.failing.set(true);
            // A realloc that must move and cannot leaves the block as it was.
            assert!(arena.realloc(p, layout(8, 8), 4 * FIRST_CHUNK).is_null());
            assert!(holds(p, 8, 1));
            assert!(
                arena.alloc(layout(2 * FIRST_CHUNK, 8)).is_null(),
                "no new chunk"
            );
            assert!(
                arena.realloc(p, layout(8, 8), usize::MAX).is_null(),
                "no layout"
            );
            arena.end();
        }
        drop(arena);
    }

    #[test]
    fn a_failed_chunk_after_a_reset_leaves_nothing_to_allocate_from_until_the_next() {
        let arena = Arena::over(Flaky::default());
        unsafe {
            arena.begin();
            // Two chunks, so that the reset gives them back and asks for one larger.
            arena.alloc(layout(FIRST_CHUNK / 2, 8));
            arena.alloc(layout(FIRST_CHUNK, 8));
            arena.end();
            arena.backing.failing.set(true);
            arena.begin();
            assert_eq!(arena.backing.held.get(), 0, "both chunks given back");
            assert!(arena.chunk.load(Relaxed).is_null());
            assert!(arena.next.load(Relaxed).is_null() && arena.end.load(Relaxed).is_null());
            assert!(arena.alloc(layout(8, 8)).is_null());
            arena.backing.failing.set(false);
            let p = arena.alloc(layout(8, 8));
            assert!(!p.is_null() && arena.owns(p));
            arena.end();
        }
    }

    /// One step of an allocator program.
    #[derive(Debug, Clone)]
    enum Step {
        Alloc {
            size: usize,
            align: usize,
        },
        Realloc {
            which: usize,
            size: usize,
        },
        Free {
            which: usize,
        },
        /// An allocation in `outside`.
        Keep {
            size: usize,
        },
        NextCall,
        EndCall,
        Fail(bool),
    }

    fn size() -> impl Strategy<Value = usize> {
        prop_oneof![4 => 1..64usize, 2 => 64..FIRST_CHUNK / 2, 1 => FIRST_CHUNK..3 * FIRST_CHUNK]
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (size(), 0..9u32).prop_map(|(size, log)| Step::Alloc { size, align: 1 << log }),
            3 => (any::<usize>(), size()).prop_map(|(which, size)| Step::Realloc { which, size }),
            2 => any::<usize>().prop_map(|which| Step::Free { which }),
            1 => size().prop_map(|size| Step::Keep { size }),
            2 => Just(Step::NextCall),
            1 => Just(Step::EndCall),
            1 => any::<bool>().prop_map(Step::Fail),
        ]
    }

    /// A live allocation of the program: where, its layout, its bytes' seed, and
    /// whether it is arena memory.
    #[derive(Clone, Copy)]
    struct Block {
        p: *mut u8,
        layout: Layout,
        seed: u8,
        arena: bool,
    }

    /// Runs `steps` on an arena over a flaky backing, checking after each step that
    /// every live block is aligned, owned as it should be and holds its bytes, that
    /// blocks never overlap, and at the end that the arena gave all its memory back.
    fn run(steps: &[Step]) {
        let flaky = Flaky::default();
        let arena = Arena::over(flaky.clone());
        let mut live: Vec<Block> = Vec::new();
        let mut seed = 0u8;
        unsafe {
            for step in steps {
                let active = arena.is_active();
                let made = match *step {
                    Step::Alloc { size, align } => Some((
                        arena.alloc(layout(size, align)),
                        layout(size, align),
                        active,
                    )),
                    Step::Keep { size } => Some((
                        arena.outside(|| arena.alloc(layout(size, 1))),
                        layout(size, 1),
                        false,
                    )),
                    Step::Realloc { which, size } if !live.is_empty() => {
                        let i = which % live.len();
                        let old = live[i];
                        let q = arena.realloc(old.p, old.layout, size);
                        if q.is_null() {
                            assert!(holds(old.p, old.layout.size(), old.seed), "{step:?}");
                        } else {
                            let kept = old.layout.size().min(size);
                            assert!(holds(q, kept, old.seed), "{step:?} lost bytes");
                            let arena_memory = old.arena && active;
                            let new = layout(size, old.layout.align());
                            live[i] = Block {
                                p: q,
                                layout: new,
                                seed: old.seed,
                                arena: arena_memory,
                            };
                            fill(q, size, old.seed);
                        }
                        None
                    }
                    Step::Free { which } if !live.is_empty() => {
                        let old = live.swap_remove(which % live.len());
                        arena.dealloc(old.p, old.layout);
                        None
                    }
                    Step::NextCall => {
                        arena.end();
                        // The program keeps no arena block past the next call.
                        live.retain(|b| !b.arena);
                        arena.begin();
                        None
                    }
                    Step::EndCall => {
                        arena.end();
                        None
                    }
                    Step::Fail(failing) => {
                        flaky.failing.set(failing);
                        None
                    }
                    Step::Realloc { .. } | Step::Free { .. } => None,
                };
                if let Some((p, layout, arena_memory)) = made {
                    if p.is_null() {
                        assert!(flaky.failing.get(), "{step:?}: null with memory to spare");
                    } else {
                        seed = seed.wrapping_add(1);
                        fill(p, layout.size(), seed);
                        live.push(Block {
                            p,
                            layout,
                            seed,
                            arena: arena_memory,
                        });
                    }
                }
                for (i, b) in live.iter().enumerate() {
                    assert_eq!(b.p.addr() % b.layout.align(), 0, "{step:?}");
                    assert_eq!(arena.owns(b.p), b.arena, "{step:?}: block {i}'s owner");
                    assert!(holds(b.p, b.layout.size(), b.seed), "{step:?}: block {i}");
                    let (start, stop) = (b.p.addr(), b.p.addr() + b.layout.size().max(1));
                    for c in &live[i + 1..] {
                        let (s, e) = (c.p.addr(), c.p.addr() + c.layout.size().max(1));
                        assert!(stop <= s || e <= start, "{step:?}: blocks overlap");
                    }
                }
            }
            arena.end();
            for b in live.drain(..) {
                arena.dealloc(b.p, b.layout);
            }
        }
        drop(arena);
        assert_eq!(flaky.held.get(), 0, "memory not given back");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 8 } else { 64 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn allocator_programs_keep_every_live_block_intact(
            steps in proptest::collection::vec(step(), 0..if cfg!(miri) { 24 } else { 48 })
        ) {
            run(&steps);
        }
    }
}
