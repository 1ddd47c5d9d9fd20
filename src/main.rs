//! The `wharf` command: parse arguments, dispatch to `wharf::cli`.

use clap::Parser;

// mimalloc: fewer and cheaper allocator calls on the request path than
// glibc malloc (measured in bench/, see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = wharf::cli::Cli::parse();
    wharf::cli::dispatch(cli)
}
