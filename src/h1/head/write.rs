//! Small writers for the client's side: the end of every response head,
//! wharf's own short answers, the `Date` field and chunk headers.

use super::response::Extra;

/// Ends a response head with what the client side adds, and the blank line.
pub fn write_extra(out: &mut Vec<u8>, extra: &Extra<'_>) {
    out.extend_from_slice(b"x-request-id: ");
    out.extend_from_slice(extra.request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(hsts) = extra.hsts {
        out.extend_from_slice(b"strict-transport-security: ");
        out.extend_from_slice(hsts.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if extra.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A short plain-text response like `response::status`, written whole;
/// or the site's error page for the status, as the general path gives it.
pub fn write_status(
    out: &mut Vec<u8>,
    status: http::StatusCode,
    extra: &Extra<'_>,
    more: &[(&str, &str)],
) {
    let reason = status.canonical_reason().unwrap_or("");
    let page = extra.pages.and_then(|pages| pages.page(status.as_u16()));
    let plain;
    let (body, content_type): (&[u8], &[u8]) = match page {
        Some(page) => (page, b"text/html; charset=utf-8"),
        None => {
            plain = format!("{} {}\n", status.as_u16(), reason);
            (plain.as_bytes(), b"text/plain; charset=utf-8")
        }
    };
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", status.as_u16(), reason).as_bytes());
    out.extend_from_slice(b"content-type: ");
    out.extend_from_slice(content_type);
    out.extend_from_slice(b"\r\n");
    write_date(out);
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    for (name, value) in more {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    write_extra(out, extra);
    if !extra.head_request {
        out.extend_from_slice(body);
    }
}

/// Writes a `date` field for now, as hyper adds to every answer; the
/// text is made once a second per thread.
pub fn write_date(out: &mut Vec<u8>) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            *date = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Writes a chunk header for `len` bytes of data.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
}
