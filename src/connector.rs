//! Opening the upstream connection: resolve, TCP connect with a timeout (each address
//! in turn), and the implicit-TLS handshake with certificate verification, each step
//! with its own `upstream_timeout`. STARTTLS is not done here: it is an action of the
//! upstream protocol machine.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;

use crate::config::ServerAddr;
use crate::proto::UpstreamTls;
use crate::stream::Stream;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("TLS handshake with {target} failed: {reason}")]
    Tls { target: String, reason: String },
    #[error("{0:?} is not a valid TLS server name")]
    BadName(String),
    #[error("no upstream server could be reached: {0}")]
    AllFailed(String),
}

/// Where and how to connect upstream.
#[derive(Debug, Clone)]
pub struct Target {
    /// The server, then alternates, tried in order.
    pub servers: Vec<ServerAddr>,
    pub tls: UpstreamTls,
    pub client_config: Arc<ClientConfig>,
    pub timeout: Duration,
}

/// The name to verify a server's certificate against.
pub fn server_name(server: &ServerAddr) -> Result<ServerName<'static>, ConnectError> {
    ServerName::try_from(server.host.clone())
        .map_err(|_| ConnectError::BadName(server.host.clone()))
}

/// Connects to the first server of the target that accepts (and, with implicit TLS,
/// completes a verified handshake); returns the stream and the server used.
pub async fn connect(t: &Target) -> Result<(Stream, &ServerAddr), ConnectError> {
    let mut failures = Vec::new();
    for server in &t.servers {
        match connect_one(t, server).await {
            Ok(s) => {
                if !failures.is_empty() {
                    tracing::warn!(upstream = %server, "connected to an alternate upstream after: {}", failures.join("; "));
                }
                return Ok((s, server));
            }
            Err(e) if t.servers.len() == 1 => return Err(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Err(ConnectError::AllFailed(failures.join("; ")))
}

async fn connect_one(t: &Target, server: &ServerAddr) -> Result<Stream, ConnectError> {
    let target = server.to_string();
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
    let addrs: Vec<_> = tokio::time::timeout(
        t.timeout,
        tokio::net::lookup_host((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|_| ConnectError::Resolve {
        host: server.host.clone(),
        source: timed_out(),
    })?
    .map_err(|source| ConnectError::Resolve {
        host: server.host.clone(),
        source,
    })?
    .collect();
    let mut last = String::from("no addresses");
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(t.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: timed out after {:?}", t.timeout),
        }
    }
    let tcp = tcp.ok_or(ConnectError::Connect {
        target: target.clone(),
        reason: last,
    })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = Stream::Plain(tcp);
    if t.tls == UpstreamTls::Implicit {
        let name = server_name(server)?;
        match tokio::time::timeout(t.timeout, stream.connect_tls(t.client_config.clone(), name))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(ConnectError::Tls {
                    target,
                    reason: crate::tls::describe_handshake_error(&e),
                });
            }
            Err(_) => {
                return Err(ConnectError::Tls {
                    target,
                    reason: format!("timed out after {:?}", t.timeout),
                });
            }
        }
    }
    Ok(stream)
}
