//! The `wharf` command: parse arguments, dispatch to `wharf::cli`.

use clap::Parser;

// mimalloc: fewer and cheaper allocator calls on the request path than
// glibc malloc (measured in bench/, see docs/performance.md).
#[global_allocator]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc as the global allocator, through its plain entry points
/// whenever they give the alignment asked for.
///
/// The `mimalloc` crate's allocator calls `mi_malloc_aligned` for every
/// allocation. In mimalloc 3 that call is fast only for blocks up to 1 KiB;
/// larger ones (a request's relay state, read buffers) take its generic
/// aligned path, which over-allocates and aligns by hand: about 300
/// instructions where `mi_malloc` takes under 100 (callgrind, 5 such calls
/// per proxied request). mimalloc aligns every block of 16 bytes or more
/// to 16 bytes, and smaller ones to 8, like glibc; so, as Rust's own
/// `System` allocator does for glibc, an alignment of at most 16 and at
/// most the size needs nothing more than `mi_malloc`.
struct Mimalloc;

/// The alignment `mi_malloc` gives every block at least as large
/// (mimalloc's `MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every function hands mimalloc a layout Rust asked for and returns
// its block (or null on failure); `plain` sends only alignments that
// mimalloc's plain calls already guarantee for that size to them.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_malloc, mi_malloc_aligned};
        if plain(layout.align(), layout.size()) {
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            unsafe { mi_malloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
        if plain(layout.align(), layout.size()) {
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            unsafe { mi_zalloc_aligned(layout.size(), layout.align()).cast() }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        use libmimalloc_sys::{mi_realloc, mi_realloc_aligned};
        if plain(layout.align(), new_size) {
            unsafe { mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            unsafe { mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast() }
        }
    }
}

fn main() -> std::process::ExitCode {
    no_huge_pages();
    let cli = wharf::cli::Cli::parse();
    wharf::cli::dispatch(cli)
}

/// mimalloc asks for transparent huge pages, which fill whole 2 MiB pages
/// for a few small objects: 10,000 idle connections then cost about
/// 6 MiB more resident memory for no measurable speed. Off for wharf; the
/// apps it starts get it back (`supervise::spawn`).
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // nothing but this process's huge page policy; a failure (old kernel)
    // is harmless and ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::Mimalloc;

    /// Every size and alignment Rust may ask for gets a block aligned as
    /// asked, on whichever side of `plain` it falls, and keeps its bytes
    /// when it grows or shrinks across that line.
    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_bytes_through_realloc() {
        let sizes = [
            1, 7, 8, 12, 16, 24, 40, 56, 100, 1000, 1025, 2448, 4096, 16384, 70000,
        ];
        let aligns = [1, 2, 4, 8, 16, 32, 64, 128, 4096];
        for &size in &sizes {
            for &align in &aligns {
                let layout = Layout::from_size_align(size, align).expect("layout");
                // SAFETY: a non-zero size; the block is written within its
                // size and freed with the layout it was made with.
                unsafe {
                    let zeroed = Mimalloc.alloc_zeroed(layout);
                    assert!(!zeroed.is_null());
                    assert_eq!(
                        zeroed as usize % align,
                        0,
                        "zeroed {size} bytes, align {align}"
                    );
                    assert!(std::slice::from_raw_parts(zeroed, size)
                        .iter()
                        .all(|b| *b == 0));
                    Mimalloc.dealloc(zeroed, layout);

                    let mut block = Mimalloc.alloc(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "{size} bytes, align {align}");
                    for i in 0..size {
                        block.add(i).write(i as u8);
                    }
                    for &new_size in &sizes {
                        let moved = Mimalloc.realloc(block, layout, new_size);
                        assert!(!moved.is_null());
                        assert_eq!(
                            moved as usize % align,
                            0,
                            "{size} → {new_size}, align {align}"
                        );
                        let kept = size.min(new_size);
                        for i in 0..kept {
                            assert_eq!(moved.add(i).read(), i as u8, "{size} → {new_size}");
                        }
                        // Back to the first size for the next round.
                        let new_layout = Layout::from_size_align(new_size, align).expect("layout");
                        let back = Mimalloc.realloc(moved, new_layout, size);
                        assert!(!back.is_null());
                        assert_eq!(back as usize % align, 0);
                        for i in 0..kept {
                            assert_eq!(back.add(i).read(), i as u8);
                        }
                        for i in kept..size {
                            back.add(i).write(i as u8);
                        }
                        block = back;
                    }
                    Mimalloc.dealloc(block, layout);
                }
            }
        }
    }
}
