//! A site's request handling: its routes, wrapped in its CORS and
//! compression layers.
//!
//! Built once per config load. In: a request whose host chose this site.
//! Out: the response of the matching route's action (proxy, static files,
//! redirect, fixed response), compressed when the client accepts it. CORS
//! preflights are answered by the CORS layer and never reach an upstream.

use crate::route::headers::RouteHeaders;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tower::util::Either;
use tower::{Layer, Service};
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Cors, CorsLayer, ExposeHeaders};

use crate::balance::Pool;
use crate::body::{self, Body};
use crate::encode;
use crate::files::StaticFiles;
use crate::observe::metrics::RouteMetrics;
use crate::observe::request::RouteSlot;
use crate::response;
use crate::route::PathTable;
use crate::{config, proxy};

/// What a matched route does, ready to run.
pub enum Action {
    Proxy {
        pool: Arc<Pool>,
        /// `strip_prefix`: the route's path, taken off the request's.
        strip: Option<Arc<str>>,
    },
    Static(Arc<StaticFiles>),
    Redirect {
        status: StatusCode,
        location: String,
        /// Append the path after the prefix (and the query) to `location`.
        append_rest: bool,
    },
    Respond {
        status: StatusCode,
        body: Bytes,
        content_type: HeaderValue,
    },
}

/// One route: what it does, the handles its requests are counted with,
/// and the headers it sets on its answers.
pub struct Route {
    pub action: Action,
    pub metrics: RouteMetrics,
    pub headers: Option<Arc<RouteHeaders>>,
}

/// The routes of one site.
pub struct Routes {
    pub table: PathTable<Route>,
    pub max_body_size: u64,
}

/// The innermost service of a site: route lookup and action.
#[derive(Clone)]
pub struct Handler(Arc<Routes>);

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
struct Identity;

/// A strong ETag names exact bytes; once compression changed the bytes it
/// must become weak (RFC 9110 8.8.3), or caches would mix the encodings.
fn weaken_etag_if_compressed<B>(mut response: Response<B>) -> Response<B> {
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

/// A site's full stack: optional CORS, then the routes, whose answers
/// [`Handler`] compresses.
pub type SiteService = Either<Cors<Handler>, Handler>;

/// Builds the stack for one site.
pub fn service(routes: Arc<Routes>, cors: Option<&config::Cors>) -> SiteService {
    let handler = Handler(routes);
    match cors {
        Some(cors) => Either::Left(cors_layer(cors).layer(handler)),
        None => Either::Right(handler),
    }
}

fn cors_layer(cors: &config::Cors) -> CorsLayer {
    let origin = if cors.origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            cors.origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    let methods: Vec<Method> = cors
        .methods
        .iter()
        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
        .collect();
    let headers = match &cors.headers {
        Some(list) => AllowHeaders::list(
            list.iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        ),
        // Not written: whatever the preflight asks for (the origin is
        // still checked), so a JSON `POST` works without a list.
        None => AllowHeaders::mirror_request(),
    };
    let expose: Vec<HeaderName> = cors
        .expose_headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .collect();
    let mut layer = CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(AllowMethods::list(methods))
        .allow_headers(headers)
        .expose_headers(ExposeHeaders::list(expose))
        .allow_credentials(cors.credentials);
    if let Some(max_age) = cors.max_age {
        layer = layer.max_age(max_age);
    }
    layer
}

impl Service<Request<Incoming>> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let routes = self.0.clone();
        let head = req.method() == Method::HEAD;
        let accept: Vec<HeaderValue> = {
            let values = req.headers().get_all(header::ACCEPT_ENCODING);
            values.iter().cloned().collect()
        };
        Box::pin(async move {
            let mut answer = routes.handle(req).await;
            if answer.headers().contains_key(header::CONTENT_ENCODING) {
                return Ok(answer);
            }
            answer.extensions_mut().insert(Identity);
            // A HEAD answer has no body to compress; the layer decides
            // its headers.
            if let Some(encoding) = (!head).then(|| whole_encoding(&accept, &answer)).flatten() {
                // Boxed, like the layer below: rare work should not make
                // every answer's future (moved several times) larger.
                answer = Box::pin(compress_whole(encoding, answer)).await;
            }
            if !layer_touches(&answer) {
                return Ok(weaken_etag_if_compressed(answer));
            }
            if encode::negotiate(accept.iter().map(HeaderValue::as_bytes))
                == encode::Encoding::Identity
            {
                // All the layer would do: say the answer depends on it.
                add_vary_accept_encoding(answer.headers_mut());
                return Ok(answer);
            }
            Ok(match Box::pin(compress(accept, answer)).await {
                Some(compressed) => compressed.map(body::boxed),
                // `compress` always calls its inner service.
                None => response::status(StatusCode::INTERNAL_SERVER_ERROR),
            })
        })
    }
}

/// Appends `Vary: accept-encoding` unless a `Vary` value names it, as
/// tower-http's compression layer does for an answer it could compress.
fn add_vary_accept_encoding(headers: &mut http::HeaderMap) {
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
fn layer_touches(answer: &Response<Body>) -> bool {
    !answer.headers().contains_key(header::CONTENT_ENCODING)
        && !answer.headers().contains_key(header::CONTENT_RANGE)
        && Compressible::default().should_compress(answer)
}

/// The encoding to compress `response` with in one call (`encode.rs`):
/// a small answer of known length the compression layer would compress,
/// with the encoding it would choose. `None` leaves the answer to the
/// layer, which then passes a compressed answer on untouched (it has a
/// `Content-Encoding`).
fn whole_encoding(accept: &[HeaderValue], response: &Response<Body>) -> Option<encode::Encoding> {
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
async fn compress_whole(encoding: encode::Encoding, response: Response<Body>) -> Response<Body> {
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

impl Routes {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        // Uri clones share their bytes; this frees `req` to move on.
        let uri = req.uri().clone();
        let Some(matched) = self.table.lookup(uri.path()) else {
            return response::status(StatusCode::NOT_FOUND);
        };
        let route = matched.value;
        // For observe/request.rs: which route this request is counted under,
        // also if the client leaves before the answer.
        if let Some(slot) = req.extensions().get::<RouteSlot>() {
            slot.set(&route.metrics);
        }
        let mut response = match &route.action {
            // Boxed: the proxy's futures are kilobytes; other routes'
            // requests should not carry (and move) them.
            Action::Proxy { pool, strip } => {
                Box::pin(proxy::forward(
                    req,
                    pool,
                    self.max_body_size,
                    strip.as_deref(),
                ))
                .await
            }
            Action::Static(files) => {
                let rest = matched.rest.to_string();
                files.serve(req, &rest).await
            }
            Action::Redirect {
                status,
                location,
                append_rest,
            } => {
                let target = if *append_rest {
                    let mut target = location.clone();
                    target.push_str(matched.rest.trim_start_matches('/'));
                    if let Some(query) = req.uri().query() {
                        target.push('?');
                        target.push_str(query);
                    }
                    target
                } else {
                    location.clone()
                };
                // "/\\evil.example" or "//evil.example" would send the
                // browser to another host.
                let other_host = target.starts_with('/')
                    && matches!(target.as_bytes().get(1), Some(b'/' | b'\\'));
                match HeaderValue::from_str(&target) {
                    Ok(value) if !other_host => response::redirect(*status, value),
                    _ => response::status(StatusCode::BAD_REQUEST),
                }
            }
            Action::Respond {
                status,
                body,
                content_type,
            } => {
                let mut response = Response::new(body::full(body.clone()));
                *response.status_mut() = *status;
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
                response
            }
        };
        // A static route's files carry them already, 304s included.
        if let Some(headers) = &route.headers {
            if !matches!(route.action, Action::Static(_)) {
                let status = response.status().as_u16();
                headers.apply(status, response.headers_mut());
            }
        }
        response
    }
}
