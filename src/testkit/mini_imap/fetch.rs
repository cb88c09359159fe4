//! FETCH data items and message parts, and the FETCH and SEARCH commands.

use super::session::*;
use super::syntax::*;
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Full,
    Header,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item {
    Flags,
    Uid,
    Size,
    InternalDate,
    /// RFC822, RFC822.HEADER, RFC822.TEXT.
    Rfc822(Part),
    Body {
        peek: bool,
        part: Part,
        partial: Option<(u32, u32)>,
    },
}

impl Item {
    pub(super) fn sets_seen(self) -> bool {
        match self {
            Item::Rfc822(part) => part != Part::Header,
            Item::Body { peek, .. } => !peek,
            _ => false,
        }
    }
}

pub(super) fn parse_body_item(upper: &str) -> Result<Item, &'static str> {
    let (peek, rest) = if let Some(r) = upper.strip_prefix("BODY.PEEK[") {
        (true, r)
    } else if let Some(r) = upper.strip_prefix("BODY[") {
        (false, r)
    } else {
        return Err("Unsupported FETCH data item");
    };
    let (section, after) = rest.split_once(']').ok_or("Invalid FETCH data item")?;
    let part = match section {
        "" => Part::Full,
        "HEADER" => Part::Header,
        "TEXT" => Part::Text,
        _ => return Err("Unsupported BODY section"),
    };
    let partial = if after.is_empty() {
        None
    } else {
        let inner = after
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .ok_or("Invalid partial")?;
        let (origin, count) = inner.split_once('.').ok_or("Invalid partial")?;
        let digits = |s: &str| -> Result<u32, &'static str> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err("Invalid partial");
            }
            s.parse().map_err(|_| "Invalid partial")
        };
        let (origin, count) = (digits(origin)?, digits(count)?);
        if count == 0 {
            return Err("Invalid partial");
        }
        Some((origin, count))
    };
    Ok(Item::Body {
        peek,
        part,
        partial,
    })
}

pub(super) fn parse_fetch_items(toks: &[Tok]) -> Result<Vec<Item>, &'static str> {
    let atoms: Vec<&str> = match toks {
        [Tok::Atom(a)] => vec![a.as_str()],
        [Tok::LParen, inner @ .., Tok::RParen] => inner
            .iter()
            .map(|t| t.atom().ok_or("Invalid FETCH data items"))
            .collect::<Result<_, _>>()?,
        _ => return Err("Invalid FETCH data items"),
    };
    if atoms.is_empty() {
        return Err("Invalid FETCH data items");
    }
    let mut items = Vec::with_capacity(atoms.len());
    for atom in atoms {
        let upper = atom.to_ascii_uppercase();
        match upper.as_str() {
            "FLAGS" => items.push(Item::Flags),
            "UID" => items.push(Item::Uid),
            "RFC822.SIZE" => items.push(Item::Size),
            "INTERNALDATE" => items.push(Item::InternalDate),
            "FAST" => items.extend([Item::Flags, Item::InternalDate, Item::Size]),
            "RFC822" => items.push(Item::Rfc822(Part::Full)),
            "RFC822.HEADER" => items.push(Item::Rfc822(Part::Header)),
            "RFC822.TEXT" => items.push(Item::Rfc822(Part::Text)),
            other => items.push(parse_body_item(other)?),
        }
    }
    Ok(items)
}

/// The header (up to and including the empty line) and text of a message.
pub(super) fn split_message(msg: &[u8]) -> (&[u8], &[u8]) {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => msg.split_at(i + 4),
        None => (msg, &[]),
    }
}

pub(super) fn part_of(msg: &[u8], part: Part) -> &[u8] {
    match part {
        Part::Full => msg,
        Part::Header => split_message(msg).0,
        Part::Text => split_message(msg).1,
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn fetch(&mut self, tag: &str, args: &[Tok], uid: bool) -> io::Result<Flow> {
        let cmd = if uid { "UID FETCH" } else { "FETCH" };
        let Some((Tok::Atom(set), items)) = args.split_first() else {
            return self
                .tagged(tag, &format!("BAD Expected {cmd} set items"))
                .await;
        };
        let n = self.shared.count;
        let ranges = match parse_seq_set(set, n, uid) {
            Ok(r) => r,
            Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
        };
        let mut items = match parse_fetch_items(items) {
            Ok(i) => i,
            Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
        };
        if uid && !items.contains(&Item::Uid) {
            // UID FETCH always reports the UID (RFC 3501 §6.4.8).
            items.insert(0, Item::Uid);
        }
        let flags_requested = items.contains(&Item::Flags);
        let State::Selected(mailbox) = &self.state else {
            return self.tagged(tag, "BAD No mailbox selected").await;
        };
        let sets_seen = !mailbox.read_only && items.iter().any(|i| i.sets_seen());
        let messages = self.shared.messages.clone();
        let mut head = String::with_capacity(128);
        for &(lo, hi) in &ranges {
            for seq in lo..=hi {
                let idx = seq as usize - 1;
                let msg = &messages[idx];
                let mut newly_seen = false;
                let seen = match &mut self.state {
                    State::Selected(mb) => {
                        if sets_seen && !mb.seen[idx] {
                            mb.seen[idx] = true;
                            newly_seen = true;
                        }
                        mb.seen[idx]
                    }
                    _ => false,
                };
                let flags = if seen { "FLAGS (\\Seen)" } else { "FLAGS ()" };
                head.clear();
                let _ = write!(head, "* {seq} FETCH (");
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        head.push(' ');
                    }
                    let (name, part, partial) = match *item {
                        Item::Flags => {
                            head.push_str(flags);
                            continue;
                        }
                        Item::Uid => {
                            let _ = write!(head, "UID {seq}");
                            continue;
                        }
                        Item::Size => {
                            let _ = write!(head, "RFC822.SIZE {}", msg.len());
                            continue;
                        }
                        Item::InternalDate => {
                            let _ = write!(head, "INTERNALDATE {INTERNALDATE}");
                            continue;
                        }
                        Item::Rfc822(part) => {
                            let name = match part {
                                Part::Full => "RFC822",
                                Part::Header => "RFC822.HEADER",
                                Part::Text => "RFC822.TEXT",
                            };
                            (name, part, None)
                        }
                        Item::Body { part, partial, .. } => {
                            let name = match part {
                                Part::Full => "BODY[]",
                                Part::Header => "BODY[HEADER]",
                                Part::Text => "BODY[TEXT]",
                            };
                            (name, part, partial)
                        }
                    };
                    let mut data = part_of(msg, part);
                    head.push_str(name);
                    if let Some((origin, count)) = partial {
                        let start = (origin as usize).min(data.len());
                        let end = start.saturating_add(count as usize).min(data.len());
                        data = &data[start..end];
                        let _ = write!(head, "<{origin}>");
                    }
                    let _ = write!(head, " {{{}}}\r\n", data.len());
                    self.io.write_all(head.as_bytes()).await?;
                    head.clear();
                    // Big bodies bypass the write buffer: no copy.
                    self.io.write_all(data).await?;
                }
                if newly_seen && !flags_requested {
                    head.push_str(" FLAGS (\\Seen)");
                }
                head.push_str(")\r\n");
                self.io.write_all(head.as_bytes()).await?;
            }
        }
        self.tagged(tag, &format!("OK {cmd} completed")).await
    }

    pub(super) async fn search(&mut self, tag: &str, args: &[Tok], uid: bool) -> io::Result<Flow> {
        let n = self.shared.count;
        let mut args = args;
        if args.first().is_some_and(|a| a.is_atom("CHARSET")) {
            match args.get(1).and_then(Tok::astring) {
                Some(cs)
                    if cs.eq_ignore_ascii_case("UTF-8") || cs.eq_ignore_ascii_case("US-ASCII") =>
                {
                    args = &args[2..];
                }
                _ => {
                    return self
                        .tagged(tag, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
                        .await;
                }
            }
        }
        if args.is_empty() {
            return self.tagged(tag, "BAD Missing search criteria").await;
        }
        // Every key narrows the result (AND).
        let mut filters: Vec<Ranges> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let Some(key) = args[i].atom() else {
                return self.tagged(tag, "BAD Unsupported search key").await;
            };
            if key.eq_ignore_ascii_case("ALL") {
            } else if key.eq_ignore_ascii_case("UID") {
                let Some(set) = args.get(i + 1).and_then(Tok::atom) else {
                    return self.tagged(tag, "BAD Expected UID set").await;
                };
                match parse_seq_set(set, n, true) {
                    Ok(r) => filters.push(r),
                    Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
                }
                i += 1;
            } else {
                match parse_seq_set(key, n, true) {
                    Ok(r) => filters.push(r),
                    Err(_) => return self.tagged(tag, "BAD Unsupported search key").await,
                }
            }
            i += 1;
        }
        let mut out = String::from("* SEARCH");
        for x in 1..=n {
            if filters.iter().all(|f| ranges_contain(f, x)) {
                let _ = write!(out, " {x}");
            }
        }
        out.push_str("\r\n");
        self.send(&out).await?;
        let cmd = if uid { "UID SEARCH" } else { "SEARCH" };
        self.tagged(tag, &format!("OK {cmd} completed")).await
    }
}
