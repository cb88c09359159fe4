//! A recording forwarder in front of the token endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Secrets;

/// One connection through the tee: (bytes to the server, bytes from the server).
type Exchange = (Vec<u8>, Vec<u8>);

/// A TCP forwarder in front of an HTTP server (the token endpoint) that records both
/// directions, so the test can plant what the proxy sent and received there.
pub struct HttpTee {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Exchange>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpTee {
    pub async fn start(target: SocketAddr) -> HttpTee {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((down, _)) = l.accept().await {
                let slot = {
                    let mut v = s.lock().unwrap();
                    v.push((Vec::new(), Vec::new()));
                    v.len() - 1
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    let (s1, s2) = (s.clone(), s);
                    let a = pump(dr, uw, move |b| s1.lock().unwrap()[slot].0.extend(b));
                    let b = pump(ur, dw, move |b| s2.lock().unwrap()[slot].1.extend(b));
                    tokio::join!(a, b);
                });
            }
        });
        HttpTee { addr, seen, task }
    }

    /// `http://ADDR/PATH` of the tee for the server's `url`.
    pub fn url_for(&self, url: &str) -> String {
        let u = url::Url::parse(url).unwrap();
        format!("http://{}{}", self.addr, u.path())
    }

    /// The bodies seen so far: (request bodies, response bodies).
    pub fn bodies(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let seen = self.seen.lock().unwrap();
        let (mut req, mut resp) = (Vec::new(), Vec::new());
        for (up, down) in seen.iter() {
            req.extend(http_messages(up).into_iter().map(|m| m.1));
            resp.extend(http_messages(down).into_iter().map(|m| m.1));
        }
        (req, resp)
    }

    /// The request headers seen so far, one string per request.
    pub fn request_heads(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .flat_map(|(up, _)| http_messages(up).into_iter().map(|m| m.0))
            .collect()
    }

    /// Plants every secret that went through: form fields of the requests (`code`,
    /// `code_verifier`, `client_secret`, `refresh_token`, ...), Basic credentials, the
    /// tokens of the JSON responses, and the bodies themselves. Returns the names of
    /// the request fields seen, sorted. Access tokens are planted with the upstream
    /// lines each of `users` would send with them on `ports`.
    pub fn plant(&self, secrets: &mut Secrets, users: &[&str], ports: &[u16]) -> Vec<String> {
        const FIELDS: [&str; 6] = [
            "code",
            "code_verifier",
            "client_secret",
            "refresh_token",
            "assertion",
            "client_assertion",
        ];
        let (reqs, resps) = self.bodies();
        let mut seen = Vec::new();
        for body in &reqs {
            for (k, v) in url::form_urlencoded::parse(body) {
                seen.push(k.to_string());
                if FIELDS.contains(&k.as_ref()) && v.len() >= 16 {
                    secrets.add(format!("token request field {k}"), v.as_ref());
                }
            }
        }
        for head in self.request_heads() {
            for line in head.lines() {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("authorization: basic ") {
                    let v = &line[line.len() - v.len()..];
                    seen.push("basic".into());
                    secrets.add_payload("token request Basic credentials", v.trim());
                }
            }
        }
        for body in &resps {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
                continue;
            };
            for k in ["refresh_token", "id_token"] {
                if let Some(v) = json.get(k).and_then(|v| v.as_str()) {
                    secrets.add(format!("token response {k}"), v);
                }
            }
            if let Some(v) = json.get("access_token").and_then(|v| v.as_str()) {
                let at = SecretString::from(v.to_string());
                for user in users {
                    secrets.add_access_token(user, &at, ports);
                }
            }
        }
        seen.sort();
        seen.dedup();
        seen
    }
}

impl Drop for HttpTee {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `r` to `w`, handing every chunk to `record` first.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    mut record: impl FnMut(&[u8]),
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        record(&buf[..n]);
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// The HTTP/1.1 messages in `bytes`: (head, body), bodies framed by Content-Length or
/// chunked encoding.
pub fn http_messages(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        bytes = &bytes[end + 4..];
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let len = len.min(bytes.len());
            body.extend_from_slice(&bytes[..len]);
            bytes = &bytes[len..];
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            while let Some(eol) = bytes.windows(2).position(|w| w == b"\r\n") {
                let size = std::str::from_utf8(&bytes[..eol]).unwrap_or("0");
                let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16);
                let size = size.unwrap_or(0);
                bytes = &bytes[eol + 2..];
                let take = size.min(bytes.len());
                body.extend_from_slice(&bytes[..take]);
                bytes = &bytes[(take + 2).min(bytes.len())..];
                if size == 0 {
                    break;
                }
            }
        }
        out.push((head, body));
    }
    out
}
