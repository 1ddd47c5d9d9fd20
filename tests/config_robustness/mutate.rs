//! Mutations of a valid config, one to three per case: values of every
//! other type or out of range, broken `${...}`, stray keys and tables,
//! bytes that matter to TOML, to UTF-8 and to line counting, deep
//! nesting and long values.

use super::*;

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
pub(crate) fn mutate(rng: &mut fastrand::Rng, base: &str) -> (Vec<u8>, Vec<String>) {
    let mut data = base.as_bytes().to_vec();
    let steps = (0..rng.usize(1..=3))
        .map(|_| mutate_once(rng, &mut data))
        .collect();
    (data, steps)
}
