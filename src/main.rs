//! The `wharf` command: parse arguments, dispatch to `wharf::cli`.

use clap::Parser;

// mimalloc: fewer and cheaper allocator calls on the request path than
// glibc malloc (measured in bench/, see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
