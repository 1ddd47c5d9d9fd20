//! `wharf hash-password`: the bcrypt hash of a password for
//! `[site.route.basic_auth.users]`, as `caddy hash-password` and
//! `htpasswd -nbB` make them. From a terminal the password is asked
//! twice without echo; otherwise it is read from standard input (one
//! line), so scripts can pipe it in.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

pub fn hash_password(cost: u32) -> anyhow::Result<ExitCode> {
    if !(4..=31).contains(&cost) {
        anyhow::bail!("--cost {cost} is outside bcrypt's 4 to 31; 12 (the default) takes about 0.25 s per check");
    }
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = ask("password: ")?;
        let again = ask("again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ; nothing was hashed");
        }
        first
    } else {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty; give one on standard input or at the prompt");
    }
    if password.len() > 72 {
        anyhow::bail!("bcrypt uses only the first 72 bytes of a password; give a shorter one");
    }
    let hash = bcrypt::hash(&password, cost)?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal with echo off, and turns it back on whatever
/// happens.
fn ask(prompt: &str) -> anyhow::Result<String> {
    let mut stderr = std::io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(echo);
    stderr.write_all(b"\n")?;
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// The terminal's echo turned off while this lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on standard input with a zeroed,
        // properly sized termios the call fills in.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return EchoOff(None);
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}
