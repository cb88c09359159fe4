//! One client session: the line reader, the replies, the state and the command
//! dispatch.

use super::syntax::*;
use super::*;

pub(super) enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Mailbox),
}

pub(super) struct Mailbox {
    pub(super) read_only: bool,
    /// `\Seen` per message, set by this session's body fetches.
    pub(super) seen: Vec<bool>,
}

/// Outcome of reading one line.
pub(super) enum Line {
    Ok,
    Eof,
    TooLong,
}

/// What the session does after a command.
pub(super) enum Flow {
    Continue,
    Close,
}

pub(super) struct Session<S> {
    pub(super) io: BufReader<BufWriter<S>>,
    pub(super) shared: Arc<Shared>,
    pub(super) state: State,
    /// The current line, CRLF removed.
    pub(super) line: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) fn new(stream: S, shared: Arc<Shared>) -> Self {
        Session {
            io: BufReader::with_capacity(READ_BUF, BufWriter::with_capacity(WRITE_BUF, stream)),
            shared,
            state: State::NotAuthenticated,
            line: Vec::new(),
        }
    }

    pub(super) async fn run(mut self) -> io::Result<()> {
        self.send(GREETING).await?;
        self.io.flush().await?;
        loop {
            let flow = match self.read_line().await? {
                Line::Eof => return Ok(()),
                Line::TooLong => self.bye("Line too long").await?,
                Line::Ok => Box::pin(self.command()).await?,
            };
            if self.line.capacity() > LINE_KEEP {
                self.line = Vec::new();
            }
            match flow {
                Flow::Close => {
                    // Flushes the write buffer, then closes our half.
                    self.io.shutdown().await?;
                    return Ok(());
                }
                // With a whole pipelined command already buffered, answer it first.
                Flow::Continue if !self.io.buffer().contains(&b'\n') => self.io.flush().await?,
                Flow::Continue => {}
            }
        }
    }

    /// Reads one line into `self.line`, without its CRLF (a bare LF is accepted).
    pub(super) async fn read_line(&mut self) -> io::Result<Line> {
        self.line.clear();
        let limit = (MAX_LINE + 2) as u64;
        let n = (&mut self.io)
            .take(limit)
            .read_until(b'\n', &mut self.line)
            .await?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        if self.line.last() != Some(&b'\n') {
            return Ok(if self.line.len() as u64 >= limit {
                Line::TooLong
            } else {
                Line::Eof
            });
        }
        self.line.pop();
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Line::Ok)
    }

    pub(super) async fn send(&mut self, text: &str) -> io::Result<()> {
        self.io.write_all(text.as_bytes()).await
    }

    pub(super) async fn tagged(&mut self, tag: &str, text: &str) -> io::Result<Flow> {
        self.send(&format!("{tag} {text}\r\n")).await?;
        Ok(Flow::Continue)
    }

    pub(super) async fn bye(&mut self, text: &str) -> io::Result<Flow> {
        self.send(&format!("* BYE {text}\r\n")).await?;
        Ok(Flow::Close)
    }

    /// Sends a continuation request and reads the client's answer into `self.line`.
    pub(super) async fn continuation(&mut self, text: &str) -> io::Result<Line> {
        self.send(&format!("+ {text}\r\n")).await?;
        self.io.flush().await?;
        self.read_line().await
    }

    pub(super) fn authenticated(&self) -> bool {
        !matches!(self.state, State::NotAuthenticated)
    }

    /// Reads a whole command (the line in `self.line`, plus literals and the lines
    /// after them) and runs it.
    pub(super) async fn command(&mut self) -> io::Result<Flow> {
        let mut toks = Vec::new();
        let mut literal = match tokenize(&self.line, &mut toks) {
            Ok(l) => l,
            Err(e) => return self.bad_early(&toks, e).await,
        };
        if let Some(lit) = literal
            && toks.get(1).is_some_and(|t| t.is_atom("APPEND"))
        {
            return self.append(toks, lit).await;
        }
        let mut total = self.line.len();
        while let Some(lit) = literal {
            total = total.saturating_add(lit.len);
            if total > MAX_LINE {
                if lit.sync {
                    return self.bad_early(&toks, "Command too long").await;
                }
                return self.bye("Command too long").await;
            }
            if lit.sync {
                self.send("+ Ready for literal data\r\n").await?;
                self.io.flush().await?;
            }
            let mut data = vec![0; lit.len];
            self.io.read_exact(&mut data).await?;
            toks.push(Tok::Str(data));
            match self.read_line().await? {
                Line::Ok => {}
                Line::Eof => return Ok(Flow::Close),
                Line::TooLong => return self.bye("Line too long").await,
            }
            total = total.saturating_add(self.line.len());
            literal = match tokenize(&self.line, &mut toks) {
                Ok(l) => l,
                Err(e) => return self.bad_early(&toks, e).await,
            };
        }
        self.dispatch(&toks).await
    }

    /// BAD for a command that could not be read, tagged when its tag is known.
    pub(super) async fn bad_early(&mut self, toks: &[Tok], text: &str) -> io::Result<Flow> {
        match toks.first().and_then(Tok::atom).filter(|t| valid_tag(t)) {
            Some(tag) => {
                let tag = tag.to_owned();
                self.tagged(&tag, &format!("BAD {text}")).await
            }
            None => {
                self.send(&format!("* BAD {text}\r\n")).await?;
                Ok(Flow::Continue)
            }
        }
    }

    pub(super) async fn dispatch(&mut self, toks: &[Tok]) -> io::Result<Flow> {
        let Some(tag) = toks.first().and_then(Tok::atom).filter(|t| valid_tag(t)) else {
            self.send("* BAD Missing or invalid tag\r\n").await?;
            return Ok(Flow::Continue);
        };
        let Some(cmd) = toks.get(1).and_then(Tok::atom) else {
            return self.tagged(tag, "BAD Missing command").await;
        };
        let cmd = cmd.to_ascii_uppercase();
        let args = &toks[2..];
        let authenticated = self.authenticated();
        let selected = matches!(self.state, State::Selected(_));
        let no_args = args.is_empty();
        match cmd.as_str() {
            "CAPABILITY" if no_args => {
                let caps = if authenticated {
                    CAPABILITIES_AUTHENTICATED
                } else {
                    CAPABILITIES_PRE_AUTH
                };
                self.send(&format!("* CAPABILITY {caps}\r\n")).await?;
                self.tagged(tag, "OK CAPABILITY completed").await
            }
            "NOOP" if no_args => self.tagged(tag, "OK NOOP completed").await,
            "LOGOUT" if no_args => {
                self.send("* BYE mini-imap logging out\r\n").await?;
                self.tagged(tag, "OK LOGOUT completed").await?;
                Ok(Flow::Close)
            }
            "ID" if (args.len() == 1 && args[0].is_atom("NIL"))
                || (args.first() == Some(&Tok::LParen) && args.last() == Some(&Tok::RParen)) =>
            {
                self.send("* ID (\"name\" \"mini-imap\")\r\n").await?;
                self.tagged(tag, "OK ID completed").await
            }
            "AUTHENTICATE" if !authenticated => self.authenticate(tag, args).await,
            "LOGIN" if !authenticated && args.len() == 2 => {
                self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
                self.tagged(
                    tag,
                    "NO [PRIVACYREQUIRED] LOGIN is disabled, use AUTHENTICATE XOAUTH2 or OAUTHBEARER",
                )
                .await
            }
            "SELECT" | "EXAMINE" if authenticated && args.len() == 1 => {
                self.select(tag, &args[0], cmd == "EXAMINE").await
            }
            "STATUS" if authenticated => self.status(tag, args).await,
            "LIST" | "LSUB" if authenticated && args.len() == 2 => {
                self.list(tag, &cmd, &args[0], &args[1]).await
            }
            "IDLE" if authenticated && no_args => self.idle(tag).await,
            "FETCH" if selected => self.fetch(tag, args, false).await,
            "SEARCH" if selected => self.search(tag, args, false).await,
            "UID" if selected && args.first().is_some_and(|a| a.is_atom("FETCH")) => {
                self.fetch(tag, &args[1..], true).await
            }
            "UID" if selected && args.first().is_some_and(|a| a.is_atom("SEARCH")) => {
                self.search(tag, &args[1..], true).await
            }
            "CHECK" if selected && no_args => self.tagged(tag, "OK CHECK completed").await,
            "CLOSE" | "UNSELECT" if selected && no_args => {
                self.state = State::Authenticated;
                self.tagged(tag, &format!("OK {cmd} completed")).await
            }
            // APPEND without a literal (a quoted message): count it too.
            "APPEND" if authenticated && args.len() >= 2 && is_inbox(&args[0]) => {
                if let Some(Tok::Str(msg)) = args.last() {
                    let len = msg.len() as u64;
                    self.shared.appended_bytes.fetch_add(len, Ordering::Relaxed);
                    self.tagged(tag, "OK APPEND completed").await
                } else {
                    self.tagged(tag, "BAD Invalid APPEND arguments").await
                }
            }
            "CAPABILITY" | "NOOP" | "LOGOUT" | "ID" | "AUTHENTICATE" | "LOGIN" | "SELECT"
            | "EXAMINE" | "STATUS" | "LIST" | "LSUB" | "IDLE" | "FETCH" | "SEARCH" | "UID"
            | "CHECK" | "CLOSE" | "UNSELECT" | "APPEND" => {
                self.tagged(
                    tag,
                    &format!("BAD {cmd}: invalid arguments or not valid in this state"),
                )
                .await
            }
            _ => self.tagged(tag, "BAD Unknown command").await,
        }
    }
}
