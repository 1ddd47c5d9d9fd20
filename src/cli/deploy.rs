//! `wharf deploy APP`: a zero-downtime rolling deploy of one app, through
//! the admin API of the running wharf.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use super::admin_client;

pub fn deploy(
    path: Option<&Path>,
    admin: Option<SocketAddr>,
    app: &str,
) -> anyhow::Result<ExitCode> {
    let (admin, token) = admin_client::resolve(path, admin)?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        eprintln!("wharf: deploying {app} (one instance at a time)...");
        let (status, answer) = admin_client::call(
            admin,
            token.as_deref(),
            http::Method::POST,
            &format!("/apps/{app}/deploy"),
        )
        .await?;
        if status.is_success() {
            println!("wharf: {app} deployed");
            Ok(ExitCode::SUCCESS)
        } else {
            let reason = answer["error"].as_str().unwrap_or("unknown reason");
            eprintln!("wharf: deploy of {app} failed: {reason}");
            Ok(ExitCode::FAILURE)
        }
    })
}
