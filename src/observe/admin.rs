//! The admin API (axum), on its own listener, loopback by default.
//!
//! Open to anyone who can connect: `GET /healthz` (alive), `GET /readyz`
//! (config loaded, listeners bound, and every app an upstream proxies to
//! has an instance serving) and `GET /` (the status page: static
//! HTML and JavaScript, no data of its own). Everything else needs
//! authorization: `GET /metrics` (Prometheus), `GET /status` (JSON),
//! `POST /reload` (same as SIGHUP, but answers with the result) and
//! `POST /apps/NAME/deploy` (rolling deploy).
//!
//! Authorization: with `server.admin_token` set, a request must carry
//! `Authorization: Bearer <token>`. Without a token, only loopback clients
//! are served: binding the admin API to a public address does not make it
//! public until a token protects it (`wharf check` warns about this).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::history::History;
use super::{process, scrape, status};
use crate::server::Server;

/// The status page: one self-contained file, no external resources.
const STATUS_PAGE: &str = include_str!("status_page.html");

#[derive(Clone)]
struct Admin {
    server: Arc<Server>,
    history: Arc<History>,
}

/// Serves the admin API until shutdown.
pub fn spawn(listener: TcpListener, server: Arc<Server>) {
    process::start_time();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "admin API listening");
    }
    if let Some(warning) = crate::config::admin_warning(&server.snapshot().config.server) {
        tracing::warn!(warning = %warning, "admin API exposure");
    }
    let mut shutdown = server.shutdown_signal();
    let state = Admin {
        history: History::spawn(server.shutdown_signal()),
        server,
    };
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/reload", post(reload))
        .route("/apps/{name}/deploy", post(deploy))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    let app = Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .with_state(state);
    tokio::spawn(async move {
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|closing| *closing).await;
        })
        .await;
        if let Err(error) = served {
            tracing::error!(error = %error, "admin API stopped");
        }
    });
}

/// Lets a request through if it carries the token, or, without a token
/// configured, if it comes from loopback.
async fn authorize(
    State(admin): State<Admin>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let snapshot = admin.server.snapshot();
    match &snapshot.config.server.admin_token {
        Some(token) => {
            if bearer_matches(request.headers(), token) {
                return next.run(request).await;
            }
            let mut response = (
                StatusCode::UNAUTHORIZED,
                Json(json!({ "error": "send the admin token: Authorization: Bearer <server.admin_token>" })),
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"wharf admin\""),
            );
            response
        }
        None if peer.ip().is_loopback() => next.run(request).await,
        None => {
            tracing::warn!(client = %peer, path = %request.uri().path(), "admin request refused: not from loopback and no admin_token is set");
            (
                StatusCode::FORBIDDEN,
                Json(json!({ "error": "the admin API serves only loopback clients until server.admin_token is set" })),
            )
                .into_response()
        }
    }
}

/// Compares in time independent of where the first difference is.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (given, token) = (given.trim().as_bytes(), token.as_bytes());
    given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn page() -> Response {
    let mut response = Html(STATUS_PAGE).into_response();
    let headers = response.headers_mut();
    // The page talks only to this origin and runs only its own script.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(admin): State<Admin>) -> (StatusCode, Json<Value>) {
    if !admin.server.is_ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready" })),
        );
    }
    let waiting = admin.server.apps_not_serving();
    if waiting.is_empty() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "apps_not_serving": waiting })),
        )
    }
}

async fn metrics(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let body = scrape::render(&admin.server, openmetrics);
    let content_type = if openmetrics {
        scrape::OPENMETRICS
    } else {
        scrape::TEXT
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn status(State(admin): State<Admin>) -> Json<status::Status> {
    Json(status::collect(&admin.server, &admin.history))
}

async fn reload(State(admin): State<Admin>) -> (StatusCode, Json<Value>) {
    match admin.server.reload().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "reloaded" }))),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "status": "rejected", "error": error.to_string() })),
        ),
    }
}

async fn deploy(State(admin): State<Admin>, Path(name): Path<String>) -> (StatusCode, Json<Value>) {
    super::sources::deploy(&admin.server, &name).await
}
