//! Reading a failed attempt's error: whether a cause is in its chain (the
//! client's body, a size limit, a timeout), and the chain as one line for
//! wharf's log; and the 503 when no server can be tried at all.

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::Body;
use crate::response;

/// 503 with `Retry-After` when no server can take the request.
pub(super) fn unavailable(retry_after: std::time::Duration) -> Response<Body> {
    let mut response = response::status(StatusCode::SERVICE_UNAVAILABLE);
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Whether `E` is in `error`'s chain of sources.
pub(super) fn caused_by<E: std::error::Error + 'static>(
    error: &(dyn std::error::Error + 'static),
) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if e.is::<E>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// "outer: inner: innermost", for logs.
pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::pool;

    #[test]
    fn an_upstream_failure_names_its_cause_once() {
        let refused = pool::SendError::Connect {
            addr: "127.0.0.1:1".parse().expect("addr"),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let text = error_chain(&refused);
        assert!(
            text.starts_with("cannot connect to 127.0.0.1:1: "),
            "{text}"
        );
        assert_eq!(text.to_lowercase().matches("refused").count(), 1, "{text}");
        let failed = pool::SendError::Failed {
            addr: "127.0.0.1:1".parse().expect("addr"),
            source: "reset".into(),
        };
        assert_eq!(error_chain(&failed), "request to 127.0.0.1:1 failed: reset");
    }
}
