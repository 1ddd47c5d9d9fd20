//! Mutations any HTTP/1 message can get, shared by the mutated client
//! requests and the mutated upstream answers: bytes flipped, lines
//! dropped or doubled, broken fields and broken chunked bodies.

use super::*;

/// One of the `|`-separated `choices`.
pub(crate) fn pick<'a>(rng: &mut fastrand::Rng, choices: &'a str) -> &'a str {
    let choices: Vec<&str> = choices.split('|').collect();
    choices[rng.usize(..choices.len())]
}

/// Where the first line ends (after its `\n`), or the end.
pub(crate) fn after_first_line(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| i + 1)
}

pub(crate) fn insert_line(data: &mut Vec<u8>, line: &[u8]) {
    let at = after_first_line(data);
    data.splice(at..at, line.iter().copied());
}

/// Start and end (after `\n`) of each line.
fn lines(data: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    spans
}

/// Replaces what follows the (first) blank line with `body`.
pub(crate) fn replace_body(data: &mut Vec<u8>, body: &[u8]) {
    let end = find(data, b"\r\n\r\n").map_or(data.len(), |i| i + 4);
    data.truncate(end);
    data.extend_from_slice(body);
}

/// Replaces the first line's `index`th space-separated word.
pub(crate) fn replace_word(data: &mut Vec<u8>, index: usize, word: &[u8]) {
    let line_end = after_first_line(data).saturating_sub(2);
    let line = &data[..line_end];
    let mut bounds = vec![0];
    bounds.extend(
        line.iter()
            .enumerate()
            .filter(|(_, &b)| b == b' ')
            .map(|(i, _)| i),
    );
    bounds.push(line_end);
    if index + 1 >= bounds.len() {
        return;
    }
    let start = if index == 0 { 0 } else { bounds[index] + 1 };
    let end = bounds[index + 1].max(start);
    data.splice(start..end, word.iter().copied());
}

/// One mutation any HTTP/1 message can get: bytes flipped, inserted or
/// deleted, lines duplicated or dropped, line ends broken, a huge field.
pub(crate) fn mutate_bytes(rng: &mut fastrand::Rng, data: &mut Vec<u8>) {
    if data.is_empty() {
        data.push(rng.u8(..));
        return;
    }
    let at = rng.usize(..data.len());
    match rng.u8(..11) {
        0 => data[at] ^= 1 << rng.u8(..8),
        1 => data.insert(at, rng.u8(..)),
        2 => {
            data.remove(at);
        }
        3 => data.truncate(at.max(1)),
        4 => data.insert(at, 0),
        5 | 6 => {
            // A CR without LF, or a bare LF, in place of one CRLF.
            let ends: Vec<usize> = (0..data.len().saturating_sub(1))
                .filter(|&i| data[i..i + 2] == *b"\r\n")
                .collect();
            if !ends.is_empty() {
                let i = ends[rng.usize(..ends.len())];
                data.remove(if rng.bool() { i + 1 } else { i });
            }
        }
        7 | 8 => {
            let spans = lines(data);
            if !spans.is_empty() {
                let (start, end) = spans[rng.usize(..spans.len())];
                let line = data[start..end].to_vec();
                if rng.bool() {
                    data.splice(end..end, line);
                } else {
                    data.drain(start..end);
                }
            }
        }
        9 => {
            // Longer than `max_header_size` (64 KiB).
            let mut line = b"X-Huge: ".to_vec();
            line.resize(8 + rng.usize(65_000..80_000), b'a');
            line.extend_from_slice(b"\r\n");
            insert_line(data, &line);
        }
        _ => {
            let junk: Vec<u8> = (0..rng.usize(1..40)).map(|_| rng.u8(0x20..0x7f)).collect();
            data.splice(at..at, junk);
        }
    }
}

/// Field lines that are wrong in the same way for requests and answers.
pub(crate) fn bad_field(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..6) {
        0 => "Bad Name: x\r\n".into(),
        1 => "NoColonHere\r\n".into(),
        2 => ": no-name\r\n".into(),
        3 => "X-Fold: a\r\n  folded onto the line above\r\n".into(),
        4 => format!(
            "Content-Length: {}\r\n",
            pick(
                rng,
                "-1|abc|99999999999999999999999|+5|0x10|5, 6|1 1||18446744073709551616"
            )
        ),
        _ => format!(
            "Transfer-Encoding: {}\r\n",
            pick(
                rng,
                "chunked, chunked|gzip|identity| chunked|xchunked|chunked\x0b"
            )
        ),
    }
}

/// A chunked body that no 64-bit length can hold, or otherwise broken.
pub(crate) fn bad_chunks(rng: &mut fastrand::Rng) -> &'static [u8] {
    match rng.u8(..4) {
        0 => b"ffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        1 => b"-1\r\nabc\r\n0\r\n\r\n",
        2 => b"5;ext=\"unterminated\r\nhello\r\n0\r\n\r\n",
        _ => b"5\r\nhelloXX0\r\n\r\n",
    }
}
