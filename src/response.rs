//! wharf's own answers: error pages, redirects and fixed responses.
//!
//! Error bodies are short fixed texts; internal error details go to the log,
//! never to the client.

use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};
use crate::site::error_pages::Generated;

/// A short plain-text response such as `502 Bad Gateway`.
pub fn status(code: StatusCode) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        code.as_u16(),
        code.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(body::full(text));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // A site's error page may stand in for it.
    response.extensions_mut().insert(Generated);
    response
}

/// A redirect to `location`.
pub fn redirect(code: StatusCode, location: HeaderValue) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = code;
    response.headers_mut().insert(header::LOCATION, location);
    response
}
