//! Counts the bytes each thread holds from the allocator, so the script sandbox can stop
//! an evaluation that holds too much memory, however it holds it (variables at every call
//! level, map keys, values nested in values): Rhai's own limits count string lengths and
//! item counts of one value at a time, not an evaluation's memory.
//!
//! The count is per thread and net (allocations minus frees on that thread), so the
//! difference between two readings on one thread is what the code between them still
//! holds, give or take what it freed of older memory. Counting costs one thread-local
//! addition per allocation; it is the process's global allocator (set in `lib.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // `const` and without a destructor: reading it never allocates, so the allocator
    // itself may use it.
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    // A thread being torn down has no count left to keep.
    let _ = HELD.try_with(|held| held.set(held.get().wrapping_add(bytes)));
}

/// Net bytes this thread has allocated and not freed since it started.
pub fn held_by_this_thread() -> isize {
    HELD.try_with(Cell::get).unwrap_or(0)
}

/// The system allocator, counting.
pub struct CountingAllocator;

// SAFETY: every call is passed to the system allocator unchanged; only the count is added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_thread_holds_is_counted_and_freeing_gives_it_back() {
        let before = held_by_this_thread();
        let block = vec![0u8; 10 << 20];
        let holding = held_by_this_thread() - before;
        assert!(holding >= 10 << 20, "counted {holding}");
        drop(block);
        assert!(held_by_this_thread() - before < 1 << 20);
        // Another thread's allocations are not this thread's.
        let before = held_by_this_thread();
        let other = std::thread::spawn(|| vec![0u8; 10 << 20]).join().unwrap();
        assert!(held_by_this_thread() - before < 1 << 20);
        drop(other);
    }
}
