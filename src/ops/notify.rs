//! `notify_command`: the admin's own script, run (no shell) when an account needs
//! attention, with `OMP_ACCOUNT`, `OMP_REASON` and `OMP_MESSAGE` in its environment.
//! Bounded to [`NOTIFY_TIMEOUT`]; its output is logged at debug level.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::config::Proxy;
use crate::oauth::TokenManager;
use crate::oauth::notify::{NoticeReason, Notifier};

/// How long the command may run before it is killed.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Most output kept for the debug log.
const MAX_OUTPUT: usize = 4096;

/// Runs a command per notice.
#[derive(Clone)]
pub struct CommandNotifier {
    command: PathBuf,
    tasks: TaskTracker,
}

impl CommandNotifier {
    pub fn new(command: PathBuf) -> Self {
        CommandNotifier {
            command,
            tasks: TaskTracker::new(),
        }
    }

    /// Waits until every command started so far has finished (or timed out).
    pub async fn flush(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }
}

impl Notifier for CommandNotifier {
    fn notify(&self, account: &str, reason: NoticeReason, message: &str) {
        tracing::warn!(
            account,
            reason = reason.word(),
            "account needs attention: {message}"
        );
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("notify_command not run: no async runtime");
            return;
        };
        let mut cmd = tokio::process::Command::new(&self.command);
        cmd.env("OMP_ACCOUNT", account)
            .env("OMP_REASON", reason.word())
            .env("OMP_MESSAGE", message)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let program = self.command.display().to_string();
        let account = account.to_owned();
        self.tasks.spawn_on(
            async move {
                let child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(%account, "cannot run notify_command {program}: {e}");
                        return;
                    }
                };
                match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait_with_output()).await {
                    Err(_) => tracing::error!(
                        %account,
                        "notify_command {program} killed after {}s",
                        NOTIFY_TIMEOUT.as_secs()
                    ),
                    Ok(Err(e)) => tracing::error!(%account, "notify_command {program}: {e}"),
                    Ok(Ok(out)) => {
                        let text = |b: &[u8]| {
                            String::from_utf8_lossy(&b[..b.len().min(MAX_OUTPUT)]).into_owned()
                        };
                        tracing::debug!(
                            %account,
                            stdout = %text(&out.stdout),
                            stderr = %text(&out.stderr),
                            "notify_command {program} finished"
                        );
                        if !out.status.success() {
                            tracing::warn!(%account, "notify_command {program} exited with {}", out.status);
                        }
                    }
                }
            },
            &rt,
        );
    }
}

/// `tokens` with the config's `notify_command` attached (unchanged when none is set);
/// the notifier is returned too, for [`CommandNotifier::flush`].
pub fn attach(tokens: TokenManager, proxy: &Proxy) -> (TokenManager, Option<CommandNotifier>) {
    match &proxy.notify_command {
        None => (tokens, None),
        Some(cmd) => {
            let n = CommandNotifier::new(cmd.clone());
            (tokens.with_notifier(Arc::new(n.clone())), Some(n))
        }
    }
}
