//! Talking to a running wharf's admin API from the CLI (`reload`,
//! `deploy`, `status`): find its address, send one request, read JSON.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::demo;
use crate::config;

/// The config file the admin commands read when none is named, as `wharf run` does.
pub const DEFAULT_CONFIG: &str = "wharf.toml";

/// The admin address: `--admin`, else `server.admin` from the config file
/// (`named`, or `./wharf.toml`). Without `-c` and without `./wharf.toml`,
/// `wharf run` serves the embedded demo, so its admin address is used.
/// Also returns the bearer token from the config, if any.
pub fn resolve(
    named: Option<&Path>,
    admin: Option<SocketAddr>,
) -> anyhow::Result<(SocketAddr, Option<String>)> {
    let path = named.unwrap_or(Path::new(DEFAULT_CONFIG));
    if !path.exists() {
        if let Some(addr) = admin {
            return Ok((addr, None));
        }
        if named.is_some() {
            bail!(
                "the config file {} does not exist; name the file wharf runs with (-c), or pass --admin",
                path.display()
            );
        }
        return match demo::admin()? {
            Some(addr) => Ok((addr, None)),
            None => bail!("the embedded demo has no admin API; pass --admin"),
        };
    }
    let loaded = config::load(path);
    let token = loaded
        .as_ref()
        .ok()
        .and_then(|c| c.server.admin_token.clone());
    if let Some(addr) = admin {
        return Ok((addr, token));
    }
    let config = loaded.map_err(|errors| {
        anyhow::anyhow!(
            "{errors}\ncannot find the admin address in a broken config; fix it or pass --admin"
        )
    })?;
    match config.server.admin {
        Some(addr) => Ok((addr, token)),
        None => bail!(
            "server.admin is \"off\" in {}; enable it or pass --admin",
            path.display()
        ),
    }
}

/// Sends `method path` and returns the status and the JSON answer.
pub async fn call(
    admin: SocketAddr,
    token: Option<&str>,
    method: http::Method,
    path: &str,
) -> anyhow::Result<(http::StatusCode, serde_json::Value)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{admin}{path}"));
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(bytes::Bytes::new()))
        .context("building the admin request")?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("cannot reach the admin API at {admin}; is wharf running?"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let answer = serde_json::from_slice(&body).unwrap_or_default();
    Ok((status, answer))
}
