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

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use support::*;

const DEFAULT_SEED: u64 = 20_241_203;

/// Mutated cases per valid base config (9 bases: 288 cases).
const CASES_PER_BASE: usize = 32;

/// `wharf check` processes running at once.
const WORKERS: usize = 4;

/// A `wharf check` that takes longer than this has hung.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Reloads with a mutated config in the running-wharf test.
const RELOADS: usize = 50;

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

// ---------------------------------------------------------------------
// Valid configs, from docs/config.md's examples
// ---------------------------------------------------------------------

const SERVER_AND_LOG: &str = r#"[server]
listen = ["127.0.0.1:${PORT:-8080}"]
admin = "127.0.0.1:9180"
trusted_proxies = ["10.0.0.0/8", "192.168.1.10", "fd00::/8"]
shutdown_timeout = "30s"
header_timeout = "10s"
idle_timeout = "1m 30s"
max_header_size = "64KiB"
max_body_size = 10485760

[log]
format = "json"
access = "off"
level = "info"
"#;

const PROXY: &str = r#"
[[site]]
hosts = ["example.com", "*.example.com"]
  [[site.route]]
  path = "/"
  upstream = "app"

[upstream.app]
balance = "least_conn"
servers = [
  { addr = "127.0.0.1:9001", weight = 3 },
  "127.0.0.1:9002",
  { addr = "127.0.0.1:9003", backup = true },
]
connect_timeout = "2s"
response_timeout = "60s"
retries = 2
retry_backoff = "100ms"
retry_backoff_max = "2s"
retry_budget = 0.2

[upstream.app.health]
path = "/health"
interval = "2s"
timeout = "1s"
fails = 3
passes = 2
expect = "2xx"

[upstream.app.passive]
max_fails = 5
window = "10s"
eject_for = "30s"
max_ejected_percent = 50

[upstream.app.breaker]
failures = 5
open_for = "10s"

[upstream.other]
balance = "ip_hash"
servers = ["[::1]:9004"]
[upstream.other.health]
expect = 204
"#;

const STATIC_CORS: &str = r#"
[[site]]
hosts = ["example.com"]
  [[site.route]]
  path = "/static/"
  static = "./static"
  spa = false
  [[site.route]]
  path = "/"
  static = "static"
  spa = true
  [site.cors]
  origins = ["https://app.example.com", "http://[::1]:3000"]
  methods = ["GET", "POST"]
  headers = ["content-type", "authorization"]
  expose_headers = ["x-request-id"]
  credentials = true
  max_age = "1h"
"#;

const REDIRECT_RESPOND: &str = r#"
[[site]]
hosts = ["status.example.com"]
  [[site.route]]
  path = "/health"
  respond = "ok"
  [[site.route]]
  path = "/price"
  respond = "costs $$5"
  status = 200
  content_type = "text/html; charset=utf-8"
  [[site.route]]
  path = "/old/"
  redirect = "https://example.com/new/"
  status = 308
  [[site.route]]
  path = "/"
  redirect = "/health"
  status = 302

[[site]]
  [[site.route]]
  path = "/"
  respond = "${WHARF_FUZZ_BODY:-fallback}"
  status = 404
"#;

const APPS: &str = r#"
[app.web]
command = ["sleep", "60"]
dir = "."
instances = 3
port = 9001
env = { MODE = "release", SECRET = "${file:secret}" }
restart = "always"
backoff = "1s"
max_backoff = "60s"
stop_signal = "TERM"
stop_timeout = "10s"
memory_limit = "512MiB"
cpu_limit = 0.5
open_files = 65536
log = "stdout"
start_timeout = "60s"

[upstream.web]
app = "web"

[[site]]
  [[site.route]]
  path = "/"
  upstream = "web"
"#;

/// Storage paths are relative: each worker checks in its own directory.
fn tls_internal() -> String {
    "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\n\
     [tls]\nmode = \"internal\"\nstorage = \"internal\"\nredirect_http = true\n\
     hsts = \"max-age=31536000; includeSubDomains\"\n\n\
     [[site]]\nhosts = [\"example.com\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
        .to_string()
}

fn tls_files() -> String {
    "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\n\
     [tls]\nmode = \"files\"\ncert = \"site.pem\"\nkey = \"site.key\"\nredirect_http = false\n\n\
     [[site]]\nhosts = [\"a.test\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
        .to_string()
}

fn tls_acme() -> String {
    "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\n\
     [tls]\nmode = \"acme\"\nemail = \"ops@example.com\"\n\
     directory = \"https://127.0.0.1:14000/dir\"\nchallenge = \"tls-alpn-01\"\n\
     renew_before = \"20d\"\nstorage = \"acme\"\nhsts = \"max-age=600\"\n\n\
     [[site]]\nhosts = [\"example.com\", \"www.example.com\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
        .to_string()
}

/// The valid configs every mutation starts from, with the files they
/// name created in `dir`.
fn bases(dir: &Path) -> Vec<(&'static str, String)> {
    std::fs::create_dir_all(dir.join("static")).expect("static dir");
    std::fs::write(dir.join("static/index.html"), "<h1>hi</h1>").expect("index");
    std::fs::write(dir.join("secret"), "s3cret\n").expect("secret");
    let pair = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).expect("cert");
    std::fs::write(dir.join("site.pem"), pair.cert.pem()).expect("cert");
    std::fs::write(dir.join("site.key"), pair.signing_key.serialize_pem()).expect("key");
    vec![
        ("proxy", format!("{SERVER_AND_LOG}{PROXY}")),
        ("static + cors", format!("{SERVER_AND_LOG}{STATIC_CORS}")),
        (
            "redirect + respond",
            format!("{SERVER_AND_LOG}{REDIRECT_RESPOND}"),
        ),
        ("apps", format!("{SERVER_AND_LOG}{APPS}")),
        ("tls internal", tls_internal()),
        ("tls files", tls_files()),
        ("tls acme", tls_acme()),
        ("no [server]", format!("{REDIRECT_RESPOND}{PROXY}")),
        (
            "everything",
            format!("{SERVER_AND_LOG}{PROXY}{APPS}").replace(
                "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n",
                "",
            ),
        ),
    ]
}

// ---------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------

/// Values written in place of a key's value: every other type, numbers
/// out of range, bad durations, sizes and addresses, broken `${...}`.
const VALUES: &[&str] = &[
    "\"text\"",
    "42",
    "0",
    "-1",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "nan",
    "inf",
    "-inf",
    "1e308",
    "0.5",
    "true",
    "[]",
    "[1, \"a\", [2]]",
    "[\"\"]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"5x\"",
    "\"-1s\"",
    "\"9999999999999999999h\"",
    "\"500000000000000000s\"",
    "\"0s\"",
    "\"\"",
    "\" \"",
    "\"1.5GiB\"",
    "\"99999999999TiB\"",
    "\"-5MiB\"",
    "\":99999\"",
    "\"[::1\"",
    "\"host:port:x\"",
    "\"127.0.0.1:99999\"",
    "\"127.0.0.1:\"",
    "\"[::1]:0\"",
    "\"${\"",
    "\"${}\"",
    "\"${A:-\"",
    "\"${A:-${B}}\"",
    "\"${WHARF_FUZZ_UNSET:-${WHARF_FUZZ_UNSET}}\"",
    "\"${file:}\"",
    "\"${file:/nonexistent/wharf-fuzz}\"",
    "\"${WHARF_FUZZ_UNSET}\"",
    "\"${WHARF_FUZZ_EMPTY}\"",
    "\"${1x}\"",
    "\"$${PORT}\"",
    "\"${PORT:-8080}\"",
    "'literal ${'",
    "\"\\u0000\"",
    "\"a\\nb\"",
    "\"*\"",
    "\"off\"",
    "\"/\"",
    "\"../../..\"",
    "\"\\u00e9\\u202e\"",
];

/// Lines inserted as they are: unknown keys and sections, tables that
/// repeat or clash with what the file has.
const LINES: &[&str] = &[
    "bogus = 1\n",
    "lisen = [\"127.0.0.1:0\"]\n",
    "[certbot]\nx = 1\n",
    "[server]\n",
    "[[site]]\n",
    "[[site.route]]\n",
    "[upstream.app.unknown]\nx = 1\n",
    "[upstream.\"bad name\"]\nservers = [\"127.0.0.1:1\"]\n",
    "[app.x]\n",
    "[tls]\nmode = \"internal\"\n",
    "a.b.c.d.e = 1\n",
    "\"\" = 1\n",
    "\"a\\nb\" = 2\n",
];

/// Single bytes that matter to TOML, to UTF-8 and to line counting.
const BYTES: &[u8] = b"\"[]{}=$\n\0\r\\#',.:-\xff\xc3\x80 \t";

fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

/// The byte range of line `n` (with its `\n`).
fn line_range(text: &[u8], n: usize) -> std::ops::Range<usize> {
    let starts = line_starts(text);
    let start = starts[n.min(starts.len() - 1)];
    let end = starts.get(n + 1).copied().unwrap_or(text.len());
    start..end
}

fn random_line(rng: &mut fastrand::Rng, text: &[u8]) -> usize {
    rng.usize(..line_starts(text).len())
}

/// A value too deep for any parser that recurses without a limit.
fn deep(rng: &mut fastrand::Rng) -> String {
    let depth = [20, 200, 5000][rng.usize(..3)];
    if rng.bool() {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    } else {
        format!("{}1{}", "{ a = ".repeat(depth), " }".repeat(depth))
    }
}

/// A 1 MB value: a plain string, or one inside `${...}`.
fn long(rng: &mut fastrand::Rng) -> String {
    let filler = "a".repeat(1 << 20);
    match rng.usize(..3) {
        0 => format!("\"{filler}\""),
        1 => format!("\"${{{}}}\"", filler.to_ascii_uppercase()),
        _ => format!("\"${{A:-{filler}}}\""),
    }
}

/// Replaces the value of a random `key = value` line.
fn swap_value(rng: &mut fastrand::Rng, data: &mut Vec<u8>, value: &str) -> Option<String> {
    let lines: Vec<usize> = (0..line_starts(data).len())
        .filter(|&n| {
            let r = line_range(data, n);
            data[r].windows(3).any(|w| w == b" = ")
        })
        .collect();
    let n = lines.get(rng.usize(..lines.len().max(1)))?;
    let r = line_range(data, *n);
    let eq = data[r.clone()].windows(3).position(|w| w == b" = ")? + r.start + 3;
    let end = if data[r.end - 1] == b'\n' {
        r.end - 1
    } else {
        r.end
    };
    data.splice(eq..end, value.bytes());
    Some(format!(
        "value on line {} := {}",
        n + 1,
        show(value.as_bytes())
    ))
}

/// One mutation of `data`; returns what it did, for failure messages.
fn mutate_once(rng: &mut fastrand::Rng, data: &mut Vec<u8>) -> String {
    let len = data.len();
    match rng.usize(..14) {
        0 if len > 0 => {
            let at = rng.usize(..len);
            data[at] ^= 1 << rng.u8(..8);
            format!("flip a bit at byte {at}")
        }
        1 => {
            let at = rng.usize(..=len);
            let byte = if rng.u8(..4) == 0 {
                rng.u8(..)
            } else {
                BYTES[rng.usize(..BYTES.len())]
            };
            data.insert(at, byte);
            format!("insert {:?} at byte {at}", byte as char)
        }
        2 if len > 0 => {
            let at = rng.usize(..len);
            let end = (at + rng.usize(1..16)).min(len);
            data.drain(at..end);
            format!("delete bytes {at}..{end}")
        }
        3 => {
            let n = random_line(rng, data);
            let r = line_range(data, n);
            let copy = data[r.clone()].to_vec();
            data.splice(r.end..r.end, copy);
            format!("duplicate line {}", n + 1)
        }
        4 => {
            let n = random_line(rng, data);
            data.drain(line_range(data, n));
            format!("remove line {}", n + 1)
        }
        5..=7 => {
            let value = VALUES[rng.usize(..VALUES.len())];
            swap_value(rng, data, value).unwrap_or_else(|| "no value to swap".into())
        }
        8 => {
            let n = random_line(rng, data);
            let at = line_range(data, n).end;
            let line = LINES[rng.usize(..LINES.len())];
            let line = if at > 0 && data[at - 1] != b'\n' {
                format!("\n{line}")
            } else {
                line.to_string()
            };
            data.splice(at..at, line.bytes());
            format!("insert {:?} after line {}", line, n + 1)
        }
        9 => {
            let value = deep(rng);
            swap_value(rng, data, &value).unwrap_or_else(|| "no value to swap".into())
        }
        10 if rng.u8(..3) == 0 => {
            let value = long(rng);
            swap_value(rng, data, &value).unwrap_or_else(|| "no value to swap".into())
        }
        11 => {
            let at = rng.usize(..=len);
            data.truncate(at);
            format!("truncate at byte {at}")
        }
        12 => {
            let (a, b) = (random_line(rng, data), random_line(rng, data));
            let (a, b) = (a.min(b), a.max(b));
            let (ra, rb) = (line_range(data, a), line_range(data, b));
            if a != b && rb.start >= ra.end {
                let (la, lb) = (data[ra.clone()].to_vec(), data[rb.clone()].to_vec());
                data.splice(rb, la);
                data.splice(ra, lb);
            }
            format!("swap lines {} and {}", a + 1, b + 1)
        }
        _ => match rng.usize(..4) {
            0 => {
                let crlf: Vec<u8> = data
                    .iter()
                    .flat_map(|&b| {
                        if b == b'\n' {
                            vec![b'\r', b'\n']
                        } else {
                            vec![b]
                        }
                    })
                    .collect();
                *data = crlf;
                "CRLF line ends".into()
            }
            1 => {
                data.splice(0..0, *b"\xef\xbb\xbf");
                "a BOM".into()
            }
            2 => {
                let at = rng.usize(..=len);
                data.splice(at..at, *b"\xed\xa0\x80");
                format!("a UTF-16 surrogate (invalid UTF-8) at byte {at}")
            }
            _ => {
                for b in data.iter_mut().filter(|b| **b == b'\n') {
                    *b = b'\r';
                }
                "lone CR line ends".into()
            }
        },
    }
}

/// One to three mutations of `base`.
fn mutate(rng: &mut fastrand::Rng, base: &str) -> (Vec<u8>, Vec<String>) {
    let mut data = base.as_bytes().to_vec();
    let steps = (0..rng.usize(1..=3))
        .map(|_| mutate_once(rng, &mut data))
        .collect();
    (data, steps)
}

// ---------------------------------------------------------------------
// Running `wharf check` and judging its answer
// ---------------------------------------------------------------------

struct Case {
    name: String,
    config: Vec<u8>,
    /// Extra environment for the `wharf check` process.
    env: Vec<(&'static str, &'static str)>,
    /// `Some(code)` when the exit code is known in advance.
    expect: Option<i32>,
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

/// Checks one case; `Err` says what went wrong.
fn check_case(case: &Case, scratch: &Path) -> Result<i32, String> {
    let path = scratch.join("wharf.toml");
    std::fs::write(&path, &case.config).expect("write config");
    let checked = run_check(&path, scratch, &case.env)?;
    let stderr = &checked.stderr;
    if stderr.contains("panicked") {
        return Err(format!("wharf check panicked:\n{stderr}"));
    }
    let code = match checked.code {
        Some(code @ (0 | 1)) => code,
        Some(code) => return Err(format!("exit code {code}:\n{stderr}")),
        None => return Err(format!("killed by a signal:\n{stderr}")),
    };
    if let Some(expected) = case.expect.filter(|&e| e != code) {
        return Err(format!("exit code {code}, expected {expected}:\n{stderr}"));
    }
    if code == 1 {
        judge_errors(&path.display().to_string(), stderr)
            .map_err(|why| format!("{why}; stderr:\n{}", show(stderr.as_bytes())))?;
    }
    Ok(code)
}

fn cases(rng: &mut fastrand::Rng, dir: &Path) -> Vec<Case> {
    let bases = bases(dir);
    let mut cases = Vec::new();
    for (name, text) in &bases {
        cases.push(Case {
            name: format!("{name}, unmutated"),
            config: text.clone().into_bytes(),
            env: Vec::new(),
            expect: Some(0),
        });
    }
    // `${PORT}` in the default listen address (no `[server]`) and in a
    // written one, with every kind of bad value.
    let no_server = bases[7].1.clone();
    let written = bases[0].1.clone();
    for port in ["abc", "99999", "-1", "${X}", "", "8080x", "0"] {
        let ok = matches!(port, "" | "0");
        for (how, text) in [
            ("default listen", ""),
            ("default listen", &no_server),
            ("written listen", &written),
        ] {
            cases.push(Case {
                name: format!("PORT={port:?}, {how}"),
                config: text.as_bytes().to_vec(),
                env: vec![("PORT", port)],
                expect: Some(if ok { 0 } else { 1 }),
            });
        }
    }
    for (name, text) in &bases {
        for i in 0..CASES_PER_BASE {
            let (config, steps) = mutate(rng, text);
            cases.push(Case {
                name: format!("{name} #{i}: {}", steps.join("; ")),
                config,
                env: Vec::new(),
                expect: None,
            });
        }
    }
    cases
}

#[test]
fn check_never_panics_and_always_points_at_the_problem() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = cases(&mut rng, dir.path());
    let total = cases.len();
    let started = Instant::now();

    // Whole-file errors: a directory, and a path that does not exist.
    let scratch = dir.path().join("whole");
    std::fs::create_dir_all(&scratch).expect("scratch");
    for path in [dir.path().to_path_buf(), dir.path().join("missing.toml")] {
        let checked = run_check(&path, &scratch, &[]).expect("check in time");
        assert_eq!(
            checked.code,
            Some(1),
            "{}: {}",
            path.display(),
            checked.stderr
        );
        judge_errors(&path.display().to_string(), &checked.stderr)
            .unwrap_or_else(|why| panic!("{why}: {}", checked.stderr));
    }

    // Each worker takes every WORKERS-th case, in its own directory, so
    // relative paths (`static`, `secret`, `site.pem`) resolve as in the base.
    let cases = std::sync::Arc::new(cases);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let cases = cases.clone();
            let scratch: PathBuf = dir.path().join(format!("worker-{w}"));
            let files = dir.path().to_path_buf();
            std::thread::spawn(move || {
                std::fs::create_dir_all(&scratch).expect("scratch");
                for name in ["static", "secret", "site.pem", "site.key"] {
                    std::os::unix::fs::symlink(files.join(name), scratch.join(name)).expect("link");
                }
                let mut outcomes = Vec::new();
                for (i, case) in cases.iter().enumerate().skip(w).step_by(WORKERS) {
                    outcomes.push((i, check_case(case, &scratch)));
                }
                outcomes
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut rejected = 0;
    for worker in workers {
        for (i, outcome) in worker.join().expect("worker") {
            match outcome {
                Ok(code) => rejected += usize::from(code == 1),
                Err(why) => failures.push(format!(
                    "case {i} (seed {seed}) [{}]: {why}\nconfig: {}",
                    cases[i].name,
                    show(&cases[i].config)
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The mutations must mostly produce bad files, or this tests little.
    assert!(
        rejected > total / 2,
        "only {rejected} of {total} cases were rejected (seed {seed})"
    );
    eprintln!(
        "{total} configs checked in {:?} ({rejected} rejected, seed {seed})",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------
// Reloading a running wharf with mutated configs
// ---------------------------------------------------------------------

fn reload_body(dead: [std::net::SocketAddr; 2]) -> String {
    format!(
        r#"[[site]]
hosts = ["*"]
  [[site.route]]
  path = "/"
  respond = "original"
  [[site.route]]
  path = "/files/"
  static = "static"
  [[site.route]]
  path = "/api/"
  upstream = "api"
  [[site.route]]
  path = "/old/"
  redirect = "/"
  status = 301
  [site.cors]
  origins = ["https://app.example.com"]
  max_age = "1h"

[upstream.api]
servers = ["{}", {{ addr = "{}", weight = 3, backup = true }}]
retries = 1
[upstream.api.health]
interval = "1s"
timeout = "500ms"
[upstream.api.breaker]
failures = 2
"#,
        dead[0], dead[1]
    )
}

async fn post_reload(wharf: &Wharf) -> Reply {
    let url = format!("http://{}/reload", wharf.admin);
    let client = client();
    let request = send(&client, Method::POST, &url, &[], b"");
    tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("reload answered in time")
}

async fn get_root(wharf: &Wharf) -> Reply {
    tokio::time::timeout(Duration::from_secs(10), get(&wharf.url("/"), &[]))
        .await
        .expect("GET / answered in time")
}

/// Writes the config file whole, as an editor or deploy tool would.
fn write_config(wharf: &Wharf, body: &[u8]) {
    let mut text = config_text(wharf.dir.path(), "", "").into_bytes();
    text.extend_from_slice(body);
    let tmp = wharf.dir.path().join("wharf.toml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, &wharf.config_path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_loses_nothing_and_a_good_one_is_one_check_accepts() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5EED);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("static")).expect("static");
    std::fs::write(dir.path().join("static/a.txt"), "a").expect("file");
    let good = reload_body([dead_addr(), dead_addr()]);
    let mut wharf = Wharf::start_in(dir, "", &good);
    let file = wharf.config_path.display().to_string();
    let scratch = wharf.dir.path().join("check");
    std::fs::create_dir_all(&scratch).expect("scratch");
    let deadline = Instant::now() + Duration::from_secs(25);
    let (mut accepted, mut rejected) = (0, 0);

    for i in 0..RELOADS {
        assert!(
            Instant::now() < deadline,
            "reloads took too long (seed {seed})"
        );
        let (body, steps) = mutate(&mut rng, &good);
        let case = || {
            format!(
                "reload {i} (seed {seed}) [{}]: {}",
                steps.join("; "),
                show(&body)
            )
        };
        write_config(&wharf, &body);
        let reply = post_reload(&wharf).await;
        assert!(wharf.is_running(), "wharf exited after {}", case());
        let checked = run_check(&wharf.config_path, &scratch, &[]).expect("check in time");
        match reply.status.as_u16() {
            200 => {
                accepted += 1;
                assert_eq!(
                    checked.code,
                    Some(0),
                    "reload accepted a config that check rejects: {}\n{}",
                    case(),
                    checked.stderr
                );
                // Whatever it now serves, it answers.
                get_root(&wharf).await;
                write_config(&wharf, good.as_bytes());
                assert_eq!(
                    post_reload(&wharf).await.status,
                    200,
                    "restoring after {}",
                    case()
                );
            }
            422 => {
                rejected += 1;
                let error = reply.json()["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                judge_errors(&file, &error)
                    .unwrap_or_else(|why| panic!("{why} for {}:\n{error}", case()));
                assert_eq!(
                    checked.code,
                    Some(1),
                    "check accepts a config that reload rejects: {}\n{error}",
                    case()
                );
            }
            other => panic!("reload answered {other} for {}: {}", case(), reply.text()),
        }
        let answer = get_root(&wharf).await;
        assert_eq!(
            (answer.status.as_u16(), answer.text().as_str()),
            (200, "original"),
            "the running config stopped serving after {}",
            case()
        );
    }
    assert!(
        rejected > RELOADS / 2,
        "only {rejected} of {RELOADS} reloads were rejected (seed {seed})"
    );

    write_config(&wharf, good.as_bytes());
    wharf.signal("HUP");
    let reloaded = eventually(Duration::from_secs(10), || {
        wharf.logs_count("config reloaded") > accepted * 2
    })
    .await;
    assert!(
        reloaded,
        "SIGHUP with the good config was not applied: {:?}",
        wharf.logs()
    );
    assert_eq!(get_root(&wharf).await.text(), "original");
    assert!(wharf.is_running());
    assert!(
        !wharf.logs().iter().any(|l| l.contains("panicked")),
        "wharf panicked (seed {seed}): {:?}",
        wharf.logs()
    );
}
