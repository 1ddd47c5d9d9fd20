//! Bad config input never takes wharf down and always gets a clear
//! answer: `wharf check` on mutated configs, and reloads of a running
//! wharf with mutated configs. Mutations come from a fixed seed (override
//! it with `WHARF_FUZZ_SEED=<number>`; every failure names the seed and
//! the case).
//!
//! `wharf check` must exit 0 or 1 (never a signal, never a panic's 101),
//! and a rejected file must be reported as `file:line:column: ...` lines,
//! except for the few problems that have no line (`WHOLE_FILE_ERRORS`).
//! A reload must be accepted only when `wharf check` accepts the same
//! file, must be rejected with the same positioned errors otherwise, and
//! must never stop the running configuration from serving.
//!
//! This file holds the seed and how `wharf check` is run and its answer
//! judged, which both tests use; `bases` the valid configs, `mutate` the
//! mutations, `check` and `reload` the two tests.

#[path = "../support/mod.rs"]
mod support;

mod bases;
mod check;
mod mutate;
mod reload;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use support::*;

const DEFAULT_SEED: u64 = 20_241_203;

/// A `wharf check` that takes longer than this has hung.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors that legitimately have no line:column: the file cannot be read
/// at all, or the default listen address is bad because of `$PORT`
/// (written nowhere in the file when there is no `[server]` table).
const WHOLE_FILE_ERRORS: &[&str] = &[
    ": cannot read the configuration file: ",
    ": server.listen: the environment variable PORT is ",
];

fn seed() -> u64 {
    match std::env::var("WHARF_FUZZ_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WHARF_FUZZ_SEED={text:?} is not a whole number")),
        Err(_) => DEFAULT_SEED,
    }
}

/// Bytes for a failure message: escaped, and cut short.
fn show(bytes: &[u8]) -> String {
    let text = bytes.escape_ascii().to_string();
    match text.char_indices().nth(800) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], bytes.len()),
        None => text,
    }
}

struct Checked {
    code: Option<i32>,
    stderr: String,
}

/// Runs `wharf check -c path`, output to files (no pipe can fill up and
/// stall it), killed after `CHECK_TIMEOUT`.
fn run_check(path: &Path, scratch: &Path, env: &[(&str, &str)]) -> Result<Checked, String> {
    let out = File::create(scratch.join("stdout")).expect("stdout file");
    let err = File::create(scratch.join("stderr")).expect("stderr file");
    let mut child = Command::new(WHARF)
        .args(["check", "-c"])
        .arg(path)
        .env_remove("PORT")
        .env("WHARF_FUZZ_EMPTY", "")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn wharf check");
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("wharf check did not finish in {CHECK_TIMEOUT:?}"));
            }
        }
    };
    let stderr = std::fs::read(scratch.join("stderr")).expect("read stderr");
    Ok(Checked {
        code: status.code(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Whether `report` (wharf's printed `ConfigErrors` for `file`) is a
/// list of problems that each name the file and a line:column, or a
/// documented whole-file error, followed by the right count.
fn judge_errors(file: &str, report: &str) -> Result<(), String> {
    let heads: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with(file) && !l.ends_with(&format!(" in {file}")))
        .collect();
    if heads.is_empty() {
        return Err("no error names the file".into());
    }
    for head in &heads {
        let rest = &head[file.len()..];
        let positioned = rest
            .strip_prefix(':')
            .and_then(|r| r.split_once(':'))
            .and_then(|(line, r)| Some((line.parse::<usize>().ok()?, r.split_once(": ")?.0)))
            .and_then(|(line, column)| Some((line, column.parse::<usize>().ok()?)))
            .is_some_and(|(line, column)| line >= 1 && column >= 1);
        let whole_file = WHOLE_FILE_ERRORS.iter().any(|w| rest.starts_with(w));
        if !positioned && !whole_file {
            return Err(format!("error without a line:column: {head:?}"));
        }
    }
    let noun = if heads.len() == 1 { "error" } else { "errors" };
    let count = format!("{} {noun} in {file}", heads.len());
    if !report.trim_end().ends_with(&count) {
        return Err(format!("the report does not end with {count:?}"));
    }
    Ok(())
}
