//! Opening the upstream connection: resolve, TCP connect with a timeout (each address
//! in turn), and the implicit-TLS handshake with certificate verification. STARTTLS is
//! not done here: it is an action of the upstream protocol machine.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;

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
    #[error("TLS handshake with {target} failed: {source}")]
    Tls {
        target: String,
        source: std::io::Error,
    },
    #[error("{0:?} is not a valid TLS server name")]
    BadName(String),
}

/// Where and how to connect upstream.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub tls: UpstreamTls,
    pub client_config: Arc<ClientConfig>,
    pub timeout: Duration,
}

impl Target {
    /// The name to verify the server certificate against.
    pub fn server_name(&self) -> Result<ServerName<'static>, ConnectError> {
        ServerName::try_from(self.host.clone())
            .map_err(|_| ConnectError::BadName(self.host.clone()))
    }

    fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Connects to the target; with implicit TLS the returned stream is already encrypted
/// and verified.
pub async fn connect(t: &Target) -> Result<Stream, ConnectError> {
    let target = t.display();
    let addrs: Vec<_> = tokio::time::timeout(
        t.timeout,
        tokio::net::lookup_host((t.host.as_str(), t.port)),
    )
    .await
    .map_err(|_| ConnectError::Resolve {
        host: t.host.clone(),
        source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
    })?
    .map_err(|source| ConnectError::Resolve {
        host: t.host.clone(),
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
        let name = t.server_name()?;
        match tokio::time::timeout(t.timeout, stream.connect_tls(t.client_config.clone(), name))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(ConnectError::Tls { target, source }),
            Err(_) => {
                return Err(ConnectError::Tls {
                    target,
                    source: std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"),
                });
            }
        }
    }
    Ok(stream)
}
