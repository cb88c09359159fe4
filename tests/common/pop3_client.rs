//! A minimal POP3 client for tests.

use super::client::{LineClient, oauthbearer, xoauth2};

pub struct Pop3Client {
    pub conn: LineClient,
    /// The greeting without CRLF.
    pub greeting: String,
}

/// The outcome of an `AUTH` exchange.
#[derive(Debug, Clone)]
pub struct Pop3Auth {
    /// Text after `+ ` of each continuation.
    pub continuations: Vec<String>,
    /// The final `+OK ...` / `-ERR ...` line.
    pub reply: String,
}

impl Pop3Auth {
    pub fn is_ok(&self) -> bool {
        self.reply.starts_with("+OK")
    }
}

impl Pop3Client {
    async fn greet(mut conn: LineClient) -> Self {
        let greeting = conn.read_line().await;
        assert!(greeting.starts_with("+OK"), "POP3 greeting: {greeting}");
        Self { conn, greeting }
    }

    pub async fn connect(port: u16) -> Self {
        Self::greet(LineClient::connect(port).await).await
    }

    pub async fn connect_tls(port: u16, ca_pem: &str) -> Self {
        Self::greet(LineClient::connect_tls(port, ca_pem).await).await
    }

    /// STLS and the handshake.
    pub async fn stls(mut self, ca_pem: &str) -> Self {
        let r = self.command("STLS").await;
        assert!(r.starts_with("+OK"), "STLS: {r}");
        self.conn = self.conn.start_tls(ca_pem).await;
        self
    }

    /// A command with a one-line reply.
    pub async fn command(&mut self, line: &str) -> String {
        self.conn.send_line(line).await;
        self.conn.read_line().await
    }

    /// A command with a multi-line reply: (status line, body with dot-stuffing
    /// removed, without the terminating `.` line). The body is empty on `-ERR`.
    pub async fn multiline(&mut self, line: &str) -> (String, Vec<u8>) {
        let status = self.command(line).await;
        let mut body = Vec::new();
        if !status.starts_with("+OK") {
            return (status, body);
        }
        loop {
            let l = self.conn.read_line_bytes().await;
            if l == b".\r\n" {
                return (status, body);
            }
            body.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
        }
    }

    /// `AUTH mech [ir]`, answering continuations from `answers` (empty lines after).
    pub async fn auth(&mut self, mech: &str, ir: Option<&str>, answers: &[&str]) -> Pop3Auth {
        let cmd = match ir {
            Some(ir) => format!("AUTH {mech} {ir}"),
            None => format!("AUTH {mech}"),
        };
        self.conn.send_line(&cmd).await;
        let mut answers = answers.iter();
        let mut continuations = Vec::new();
        loop {
            let line = self.conn.read_line().await;
            if line == "+" || line.starts_with("+ ") {
                continuations.push(line.get(2..).unwrap_or("").to_owned());
                self.conn
                    .send_line(answers.next().copied().unwrap_or(""))
                    .await;
            } else {
                return Pop3Auth {
                    continuations,
                    reply: line,
                };
            }
        }
    }

    pub async fn auth_xoauth2(&mut self, user: &str, token: &str) -> Pop3Auth {
        self.auth("XOAUTH2", Some(&xoauth2(user, token)), &[]).await
    }

    pub async fn auth_oauthbearer(&mut self, user: &str, token: &str, port: u16) -> Pop3Auth {
        self.auth(
            "OAUTHBEARER",
            Some(&oauthbearer(user, token, port)),
            &["AQ=="],
        )
        .await
    }

    /// `RETR n`: the message bytes.
    pub async fn retr(&mut self, n: u32) -> Vec<u8> {
        let (status, body) = self.multiline(&format!("RETR {n}")).await;
        assert!(status.starts_with("+OK"), "RETR {n}: {status}");
        body
    }

    /// `STAT`: (count, octets).
    pub async fn stat(&mut self) -> (u32, u64) {
        let r = self.command("STAT").await;
        let mut it = r
            .strip_prefix("+OK ")
            .unwrap_or_else(|| panic!("STAT: {r}"))
            .split(' ');
        let count = it.next().and_then(|c| c.parse().ok()).expect("STAT count");
        let size = it.next().and_then(|c| c.parse().ok()).expect("STAT size");
        (count, size)
    }

    pub async fn quit(mut self) {
        let r = self.command("QUIT").await;
        assert!(r.starts_with("+OK"), "QUIT: {r}");
    }
}
