//! The mailbox commands besides FETCH and SEARCH: SELECT / EXAMINE, STATUS, LIST,
//! IDLE, APPEND.

use super::session::*;
use super::syntax::*;
use super::*;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn select(
        &mut self,
        tag: &str,
        mailbox: &Tok,
        read_only: bool,
    ) -> io::Result<Flow> {
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        self.state = State::Authenticated;
        if !is_inbox(mailbox) {
            return self.tagged(tag, "NO [NONEXISTENT] No such mailbox").await;
        }
        let n = self.shared.count;
        let mut out = String::with_capacity(256);
        out.push_str("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
        out.push_str("* OK [PERMANENTFLAGS ()] No permanent flags\r\n");
        let _ = write!(out, "* {n} EXISTS\r\n* 0 RECENT\r\n");
        out.push_str("* OK [UIDVALIDITY 1] UIDs valid\r\n");
        let _ = write!(
            out,
            "* OK [UIDNEXT {}] Predicted next UID\r\n",
            u64::from(n) + 1
        );
        let (code, cmd) = if read_only {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        let _ = write!(out, "{tag} OK [{code}] {cmd} completed\r\n");
        self.send(&out).await?;
        self.state = State::Selected(Mailbox {
            read_only,
            seen: vec![false; n as usize],
        });
        Ok(Flow::Continue)
    }

    pub(super) async fn status(&mut self, tag: &str, args: &[Tok]) -> io::Result<Flow> {
        let [mailbox, Tok::LParen, items @ .., Tok::RParen] = args else {
            return self
                .tagged(tag, "BAD Expected STATUS mailbox (items)")
                .await;
        };
        if !is_inbox(mailbox) {
            return self.tagged(tag, "NO [NONEXISTENT] No such mailbox").await;
        }
        let n = self.shared.count;
        let unseen = match &self.state {
            State::Selected(mb) => mb.seen.iter().filter(|s| !**s).count() as u64,
            _ => u64::from(n),
        };
        let mut out = String::from("* STATUS INBOX (");
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.atom().map(str::to_ascii_uppercase) else {
                return self.tagged(tag, "BAD Invalid STATUS item").await;
            };
            let value = match name.as_str() {
                "MESSAGES" => u64::from(n),
                "RECENT" => 0,
                "UIDNEXT" => u64::from(n) + 1,
                "UIDVALIDITY" => 1,
                "UNSEEN" => unseen,
                _ => return self.tagged(tag, "BAD Unsupported STATUS item").await,
            };
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{name} {value}");
        }
        out.push_str(")\r\n");
        self.send(&out).await?;
        self.tagged(tag, "OK STATUS completed").await
    }

    pub(super) async fn list(
        &mut self,
        tag: &str,
        cmd: &str,
        reference: &Tok,
        pattern: &Tok,
    ) -> io::Result<Flow> {
        let (Some(reference), Some(pattern)) = (reference.astring(), pattern.astring()) else {
            return self
                .tagged(tag, &format!("BAD Invalid {cmd} arguments"))
                .await;
        };
        if pattern.is_empty() {
            // The hierarchy delimiter (RFC 3501 §6.3.8).
            if cmd == "LIST" {
                self.send("* LIST (\\Noselect) \"/\" \"\"\r\n").await?;
            }
        } else if wildcard_match(&format!("{reference}{pattern}"), "INBOX") {
            self.send(&format!("* {cmd} (\\HasNoChildren) \"/\" INBOX\r\n"))
                .await?;
        }
        self.tagged(tag, &format!("OK {cmd} completed")).await
    }

    pub(super) async fn idle(&mut self, tag: &str) -> io::Result<Flow> {
        match self.continuation("idling").await? {
            Line::Ok if self.line.eq_ignore_ascii_case(b"DONE") => {
                self.tagged(tag, "OK IDLE terminated").await
            }
            Line::Ok => self.tagged(tag, "BAD Expected DONE").await,
            Line::Eof => Ok(Flow::Close),
            Line::TooLong => self.bye("Line too long").await,
        }
    }

    /// APPEND whose message comes as a literal: streams it away, counting its bytes.
    pub(super) async fn append(&mut self, toks: Vec<Tok>, mut lit: Literal) -> io::Result<Flow> {
        let Some(tag) = toks.first().and_then(Tok::atom).filter(|t| valid_tag(t)) else {
            return self.bye("APPEND without a valid tag").await;
        };
        let refusal = if !self.authenticated() {
            Some("BAD APPEND: not valid in this state")
        } else if !toks.get(2).is_some_and(is_inbox) {
            Some("NO [TRYCREATE] No such mailbox")
        } else {
            None
        };
        if let Some(refusal) = refusal
            && lit.sync
        {
            // The client waits for our go-ahead, which it won't get.
            return self.tagged(tag, refusal).await;
        }
        loop {
            if lit.sync {
                self.send("+ Ready for literal data\r\n").await?;
                self.io.flush().await?;
            }
            self.discard(lit.len as u64).await?;
            if refusal.is_none() {
                self.shared
                    .appended_bytes
                    .fetch_add(lit.len as u64, Ordering::Relaxed);
            }
            // Rest of the command: empty, or another message (MULTIAPPEND style).
            match self.read_line().await? {
                Line::Ok => {}
                Line::Eof => return Ok(Flow::Close),
                Line::TooLong => return self.bye("Line too long").await,
            }
            let mut rest = Vec::new();
            match tokenize(&self.line, &mut rest) {
                Ok(Some(next)) => lit = next,
                Ok(None) => break,
                Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
            }
        }
        self.tagged(tag, refusal.unwrap_or("OK APPEND completed"))
            .await
    }

    /// Reads and drops `n` bytes.
    pub(super) async fn discard(&mut self, mut n: u64) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        // Bigger than the read buffer, so reads bypass it once it is drained.
        let mut chunk = vec![0u8; DISCARD_CHUNK.min(usize::try_from(n).unwrap_or(usize::MAX))];
        while n > 0 {
            let want = chunk.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.io.read(&mut chunk[..want]).await?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            n -= got as u64;
        }
        Ok(())
    }
}
