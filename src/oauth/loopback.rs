//! The loopback redirect listener of the interactive login: a tiny HTTP/1.1 server that
//! waits for the browser to come back with `?code=..&state=..` (or `?error=..`).
//!
//! Requests are bounded ([`MAX_REQUEST`] bytes, [`REQUEST_TIMEOUT`] each, at most
//! [`MAX_CONNECTIONS`] at once). Requests without `code` or `error` (a favicon, a
//! preconnect) get a 404 and we keep waiting. The `state` is compared in constant time.
//! For an `https://` redirect URI the listener speaks TLS (the handshake counts against
//! the connection's [`REQUEST_TIMEOUT`]).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Largest request head we read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Time a single connection may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed straight away.
pub const MAX_CONNECTIONS: usize = 16;

/// What the browser brought back.
#[derive(Debug)]
pub enum Callback {
    Code(SecretString),
    /// `error=access_denied`.
    Denied(Option<String>),
    /// Any other `error=`.
    Error {
        error: String,
        description: Option<String>,
    },
    StateMismatch,
}

/// How to answer one request.
#[derive(Debug)]
enum Verdict {
    /// Not for us: answer with this status and keep waiting.
    Ignore(u16),
    Done(Callback),
}

/// Waits for the redirect to `path` until `deadline`; `None` on timeout. With `tls`,
/// connections are TLS (an `https://` redirect URI).
pub async fn wait_for_callback(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    path: &str,
    expected_state: &str,
    deadline: Instant,
) -> Option<Callback> {
    let expected: Arc<(String, String)> = Arc::new((path.to_owned(), expected_state.to_owned()));
    let (tx, mut rx) = mpsc::channel::<Callback>(1);
    // Dropping the set on return aborts connections still in progress.
    let mut conns = JoinSet::new();
    let fut = async {
        loop {
            tokio::select! {
                Some(cb) = rx.recv() => return cb,
                accepted = listener.accept() => {
                    while conns.try_join_next().is_some() {}
                    let Ok((stream, _)) = accepted else { continue };
                    if conns.len() >= MAX_CONNECTIONS {
                        continue; // dropped: closes the connection
                    }
                    let (expected, tx, tls) = (Arc::clone(&expected), tx.clone(), tls.clone());
                    conns.spawn(async move {
                        let limit = Instant::now() + REQUEST_TIMEOUT;
                        let serve = async {
                            match tls {
                                None => serve_one(stream, &expected.0, &expected.1).await,
                                Some(acceptor) => {
                                    let stream = acceptor.accept(stream).await.ok()?;
                                    serve_one(stream, &expected.0, &expected.1).await
                                }
                            }
                        };
                        if let Ok(Some(cb)) = tokio::time::timeout_at(limit, serve).await {
                            let _ = tx.send(cb).await;
                        }
                    });
                }
            }
        }
    };
    tokio::time::timeout_at(deadline, fut).await.ok()
}

/// Reads one request, answers it, and returns the callback if it was one.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    path: &str,
    expected: &str,
) -> Option<Callback> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(p) = find_head_end(&buf) {
            break p;
        }
        if buf.len() >= MAX_REQUEST {
            respond(&mut stream, 431, "Request too large").await;
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        let room = MAX_REQUEST - buf.len();
        buf.extend_from_slice(&chunk[..n.min(room)]);
    };
    let verdict = judge(&buf[..head_end], path, expected);
    match verdict {
        Verdict::Ignore(status) => {
            respond(&mut stream, status, "Not found").await;
            None
        }
        Verdict::Done(cb) => {
            let (status, text) = match &cb {
                Callback::Code(_) => (
                    200,
                    "Authorization received. You can close this window and return to oauth-mail-proxy.".to_string(),
                ),
                Callback::Denied(_) => (400, "Login failed: access was denied.".into()),
                Callback::Error { error, .. } => (400, format!("Login failed: {error}.")),
                Callback::StateMismatch => (
                    400,
                    "Login failed: the state parameter did not match. Start the login again.".into(),
                ),
            };
            respond(&mut stream, status, &text).await;
            Some(cb)
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Decides what a request head means.
fn judge(head: &[u8], expected_path: &str, expected: &str) -> Verdict {
    let Some(line) = head.split(|&b| b == b'\r').next() else {
        return Verdict::Ignore(400);
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Verdict::Ignore(400);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Verdict::Ignore(400);
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Verdict::Ignore(400);
    }
    if method != "GET" {
        return Verdict::Ignore(405);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != expected_path {
        return Verdict::Ignore(404);
    }
    match callback_from_query(query, expected) {
        None => Verdict::Ignore(404),
        Some(cb) => Verdict::Done(cb),
    }
}

/// What a redirect's query means; `None` when it has neither `code` nor `error`.
/// The `state` is compared in constant time.
pub(crate) fn callback_from_query(query: &str, expected: &str) -> Option<Callback> {
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*k {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        if slot.is_some() {
            // A repeated parameter is malformed (RFC 6749 §3.1).
            return Some(Callback::StateMismatch);
        }
        *slot = Some(v.into_owned());
    }
    let state_ok = state
        .as_deref()
        .is_some_and(|s| crate::secret::ct_eq(s.as_bytes(), expected.as_bytes()));
    match (code, error) {
        (None, None) => None,
        // A forged error can only cancel the login, so a missing state is tolerated;
        // a wrong one is not.
        (_, Some(_)) if state.is_some() && !state_ok => Some(Callback::StateMismatch),
        (_, Some(e)) if e == "access_denied" => Some(Callback::Denied(description)),
        (_, Some(error)) => Some(Callback::Error { error, description }),
        (Some(_), None) if !state_ok => Some(Callback::StateMismatch),
        (Some(c), None) => Some(Callback::Code(SecretString::from(c))),
    }
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

async fn respond<S: AsyncWrite + Unpin>(stream: &mut S, status: u16, text: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>oauth-mail-proxy</title></head>\
         <body><p>{}</p></body></html>\n",
        html_escape(text)
    );
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use tokio::net::TcpStream;

    fn req(target: &str) -> Vec<u8> {
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes()
    }

    #[test]
    fn judges_requests() {
        let st = "s1";
        let v = |t: &str| judge(&req(t), "/", st);
        assert!(matches!(v("/favicon.ico"), Verdict::Ignore(404)));
        assert!(matches!(v("/"), Verdict::Ignore(404)));
        assert!(matches!(v("/?foo=bar"), Verdict::Ignore(404)));
        assert!(matches!(
            judge(b"POST /?code=c&state=s1 HTTP/1.1", "/", st),
            Verdict::Ignore(405)
        ));
        assert!(matches!(judge(b"garbage", "/", st), Verdict::Ignore(400)));
        assert!(matches!(
            judge(&req("/cb?code=c&state=s1"), "/", st),
            Verdict::Ignore(404)
        ));
        assert!(matches!(
            judge(&req("/cb?code=c&state=s1"), "/cb", st),
            Verdict::Done(Callback::Code(_))
        ));
        assert!(matches!(
            judge(b"GET / HTTP/1.1 x", "/", st),
            Verdict::Ignore(400)
        ));
        match v("/?code=abc%2Fd&state=s1") {
            Verdict::Done(Callback::Code(c)) => assert_eq!(c.expose_secret(), "abc/d"),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            v("/?code=abc&state=s2"),
            Verdict::Done(Callback::StateMismatch)
        ));
        assert!(matches!(
            v("/?code=abc"),
            Verdict::Done(Callback::StateMismatch)
        ));
        assert!(matches!(
            v("/?code=abc&state=s1&state=s1"),
            Verdict::Done(Callback::StateMismatch)
        ));
        match v("/?error=access_denied&error_description=no+way&state=s1") {
            Verdict::Done(Callback::Denied(d)) => assert_eq!(d.as_deref(), Some("no way")),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            v("/?error=access_denied"),
            Verdict::Done(Callback::Denied(None))
        ));
        assert!(matches!(
            v("/?error=access_denied&state=bad"),
            Verdict::Done(Callback::StateMismatch)
        ));
        match v("/?error=server_error&state=s1") {
            Verdict::Done(Callback::Error { error, .. }) => assert_eq!(error, "server_error"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            html_escape("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let waiter = tokio::spawn(async move {
            wait_for_callback(
                listener,
                None,
                "/",
                "st",
                Instant::now() + Duration::from_secs(10),
            )
            .await
        });
        let get = |target: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        // An idle connection does not block the others.
        let _idle = TcpStream::connect(addr).await.unwrap();
        assert!(get("/favicon.ico").await.starts_with("HTTP/1.1 404"));
        // An oversized request is refused.
        let mut big = TcpStream::connect(addr).await.unwrap();
        big.write_all(&vec![b'a'; MAX_REQUEST]).await.unwrap();
        let mut out = String::new();
        big.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
        let page = get("/?code=c0de&state=st").await;
        assert!(page.starts_with("HTTP/1.1 200 OK") && page.contains("close this window"));
        match waiter.await.unwrap() {
            Some(Callback::Code(c)) => assert_eq!(c.expose_secret(), "c0de"),
            o => panic!("{o:?}"),
        }
    }

    #[tokio::test]
    async fn times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let got = wait_for_callback(
            listener,
            None,
            "/",
            "st",
            Instant::now() + Duration::from_millis(50),
        )
        .await;
        assert!(got.is_none());
    }
}
