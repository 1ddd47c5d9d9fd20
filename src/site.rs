//! A site's request handling: its routes, wrapped in its CORS and
//! compression layers.
//!
//! Built once per config load. In: a request whose host chose this site.
//! Out: the response of the matching route's action (proxy, static files,
//! redirect, fixed response), compressed when the client accepts it. CORS
//! preflights are answered by the CORS layer and never reach an upstream.

pub mod basic_auth;
mod compress;
pub mod error_pages;

use compress::{
    add_vary_accept_encoding, compress_whole, layer_touches, weaken_etag_if_compressed,
    whole_encoding, Identity,
};
pub(crate) use compress::{compress, weaken_etag, Compressible};

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
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, Cors, CorsLayer, ExposeHeaders};

use crate::balance::Pool;
use crate::body::{self, Body};
use crate::encode;
use crate::files::StaticFiles;
use crate::observe::metrics::RouteMetrics;
use crate::observe::request::RouteSlot;
use crate::response;
use crate::route::headers::RouteHeaders;
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
/// the headers it sets on its answers, and who may ask.
pub struct Route {
    pub action: Action,
    pub metrics: RouteMetrics,
    pub headers: Option<Arc<RouteHeaders>>,
    /// `basic_auth`: such a route is never answered by the fast path.
    pub auth: Option<basic_auth::BasicAuth>,
}

/// The routes of one site.
pub struct Routes {
    /// `error_pages`: the site's pages for wharf's own error answers.
    pub error_pages: Option<Arc<error_pages::ErrorPages>>,
    pub table: PathTable<Route>,
    pub max_body_size: u64,
}

/// The innermost service of a site: route lookup and action.
#[derive(Clone)]
pub struct Handler(Arc<Routes>);

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

impl Routes {
    /// The route's answer, wharf's own errors in the site's pages.
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let response = self.answer(req).await;
        match &self.error_pages {
            Some(pages) if response.status().as_u16() >= 400 => pages.apply(response),
            _ => response,
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
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
        if let Some(auth) = &route.auth {
            if let Err(challenge) = auth.check(req.headers()).await {
                return challenge;
            }
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
