//! `wharf echo`: the debugging backend (see `crate::echo`).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;

pub fn echo(bind: IpAddr, port: u16) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(bind, port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}; choose another --port"))?;
        let local = listener.local_addr()?;
        // Tests and scripts read this line to learn a port-0 address.
        println!("wharf echo listening on http://{local}");
        tokio::select! {
            served = crate::echo::serve(listener) => served?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}
