//! Command syntax: tokens (with literal announcements), tags, sequence sets, LIST
//! patterns.

/// One token of a command. Parenthesised lists are flat (`(` and `)` are tokens);
/// `BODY[...]<...>` is one atom, spaces and parentheses inside the brackets included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    LParen,
    RParen,
}

impl Tok {
    pub(super) fn atom(&self) -> Option<&str> {
        match self {
            Tok::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// An `astring` (atom, quoted string or literal) as text.
    pub(super) fn astring(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Tok::Atom(a) => Some(std::borrow::Cow::Borrowed(a.as_str())),
            Tok::Str(s) => Some(String::from_utf8_lossy(s)),
            _ => None,
        }
    }

    pub(super) fn is_atom(&self, word: &str) -> bool {
        self.atom().is_some_and(|a| a.eq_ignore_ascii_case(word))
    }
}

/// A literal announced at the end of a line: `{len}` (synchronizing) or `{len+}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Literal {
    pub(super) len: usize,
    pub(super) sync: bool,
}

/// Appends the tokens of one line (CRLF removed) to `out`; returns the literal that
/// ends the line, if any.
pub(super) fn tokenize(line: &[u8], out: &mut Vec<Tok>) -> Result<Option<Literal>, &'static str> {
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'"' => {
                i += 1;
                let mut s = Vec::new();
                loop {
                    match line.get(i) {
                        None => return Err("Unterminated quoted string"),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match line.get(i + 1) {
                            Some(&c @ (b'"' | b'\\')) => {
                                s.push(c);
                                i += 2;
                            }
                            _ => return Err("Invalid escape in quoted string"),
                        },
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            b'{' => {
                let inner = line[i + 1..]
                    .strip_suffix(b"}")
                    .ok_or("A literal must end the line")?;
                let (digits, sync) = match inner.strip_suffix(b"+") {
                    Some(d) => (d, false),
                    None => (inner, true),
                };
                if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit)
                {
                    return Err("Invalid literal");
                }
                let len = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    .ok_or("Invalid literal")?;
                return Ok(Some(Literal { len, sync }));
            }
            _ => {
                let start = i;
                let mut depth = 0u32;
                while i < line.len() {
                    match line[i] {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b'(' | b')' | b'"' | b'{' if depth == 0 => break,
                        c if c < 0x20 || c == 0x7f => return Err("Control character in command"),
                        _ => {}
                    }
                    i += 1;
                }
                out.push(Tok::Atom(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
            }
        }
    }
    Ok(None)
}

pub(super) fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && !tag.contains(['+', '*', '%', '\\', '[', ']'])
}

pub(super) fn is_inbox(tok: &Tok) -> bool {
    tok.astring()
        .is_some_and(|m| m.eq_ignore_ascii_case("INBOX"))
}

// ---------------------------------------------------------------------------------
// Sequence sets
// ---------------------------------------------------------------------------------

/// Sorted, disjoint, inclusive ranges.
pub(super) type Ranges = Vec<(u32, u32)>;

pub(super) fn seq_number(s: &str) -> Result<Option<u32>, &'static str> {
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Invalid sequence set");
    }
    match s.parse::<u32>() {
        Ok(0) | Err(_) => Err("Invalid sequence set"),
        Ok(n) => Ok(Some(n)),
    }
}

/// Parses a sequence set against a mailbox of `max` messages. With `clip` (UIDs,
/// SEARCH) numbers outside the mailbox are ignored (`n:*` past the end still names the
/// last message, RFC 3501 §6.4.8); without it (message sequence numbers) they are an
/// error, except that `*` in an empty mailbox names nothing.
pub(super) fn parse_seq_set(s: &str, max: u32, clip: bool) -> Result<Ranges, &'static str> {
    let mut out = Ranges::new();
    for elem in s.split(',') {
        let (a, b) = elem.split_once(':').unwrap_or((elem, elem));
        let (a, b) = (seq_number(a)?, seq_number(b)?);
        let star = a.is_none() || b.is_none();
        let (a, b) = (a.unwrap_or(max), b.unwrap_or(max));
        let (lo, hi) = (a.min(b), a.max(b));
        if clip {
            let (lo, hi) = (lo.max(1), hi.min(max));
            if lo <= hi {
                out.push((lo, hi));
            }
        } else if max == 0 && star {
            continue;
        } else if hi > max || lo == 0 {
            return Err("Invalid message sequence number");
        } else {
            out.push((lo, hi));
        }
    }
    out.sort_unstable();
    let mut merged = Ranges::with_capacity(out.len());
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged)
}

pub(super) fn ranges_contain(ranges: &Ranges, x: u32) -> bool {
    let i = ranges.partition_point(|&(_, hi)| hi < x);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= x)
}

/// LIST pattern matching: `*` and `%` match any run of characters (the only mailbox,
/// INBOX, has no hierarchy); case-insensitive, as INBOX is.
pub(super) fn wildcard_match(pattern: &str, name: &str) -> bool {
    pub(super) fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*' | b'%', rest)) => (0..=n.len()).any(|k| go(rest, &n[k..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, nrest)| c.eq_ignore_ascii_case(d) && go(rest, nrest)),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}
