//! `wharf reload`: POST /reload to a running wharf's admin API and report
//! what it said.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use super::admin_client;

pub fn reload(path: Option<&Path>, admin: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let file = path.unwrap_or(Path::new(admin_client::DEFAULT_CONFIG));
    // Without the file, resolve says why (a named file is missing) or
    // reaches the embedded demo, which reloads its own config.
    if admin.is_none() && file.exists() {
        // A config the running wharf would reject is reported here, with
        // positions, rather than as a bare "rejected".
        if let Err(errors) = crate::config::load(file) {
            eprintln!("{errors}\nwharf: the running wharf would reject this config; fix it first");
            return Ok(ExitCode::FAILURE);
        }
    }
    let (admin, token) = admin_client::resolve(path, admin)?;
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let (status, answer) =
            admin_client::call(admin, token.as_deref(), http::Method::POST, "/reload").await?;
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
