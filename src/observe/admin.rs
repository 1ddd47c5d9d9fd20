//! The admin API (axum), on its own listener, loopback by default:
//! `GET /healthz` (alive), `GET /readyz` (config loaded, listeners bound),
//! `POST /reload` (same as SIGHUP, but answers with the result).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::server::Server;

/// Serves the admin API until shutdown.
pub fn spawn(listener: TcpListener, server: Arc<Server>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "admin API listening");
    }
    let mut shutdown = server.shutdown_signal();
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/reload", post(reload))
        .with_state(server);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|closing| *closing).await;
            })
            .await;
        if let Err(error) = served {
            tracing::error!(error = %error, "admin API stopped");
        }
    });
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(server): State<Arc<Server>>) -> (StatusCode, Json<Value>) {
    if server.is_ready() {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready" })),
        )
    }
}

async fn reload(State(server): State<Arc<Server>>) -> (StatusCode, Json<Value>) {
    match server.reload().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "reloaded" }))),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "status": "rejected", "error": error.to_string() })),
        ),
    }
}
