//! A minimal SMTP submission client for tests.

use super::client::{LineClient, oauthbearer, xoauth2};

/// A (possibly multi-line) SMTP reply.
#[derive(Debug, Clone, Default)]
pub struct SmtpReply {
    pub code: u16,
    /// The text after `NNN-` / `NNN ` of each line.
    pub lines: Vec<String>,
}

impl SmtpReply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// True when a line (for EHLO: an extension) equals or starts with `prefix`.
    pub fn has_line(&self, prefix: &str) -> bool {
        self.lines.iter().any(|l| l.starts_with(prefix))
    }
}

/// The outcome of an `AUTH` exchange.
#[derive(Debug, Clone)]
pub struct SmtpAuth {
    /// Text of each `334` continuation.
    pub continuations: Vec<String>,
    pub reply: SmtpReply,
}

pub struct SmtpClient {
    pub conn: LineClient,
    pub greeting: SmtpReply,
}

impl SmtpClient {
    async fn greet(mut conn: LineClient) -> Self {
        let greeting = read_reply(&mut conn).await;
        assert_eq!(greeting.code, 220, "SMTP greeting: {greeting:?}");
        Self { conn, greeting }
    }

    pub async fn connect(port: u16) -> Self {
        Self::greet(LineClient::connect(port).await).await
    }

    pub async fn connect_tls(port: u16, ca_pem: &str) -> Self {
        Self::greet(LineClient::connect_tls(port, ca_pem).await).await
    }

    /// STARTTLS and the handshake (EHLO must be sent again afterwards).
    pub async fn starttls(mut self, ca_pem: &str) -> Self {
        let r = self.command("STARTTLS").await;
        assert_eq!(r.code, 220, "STARTTLS: {r:?}");
        self.conn = self.conn.start_tls(ca_pem).await;
        self
    }

    pub async fn read_reply(&mut self) -> SmtpReply {
        read_reply(&mut self.conn).await
    }

    pub async fn command(&mut self, line: &str) -> SmtpReply {
        self.conn.send_line(line).await;
        self.read_reply().await
    }

    pub async fn ehlo(&mut self, name: &str) -> SmtpReply {
        let r = self.command(&format!("EHLO {name}")).await;
        assert_eq!(r.code, 250, "EHLO: {r:?}");
        r
    }

    /// `AUTH mech [ir]`, answering `334` continuations from `answers` (then empty lines).
    pub async fn auth(&mut self, mech: &str, ir: Option<&str>, answers: &[&str]) -> SmtpAuth {
        let cmd = match ir {
            Some(ir) => format!("AUTH {mech} {ir}"),
            None => format!("AUTH {mech}"),
        };
        self.conn.send_line(&cmd).await;
        let mut answers = answers.iter();
        let mut continuations = Vec::new();
        loop {
            let reply = self.read_reply().await;
            if reply.code != 334 {
                return SmtpAuth {
                    continuations,
                    reply,
                };
            }
            continuations.push(reply.lines.concat());
            self.conn
                .send_line(answers.next().copied().unwrap_or(""))
                .await;
        }
    }

    pub async fn auth_xoauth2(&mut self, user: &str, token: &str) -> SmtpAuth {
        self.auth("XOAUTH2", Some(&xoauth2(user, token)), &[]).await
    }

    pub async fn auth_oauthbearer(&mut self, user: &str, token: &str, port: u16) -> SmtpAuth {
        self.auth(
            "OAUTHBEARER",
            Some(&oauthbearer(user, token, port)),
            &["AQ=="],
        )
        .await
    }

    /// MAIL, RCPT for each recipient, DATA with dot-stuffing; returns the reply to
    /// the final `.`. `message` must use CRLF line endings.
    pub async fn send_mail(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> SmtpReply {
        let r = self.command(&format!("MAIL FROM:<{from}>")).await;
        assert_eq!(r.code, 250, "MAIL: {r:?}");
        for rcpt in rcpts {
            let r = self.command(&format!("RCPT TO:<{rcpt}>")).await;
            assert_eq!(r.code, 250, "RCPT {rcpt}: {r:?}");
        }
        let r = self.command("DATA").await;
        assert_eq!(r.code, 354, "DATA: {r:?}");
        self.conn.write_all(&dot_stuff(message)).await;
        self.read_reply().await
    }

    pub async fn quit(mut self) {
        let r = self.command("QUIT").await;
        assert_eq!(r.code, 221, "QUIT: {r:?}");
    }
}

/// Dot-stuffs `message`, ends it with CRLF if needed, and appends `.\r\n`.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

async fn read_reply(conn: &mut LineClient) -> SmtpReply {
    let mut reply = SmtpReply::default();
    loop {
        let line = conn.read_line().await;
        let code = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad SMTP reply line {line:?}"));
        reply.code = code;
        reply.lines.push(line.get(4..).unwrap_or("").to_owned());
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}
