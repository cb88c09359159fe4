//! A small bounded conversation over a logged-in upstream stream, for `verify`'s few
//! commands after the login: lines and IMAP literals, with a byte budget and a
//! deadline. Nothing read here is logged.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use crate::stream::Stream;

/// Longest line accepted.
const MAX_LINE: usize = 16 * 1024;
/// Most bytes read in one conversation.
const BUDGET: usize = 256 * 1024;

pub(super) struct Wire {
    stream: Stream,
    buf: Vec<u8>,
    read_total: usize,
    deadline: Instant,
}

impl Wire {
    /// `leftover`: what the server sent after its login reply.
    pub(super) fn new(stream: Stream, leftover: Vec<u8>, deadline: Instant) -> Self {
        Wire {
            read_total: leftover.len(),
            stream,
            buf: leftover,
            deadline,
        }
    }

    pub(super) async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let w = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        timeout_at(self.deadline, w)
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| format!("write: {e}"))
    }

    async fn fill(&mut self) -> Result<(), String> {
        if self.read_total >= BUDGET {
            return Err("the server sent more than expected".into());
        }
        let mut chunk = [0u8; 4096];
        let n = timeout_at(self.deadline, self.stream.read(&mut chunk))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        self.read_total += n;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// One line without its CRLF (lossy UTF-8).
    pub(super) async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err("line too long".into());
            }
            self.fill().await?;
        }
    }

    /// Exactly `n` bytes (an IMAP literal), `n` bounded by the line limit times four.
    pub(super) async fn bytes(&mut self, n: usize) -> Result<Vec<u8>, String> {
        if n > 4 * MAX_LINE {
            return Err("literal too large".into());
        }
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Best-effort goodbye: send `bytes`, then close.
    pub(super) async fn close(mut self, bytes: &[u8]) {
        let _ = self.send(bytes).await;
        let _ = timeout_at(self.deadline, self.stream.shutdown()).await;
    }
}

/// An SMTP reply: its code and its text lines (continuations `250-` joined).
pub(super) async fn smtp_reply(w: &mut Wire) -> Result<(u16, String), String> {
    let mut text = Vec::new();
    for _ in 0..64 {
        let line = w.line().await?;
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| format!("not an SMTP reply: {}", clip(&line)))?;
        text.push(line.get(4..).unwrap_or("").to_string());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text.join(" ")));
        }
    }
    Err("SMTP reply too long".into())
}

/// A server line shortened for messages.
pub(super) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(200).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
