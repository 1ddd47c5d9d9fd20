//! `wharf reload`: POST /reload to a running wharf's admin API and report
//! what it said.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config;

pub fn reload(path: &Path, admin: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let admin = match admin {
        Some(addr) => addr,
        None => {
            let config = config::load(path).map_err(|errors| {
                anyhow::anyhow!(
                    "{errors}\nthe running wharf would reject this config too; fix it first"
                )
            })?;
            match config.server.admin {
                Some(addr) => addr,
                None => bail!(
                    "server.admin is \"off\" in {}; send SIGHUP to the wharf process instead",
                    path.display()
                ),
            }
        }
    };
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let request = http::Request::post(format!("http://{admin}/reload"))
            .body(Empty::new())
            .context("building the reload request")?;
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the admin API at {admin}; is wharf running?"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status.is_success() {
            println!("wharf: config reloaded");
            Ok(ExitCode::SUCCESS)
        } else {
            let reason = answer["error"].as_str().unwrap_or("unknown reason");
            eprintln!("wharf: reload rejected, the previous config keeps serving:\n{reason}");
            Ok(ExitCode::FAILURE)
        }
    })
}
