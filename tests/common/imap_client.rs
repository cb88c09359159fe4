//! A minimal IMAP client for tests: tagged commands, literals in responses, SASL
//! with initial response and continuation answers.

use super::client::{LineClient, oauthbearer, xoauth2};

/// One server line, with any `{n}` literals read into `line` (inline) and also kept
/// separately in `literals`.
#[derive(Debug, Clone, Default)]
pub struct ImapLine {
    pub line: Vec<u8>,
    pub literals: Vec<Vec<u8>>,
}

impl ImapLine {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.line)
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }
}

/// Everything the server sent for one command.
#[derive(Debug, Clone, Default)]
pub struct ImapResponse {
    /// `* ...` lines.
    pub untagged: Vec<ImapLine>,
    /// The text after `+ ` of each continuation request.
    pub continuations: Vec<String>,
    /// The tagged status line without the tag, e.g. `OK [CAPABILITY ...] Logged in`.
    pub tagged: String,
}

impl ImapResponse {
    pub fn is_ok(&self) -> bool {
        self.tagged.starts_with("OK")
    }

    /// `OK`, `NO` or `BAD`.
    pub fn status(&self) -> &str {
        self.tagged.split(' ').next().unwrap_or("")
    }

    /// True when an untagged line's text contains `needle`.
    pub fn has_untagged(&self, needle: &str) -> bool {
        self.untagged.iter().any(|l| l.text().contains(needle))
    }

    /// All literals of all untagged lines, in order.
    pub fn literals(&self) -> Vec<&[u8]> {
        self.untagged
            .iter()
            .flat_map(|l| l.literals.iter().map(Vec::as_slice))
            .collect()
    }
}

/// The size `n` when `line` ends with `{n}\r\n` (or `{n+}`).
fn literal_size(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

pub struct ImapClient {
    pub conn: LineClient,
    /// The server greeting without CRLF.
    pub greeting: String,
    next_tag: u32,
}

impl ImapClient {
    async fn greet(mut conn: LineClient) -> Self {
        let greeting = conn.read_line().await;
        assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting}");
        Self {
            conn,
            greeting,
            next_tag: 1,
        }
    }

    /// Plain TCP to 127.0.0.1:port; reads the greeting.
    pub async fn connect(port: u16) -> Self {
        Self::greet(LineClient::connect(port).await).await
    }

    /// Implicit TLS; reads the greeting.
    pub async fn connect_tls(port: u16, ca_pem: &str) -> Self {
        Self::greet(LineClient::connect_tls(port, ca_pem).await).await
    }

    /// STARTTLS and the handshake.
    pub async fn starttls(mut self, ca_pem: &str) -> Self {
        let r = self.command("STARTTLS").await;
        assert!(r.is_ok(), "STARTTLS: {r:?}");
        self.conn = self.conn.start_tls(ca_pem).await;
        self
    }

    pub fn next_tag(&mut self) -> String {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// One response line with its literals.
    pub async fn read_line(&mut self) -> ImapLine {
        let mut out = ImapLine::default();
        loop {
            let chunk = self.conn.read_line_bytes().await;
            let size = literal_size(&chunk);
            out.line.extend_from_slice(&chunk);
            match size {
                None => return out,
                Some(n) => {
                    let lit = self.conn.read_exact(n).await;
                    out.line.extend_from_slice(&lit);
                    out.literals.push(lit);
                }
            }
        }
    }

    /// Sends `TAG cmd`; on each continuation request sends the next of `answers`
    /// (an empty line once they run out) and reads until the tagged response.
    pub async fn command_with(&mut self, cmd: &str, answers: &[&str]) -> ImapResponse {
        let tag = self.next_tag();
        self.conn.send_line(&format!("{tag} {cmd}")).await;
        let mut resp = ImapResponse::default();
        let mut answers = answers.iter();
        loop {
            let line = self.read_line().await;
            let text = line.text();
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                resp.tagged = rest.to_owned();
                return resp;
            } else if text == "+" || text.starts_with("+ ") {
                resp.continuations
                    .push(text.get(2..).unwrap_or("").to_owned());
                let answer = answers.next().copied().unwrap_or("");
                self.conn.send_line(answer).await;
            } else {
                resp.untagged.push(line);
            }
        }
    }

    /// Sends a command that must not ask for continuation data.
    pub async fn command(&mut self, cmd: &str) -> ImapResponse {
        let r = self.command_with(cmd, &[]).await;
        assert!(
            r.continuations.is_empty(),
            "{cmd}: unexpected continuation {r:?}"
        );
        r
    }

    /// `AUTHENTICATE XOAUTH2` with SASL-IR; an error continuation is answered with
    /// an empty line, as RFC 7628-style clients do.
    pub async fn authenticate_xoauth2(&mut self, user: &str, token: &str) -> ImapResponse {
        self.command_with(
            &format!("AUTHENTICATE XOAUTH2 {}", xoauth2(user, token)),
            &[],
        )
        .await
    }

    /// `AUTHENTICATE OAUTHBEARER` with SASL-IR; an error continuation is answered
    /// with `AQ==` (a single 0x01, RFC 7628 §3.2.3).
    pub async fn authenticate_oauthbearer(
        &mut self,
        user: &str,
        token: &str,
        port: u16,
    ) -> ImapResponse {
        let ir = oauthbearer(user, token, port);
        self.command_with(&format!("AUTHENTICATE OAUTHBEARER {ir}"), &["AQ=="])
            .await
    }

    /// `SELECT mailbox`, returning the EXISTS count.
    pub async fn select(&mut self, mailbox: &str) -> u32 {
        let r = self.command(&format!("SELECT {mailbox}")).await;
        assert!(r.is_ok(), "SELECT {mailbox}: {r:?}");
        r.untagged
            .iter()
            .find_map(|l| {
                l.text()
                    .strip_prefix("* ")?
                    .strip_suffix(" EXISTS")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no EXISTS in {r:?}"))
    }

    /// The full message `seq` (`BODY.PEEK[]`) as a literal.
    pub async fn fetch_body(&mut self, seq: u32) -> Vec<u8> {
        let r = self.command(&format!("FETCH {seq} BODY.PEEK[]")).await;
        assert!(r.is_ok(), "FETCH {seq}: {r:?}");
        r.literals()
            .first()
            .unwrap_or_else(|| panic!("no literal in {r:?}"))
            .to_vec()
    }

    pub async fn logout(mut self) {
        let r = self.command("LOGOUT").await;
        assert!(r.is_ok() && r.has_untagged("BYE"), "LOGOUT: {r:?}");
    }
}
