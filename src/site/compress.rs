//! A site's compression: which answers are compressed (tower-http's
//! predicate, adjusted), small answers of known length compressed in one
//! call (`encode.rs`), longer ones streamed through tower-http's layer, and
//! the ETag made weak when the bytes changed. Used by `Handler` for the
//! general path and by the fast path (`h1::exchange::compress`).

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use tower::Layer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;

use crate::body::{self, Body};
use crate::{encode, response};

/// Which responses get compressed: tower-http's defaults (not images, not
/// gRPC, not tiny bodies) minus responses whose status makes it wrong.
#[derive(Clone, Default)]
pub struct Compressible(DefaultPredicate);

impl Predicate for Compressible {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: http_body::Body,
    {
        !matches!(response.status().as_u16(), 101 | 204 | 206 | 304)
            && self.0.should_compress(response)
    }
}

/// Marks a response that left the routes without a `Content-Encoding`, so
/// an encoding found after compression was added on the fly.
#[derive(Clone, Copy)]
pub(super) struct Identity;

/// A strong ETag names exact bytes; once compression changed the bytes it
/// must become weak (RFC 9110 8.8.3), or caches would mix the encodings.
pub(super) fn weaken_etag_if_compressed<B>(mut response: Response<B>) -> Response<B> {
    let compressed_here = response.extensions().get::<Identity>().is_some()
        && response.headers().contains_key(header::CONTENT_ENCODING);
    if compressed_here {
        weaken_etag(response.headers_mut());
    }
    response
}

/// Makes a strong `ETag` weak (`W/"..."`); a weak one stays as it is.
pub(crate) fn weaken_etag(headers: &mut http::HeaderMap) {
    if let Some(etag) = headers.get(header::ETAG) {
        if !etag.as_bytes().starts_with(b"W/") {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(etag.as_bytes());
            if let Ok(value) = HeaderValue::from_bytes(&weak) {
                headers.insert(header::ETAG, value);
            }
        }
    }
}

/// Compresses a relayed answer on the HTTP/1.1 fast path (`h1::exchange`)
/// as a site's stack would: the same layer, predicate and ETag rule,
/// negotiated with the client's `Accept-Encoding` values. `None` only if
/// the layer failed to call its inner service, which it always does.
pub(crate) async fn compress<B>(
    accept_encoding: impl IntoIterator<Item = HeaderValue>,
    mut response: Response<B>,
) -> Option<Response<tower_http::compression::CompressionBody<B>>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<tower::BoxError>,
{
    use tower::ServiceExt;
    let mut request = Request::new(());
    for value in accept_encoding {
        request.headers_mut().append(header::ACCEPT_ENCODING, value);
    }
    // It left the routes without an encoding, as `Handler` marks it.
    response.extensions_mut().insert(Identity);
    let mut answer = Some(response);
    let inner =
        tower::service_fn(move |_: Request<()>| std::future::ready(answer.take().ok_or(())));
    let compressed = CompressionLayer::new()
        .compress_when(Compressible::default())
        .layer(inner)
        .oneshot(request)
        .await
        .ok()?;
    Some(weaken_etag_if_compressed(compressed))
}

/// Appends `Vary: accept-encoding` unless a `Vary` value names it, as
/// tower-http's compression layer does for an answer it could compress.
pub(super) fn add_vary_accept_encoding(headers: &mut http::HeaderMap) {
    let named = headers.get_all(header::VARY).iter().any(|value| {
        value
            .as_bytes()
            .windows(b"accept-encoding".len())
            .any(|window| window.eq_ignore_ascii_case(b"accept-encoding"))
    });
    if !named {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// Whether tower-http's compression layer (`compress`) would change an
/// answer `compress_whole` left: it adds `Vary`, and compresses as it
/// streams. Only those go through it: the layer's body type holds every
/// encoder's state by value (5.8 KB), moved several times on its way out.
pub(super) fn layer_touches(answer: &Response<Body>) -> bool {
    !answer.headers().contains_key(header::CONTENT_ENCODING)
        && !answer.headers().contains_key(header::CONTENT_RANGE)
        && Compressible::default().should_compress(answer)
}

/// The encoding to compress `response` with in one call (`encode.rs`):
/// a small answer of known length the compression layer would compress,
/// with the encoding it would choose. `None` leaves the answer to the
/// layer, which then passes a compressed answer on untouched (it has a
/// `Content-Encoding`).
pub(super) fn whole_encoding(
    accept: &[HeaderValue],
    response: &Response<Body>,
) -> Option<encode::Encoding> {
    use http_body::Body as _;
    if accept.is_empty() {
        return None;
    }
    let encoding = encode::negotiate(accept.iter().map(HeaderValue::as_bytes));
    let length = response.body().size_hint().exact().or_else(|| {
        response
            .headers()
            .get(header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    });
    let whole = encoding != encode::Encoding::Identity
        && length.is_some_and(|length| length <= encode::ONE_SHOT)
        && !response.headers().contains_key(header::CONTENT_RANGE)
        && Compressible::default().should_compress(response);
    whole.then_some(encoding)
}

/// Compresses a small answer of known length in one call with `encoding`
/// ([`whole_encoding`]).
pub(super) async fn compress_whole(
    encoding: encode::Encoding,
    response: Response<Body>,
) -> Response<Body> {
    use http_body_util::BodyExt;
    let (mut parts, mut body) = response.into_parts();
    // The length was announced; a body that brings more is not read on.
    let mut data = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let data_frame = match frame {
            Ok(frame) => frame.into_data().unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %error, "reading an answer to compress failed");
                return response::status(StatusCode::BAD_GATEWAY);
            }
        };
        data.extend_from_slice(&data_frame);
        if data.len() as u64 > encode::ONE_SHOT {
            tracing::warn!("an answer was longer than its announced length");
            return response::status(StatusCode::BAD_GATEWAY);
        }
    }
    match encode::compress(encoding, &data) {
        Ok(compressed) => {
            encode::mark(&mut parts.headers, encoding);
            Response::from_parts(parts, body::full(compressed))
        }
        Err(error) => {
            // The layer gets the bytes and may still compress them.
            tracing::warn!(error = %error, "compressing an answer failed");
            Response::from_parts(parts, body::full(data))
        }
    }
}
