//! The running listener set and what a reload (SIGHUP) changes in it.
//!
//! A reload re-reads the config file. A file with errors is refused (the reason is
//! logged) and nothing changes. Otherwise:
//!
//! * listeners are matched by their whole resolved settings: an unchanged one keeps
//!   accepting, a removed (or changed) one stops accepting and closes its socket (its
//!   sessions go on), a new (or changed) one is bound and starts accepting;
//! * the accounts are rebuilt, so added, removed and changed accounts apply to the
//!   next login, and the old login verdict cache goes with the old accounts;
//! * the admin listener shows the new config.
//!
//! `[proxy]` settings (state directory, limits, the admin address) need a restart;
//! a reload that changes them says so in the log.
//!
//! A reload comes from SIGHUP or from the file watch (`config_watch.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::admin::AdminState;
use crate::config::{Config, Listener};
use crate::listener::{Caps, accept_loop, accounts_of, bind_listener};
use crate::session::{ListenerCtx, Shared};

/// One accepting listener.
struct Active {
    /// Its resolved settings, compared on reload.
    key: String,
    addr: Option<SocketAddr>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The listeners accepting now, and what a reload needs to change them.
pub(crate) struct Running {
    shared: Arc<Shared>,
    caps: Arc<Caps>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    config: Arc<Config>,
    admin: Option<AdminState>,
    active: Vec<Active>,
}

fn key(l: &Listener) -> String {
    format!("{l:?}")
}

impl Running {
    pub(crate) fn new(
        shared: Arc<Shared>,
        caps: Arc<Caps>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        config: Arc<Config>,
    ) -> Running {
        Running {
            shared,
            caps,
            tracker,
            shutdown,
            config,
            admin: None,
            active: Vec::new(),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn set_admin(&mut self, admin: AdminState) {
        self.admin = Some(admin);
    }

    /// Starts accepting on a bound listener.
    pub(crate) fn start(&mut self, tcp: TcpListener, ctx: Arc<ListenerCtx>) {
        let addr = tcp.local_addr().ok();
        info!(listener = ?addr, protocol = ctx.cfg.protocol.name(), upstream = %ctx.upstream.servers[0], "listening");
        let stop = self.shutdown.child_token();
        let key = key(&ctx.cfg);
        let task = self.tracker.spawn(accept_loop(
            tcp,
            ctx,
            self.shared.clone(),
            self.caps.clone(),
            self.tracker.clone(),
            stop.clone(),
        ));
        self.active.push(Active {
            key,
            addr,
            stop,
            task,
        });
    }

    /// Re-reads the config file and applies it (see the module docs).
    pub(crate) async fn reload(&mut self) {
        let path = self.config.file.clone();
        info!(file = %path.display(), "reloading the configuration");
        let new = match tokio::task::spawn_blocking(move || Config::load(&path)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                error!("reload refused, keeping the running configuration: {e}");
                return;
            }
            Err(e) => {
                error!("reload failed: {e}");
                return;
            }
        };
        if format!("{:?}", new.proxy) != format!("{:?}", self.config.proxy) {
            warn!("[proxy] settings changed: they apply after a restart");
        }
        // Which running listeners the new config keeps (matched by settings).
        let mut kept = vec![false; self.active.len()];
        let mut added = Vec::new();
        for l in &new.listeners {
            let k = key(l);
            match (0..self.active.len()).find(|&i| !kept[i] && self.active[i].key == k) {
                Some(i) => kept[i] = true,
                None => added.push(l.clone()),
            }
        }
        let mut still = Vec::new();
        for (a, keep) in std::mem::take(&mut self.active).into_iter().zip(kept) {
            if keep {
                still.push(a);
                continue;
            }
            a.stop.cancel();
            // The accept loop returns and drops the socket: the port is free again.
            let _ = a.task.await;
            info!(listener = ?a.addr, "listener removed; its sessions go on");
        }
        self.active = still;
        self.shared.set_accounts(accounts_of(&new));
        for l in &added {
            match bind_listener(&new, l, &self.shared.metrics).await {
                Ok((tcp, ctx)) => self.start(tcp, ctx),
                Err(e) => error!("reload: new listener not started: {e}"),
            }
        }
        let new = Arc::new(new);
        if let Some(admin) = &self.admin {
            admin.set_config(new.clone());
        }
        info!(
            listeners = self.active.len(),
            accounts = new.accounts.len(),
            "configuration reloaded"
        );
        self.config = new;
    }
}
