//! Guard 1 of static serving: the request path percent-decoded here, and
//! refused before `ServeDir` sees it when any spelling of it could climb
//! out of the root or hide a separator.

/// Percent-decodes `rest` and returns it if it is a plain path of normal
/// segments; `None` for anything that could climb out or alias a separator.
pub(super) fn decode_path(rest: &str) -> Option<String> {
    let raw = rest.as_bytes();
    if raw.first() != Some(&b'/') {
        return None;
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        let byte = if byte == b'%' {
            let high = bytes.next().and_then(|b| hex(*b))?;
            let low = bytes.next().and_then(|b| hex(*b))?;
            let byte = high << 4 | low;
            if byte == b'/' {
                return None;
            }
            byte
        } else {
            byte
        };
        if byte == b'\\' || byte.is_ascii_control() {
            return None;
        }
        decoded.push(byte);
    }
    let decoded = String::from_utf8(decoded).ok()?;
    let mut segments = decoded[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        // An empty last segment is the trailing slash of a directory.
        if (segment.is_empty() && !last)
            || (!segment.is_empty() && segment.bytes().all(|b| b == b'.'))
        {
            return None;
        }
    }
    Some(decoded)
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
