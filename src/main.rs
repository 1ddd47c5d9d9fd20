//! The `wharf` command: parse arguments, dispatch to `wharf::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = wharf::cli::Cli::parse();
    wharf::cli::dispatch(cli)
}
