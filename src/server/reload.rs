//! Reloading: the config read again and swapped in only when all of it
//! builds (snapshot, new listeners, certificates), the access log reopened
//! by its path, and the snapshot rebuilt when app instances come or go.

use std::sync::Arc;

use crate::observe::logging;
use crate::snapshot::Snapshot;

use super::{listener, lock, Error, Server, Source};

impl Server {
    /// Reopens the access log file by its path (SIGUSR1, and every
    /// reload), so a log rotated away is replaced by a new file. The
    /// outcome is logged; a failure leaves the old file in use.
    pub fn reopen_logs(&self) {
        match self.snapshot().access.reopen() {
            Ok(Some(path)) => tracing::info!(path = %path.display(), "access log reopened"),
            Ok(None) => {}
            Err(error) => tracing::error!(error = %error, "access log not reopened"),
        }
    }

    /// Reads the config again and swaps it in if it is entirely good.
    /// The access log file is reopened first, whatever becomes of the
    /// new config (logrotate's `kill -HUP` must not depend on it).
    pub async fn reload(self: &Arc<Self>) -> Result<(), Error> {
        let _one_at_a_time = self.reloading.lock().await;
        self.reopen_logs();
        let result = self.try_reload();
        crate::observe::metrics::global().reloaded(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(source = %self.source_name(), "config reloaded"),
            Err(error) => tracing::error!(
                source = %self.source_name(),
                error = %error,
                "config reload rejected; the previous config keeps serving"
            ),
        }
        result
    }

    fn try_reload(self: &Arc<Self>) -> Result<(), Error> {
        let config = self.source.load()?;
        let old = self.snapshot();
        if config.server.admin != old.config.server.admin {
            tracing::warn!("server.admin changed; the admin API moves only on restart");
        }
        self.supervisor.start_new(&config)?;
        let snapshot = Snapshot::build(
            config,
            &self.clients,
            &self.registry,
            &self.supervisor,
            Some(&old),
        )?;
        let wanted = snapshot.config.server.listen.clone();
        let mut listeners = lock(&self.listeners);
        // Bind new addresses before anything changes, so a taken port
        // rejects the whole reload.
        let mut added = Vec::new();
        for addr in wanted.iter().filter(|a| !listeners.contains_key(a)) {
            added.push((*addr, listener::bind(*addr)?));
        }
        let https_wanted = snapshot.config.server.https.clone();
        let mut added_https = Vec::new();
        for addr in https_wanted.iter() {
            if !listeners.get(addr).is_some_and(|h| h.https) {
                added_https.push((*addr, listener::bind(*addr)?));
            }
        }
        let first_https = https_wanted
            .first()
            .and_then(|addr| match listeners.get(addr) {
                Some(handle) if handle.https => Some(handle.local.port()),
                _ => added_https
                    .iter()
                    .find(|(a, _)| a == addr)
                    .and_then(|(_, tcp)| tcp.local_addr().ok())
                    .map(|a| a.port()),
            });
        self.tls.apply(&snapshot.config, first_https)?;
        logging::set_level(&snapshot.config.log.level);
        let snapshot = Arc::new(snapshot);
        self.current.store(snapshot.clone());
        old.retire();
        snapshot.activate(&self.registry);
        listeners.retain(|addr, handle| match handle.https {
            true => https_wanted.contains(addr),
            false => wanted.contains(addr),
        });
        for (addr, tcp) in added {
            listeners.insert(addr, listener::spawn(tcp, self.clone()));
        }
        for (addr, tcp) in added_https {
            listeners.insert(addr, listener::spawn_https(tcp, self.clone()));
        }
        self.supervisor.apply_changes(&snapshot.config);
        Ok(())
    }

    /// Rebuilds the snapshot from the current config whenever app
    /// instances come or go, so upstream pools follow them.
    pub(super) fn follow_instances(self: &Arc<Self>) {
        let server = Arc::downgrade(self);
        let supervisor = self.supervisor.clone();
        tokio::spawn(async move {
            loop {
                supervisor.changed.notified().await;
                let Some(server) = server.upgrade() else {
                    return;
                };
                let _one_at_a_time = server.reloading.lock().await;
                let old = server.snapshot();
                let config = (*old.config).clone();
                match Snapshot::build(
                    config,
                    &server.clients,
                    &server.registry,
                    &server.supervisor,
                    Some(&old),
                ) {
                    Ok(snapshot) => {
                        let snapshot = Arc::new(snapshot);
                        server.current.store(snapshot.clone());
                        old.retire();
                        snapshot.activate(&server.registry);
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "cannot rebuild routes after an instance change")
                    }
                }
            }
        });
    }

    fn source_name(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Embedded { name, .. } => name.clone(),
        }
    }
}
