//! nom 8 streaming parsers for the IMAP the machines read.
//!
//! Client side: tag, atom, quoted, literal header, astring, and the pre-login commands
//! (CAPABILITY, NOOP, LOGOUT, STARTTLS, ID, LOGIN, AUTHENTICATE; anything else is
//! `Other`). Server side: greeting / untagged / tagged status, CAPABILITY data and
//! continuation requests.
//!
//! All parsers are *streaming*: running out of input gives `Err::Incomplete`, which
//! means "need more", not "malformed". The machines only call [`command`] and
//! [`response`] on input that ends with a line end, so the one place `Incomplete`
//! surfaces is a LOGIN whose literal data has not arrived yet — which is exactly how
//! the downstream machine learns that a literal may be accepted.
//!
//! Leniencies (as Dovecot): a bare LF ends a line; 8-bit bytes are allowed in atoms and
//! quoted strings of LOGIN arguments (UTF-8 passwords sent by old clients).

use nom::branch::alt;
use nom::bytes::streaming::{tag, take, take_till, take_while_m_n, take_while1};
use nom::character::streaming::{char, one_of};
use nom::combinator::{map, map_res, opt, recognize, verify};
use nom::multi::many0_count;
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::{IResult, Parser};

use super::types::{AString, Code, Command, CommandBody, Response, Sensitive, Status};
use crate::proto::line::strip_eol;

type R<'a, T> = IResult<&'a [u8], T>;

/// `atom-specials` without SP and CTL (handled by the range checks).
const ATOM_SPECIALS: &[u8] = b"(){%*\"\\]";

/// ATOM-CHAR (ASCII only): used for command names, mechanisms and response codes.
pub fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !ATOM_SPECIALS.contains(&b)
}

/// ASTRING-CHAR, plus 8-bit bytes (lenient, for UTF-8 user names and passwords).
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']' || b >= 0x80
}

/// Tag characters: ASTRING-CHAR except `+`, ASCII only.
pub fn is_tag_char(b: u8) -> bool {
    (is_atom_char(b) || b == b']') && b != b'+'
}

/// Characters allowed unescaped inside a quoted string (8-bit allowed, no NUL/CR/LF).
fn is_quoted_char(b: u8) -> bool {
    !matches!(b, 0 | b'\r' | b'\n' | b'"' | b'\\')
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// CRLF, or a bare LF.
pub fn eol(i: &[u8]) -> R<'_, &[u8]> {
    alt((tag("\r\n"), tag("\n"))).parse(i)
}

fn sp(i: &[u8]) -> R<'_, char> {
    char(' ').parse(i)
}

/// Everything up to (not including) the line end.
fn text(i: &[u8]) -> R<'_, &[u8]> {
    take_till(|b| b == b'\r' || b == b'\n').parse(i)
}

pub fn tag_token(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(is_tag_char).parse(i)
}

pub fn atom(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(is_atom_char).parse(i)
}

/// A quoted string; returns the bytes between the quotes, escapes still in.
pub fn quoted(i: &[u8]) -> R<'_, &[u8]> {
    delimited(
        char('"'),
        recognize(many0_count(alt((
            take_while1(is_quoted_char),
            recognize(pair(char('\\'), one_of("\"\\"))),
        )))),
        char('"'),
    )
    .parse(i)
}

/// `{n}` or `{n+}` and its line end: `(n, synchronizing)`.
pub fn literal_header(i: &[u8]) -> R<'_, (usize, bool)> {
    let number = map_res(take_while_m_n(1, 10, |b: u8| b.is_ascii_digit()), |d| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<usize>().map_err(|_| ()))
    });
    map(
        terminated(
            delimited(char('{'), pair(number, opt(char('+'))), char('}')),
            eol,
        ),
        |(n, plus)| (n, plus.is_none()),
    )
    .parse(i)
}

/// A literal's data (CHAR8: no NUL).
pub fn literal(i: &[u8]) -> R<'_, &[u8]> {
    let (i, (n, _sync)) = literal_header(i)?;
    verify(take(n), |d: &[u8]| !d.contains(&0)).parse(i)
}

pub fn astring(i: &[u8]) -> R<'_, AString<'_>> {
    alt((
        map(take_while1(is_astring_char), AString::Atom),
        map(quoted, AString::Quoted),
        map(literal, AString::Literal),
    ))
    .parse(i)
}

/// `tag SP command-name`: enough to answer a command we cannot parse in full.
pub fn command_head(i: &[u8]) -> R<'_, (&[u8], &[u8])> {
    pair(terminated(tag_token, sp), atom).parse(i)
}

/// One complete command, line end included.
pub fn command(i: &[u8]) -> R<'_, Command<'_>> {
    let (i, (tag, name)) = command_head(i)?;
    let upper = name.to_ascii_uppercase();
    let (i, body) = match upper.as_slice() {
        b"CAPABILITY" => (i, CommandBody::Capability),
        b"NOOP" => (i, CommandBody::Noop),
        b"LOGOUT" => (i, CommandBody::Logout),
        b"STARTTLS" => (i, CommandBody::StartTls),
        b"ID" => map(preceded(sp, text), |_| CommandBody::Id).parse(i)?,
        b"LOGIN" => map(
            pair(preceded(sp, astring), preceded(sp, astring)),
            |(username, password)| CommandBody::Login { username, password },
        )
        .parse(i)?,
        b"AUTHENTICATE" => map(
            pair(
                preceded(sp, atom),
                opt(preceded(sp, take_while1(is_base64_char))),
            ),
            |(mechanism, ir)| CommandBody::Authenticate {
                mechanism,
                initial_response: ir.map(|r: &[u8]| Sensitive(if r == b"=" { b"" } else { r })),
            },
        )
        .parse(i)?,
        _ => map(opt(preceded(sp, text)), |_| CommandBody::Other { name }).parse(i)?,
    };
    let (i, _) = eol(i)?;
    Ok((i, Command { tag, body }))
}

/// If a line (line end included) ends with a literal announcement `{n}` / `{n+}`,
/// returns `(n, synchronizing)`; a number too large for `usize` reads as `usize::MAX`.
pub fn trailing_literal(line: &[u8]) -> Option<(usize, bool)> {
    let body = strip_eol(line).strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let inner = &body[open + 1..];
    let (digits, sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, false),
        None => (inner, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    Some((n, sync))
}

fn code(i: &[u8]) -> R<'_, Code<'_>> {
    map(
        delimited(
            char('['),
            pair(
                atom,
                opt(preceded(
                    sp,
                    take_till(|b| matches!(b, b']' | b'\r' | b'\n')),
                )),
            ),
            char(']'),
        ),
        |(name, args)| Code { name, args },
    )
    .parse(i)
}

/// `[SP] ["[" code "]" [SP]] text line-end` (servers differ in what they omit).
fn resp_text(i: &[u8]) -> R<'_, (Option<Code<'_>>, &[u8])> {
    let (i, _) = opt(sp).parse(i)?;
    let (i, code) = opt(terminated(code, opt(sp))).parse(i)?;
    let (i, text) = terminated(text, eol).parse(i)?;
    Ok((i, (code, text)))
}

fn status_word(word: &[u8], tagged: bool) -> Option<Status> {
    match word.to_ascii_uppercase().as_slice() {
        b"OK" => Some(Status::Ok),
        b"NO" => Some(Status::No),
        b"BAD" => Some(Status::Bad),
        b"PREAUTH" if !tagged => Some(Status::PreAuth),
        b"BYE" if !tagged => Some(Status::Bye),
        _ => None,
    }
}

fn continuation(i: &[u8]) -> R<'_, Response<'_>> {
    map(
        preceded(char('+'), terminated(preceded(opt(sp), text), eol)),
        Response::Continuation,
    )
    .parse(i)
}

fn untagged(i: &[u8]) -> R<'_, Response<'_>> {
    let (i, word) = preceded(tag("* "), atom).parse(i)?;
    if let Some(status) = status_word(word, false) {
        let (i, (code, text)) = resp_text(i)?;
        return Ok((
            i,
            Response::Status {
                tag: None,
                status,
                code,
                text,
            },
        ));
    }
    if word.eq_ignore_ascii_case(b"CAPABILITY") {
        return map(terminated(preceded(sp, text), eol), Response::Capability).parse(i);
    }
    map(terminated(text, eol), |_| Response::OtherUntagged).parse(i)
}

fn tagged(i: &[u8]) -> R<'_, Response<'_>> {
    let (i, (tag, status)) = pair(
        terminated(tag_token, sp),
        map_res(atom, |w| status_word(w, true).ok_or(())),
    )
    .parse(i)?;
    let (i, (code, text)) = resp_text(i)?;
    Ok((
        i,
        Response::Status {
            tag: Some(tag),
            status,
            code,
            text,
        },
    ))
}

/// One server response line, line end included.
pub fn response(i: &[u8]) -> R<'_, Response<'_>> {
    alt((continuation, untagged, tagged)).parse(i)
}

#[cfg(test)]
mod tests;
