//! nom 8 streaming parsers for the POP3 the machines read.
//!
//! Client side: the keyword, and the commands of the AUTHORIZATION state (CAPA, QUIT,
//! STLS, USER, PASS, AUTH, APOP; anything else is `Other`). Server side: `+OK` /
//! `-ERR` status lines with RFC 2449 response codes, SASL continuations (`+ text`),
//! lines of a multi-line body (dot-stuffing removed) and CAPA lines.
//!
//! All parsers are *streaming*: running out of input gives `Err::Incomplete`, which
//! means "need more", not "malformed". The machines frame lines first
//! ([`find_line`](crate::proto::line::find_line)) and only parse complete lines, so for
//! them `Incomplete` never happens; the parsers stay honest about it anyway.
//!
//! Leniencies (as Dovecot): a bare LF ends a line; 8-bit bytes are allowed in USER and
//! PASS arguments (UTF-8 names and passwords); no-argument commands may carry
//! trailing spaces.

use nom::branch::alt;
use nom::bytes::streaming::{tag, tag_no_case, take_till, take_while, take_while1};
use nom::character::streaming::{char, space0};
use nom::combinator::{map, opt, value};
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::{IResult, Parser};

use super::types::{BodyLine, Command, Response, Sensitive, Status};

type R<'a, T> = IResult<&'a [u8], T>;

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Bytes of a USER / PASS argument: anything but NUL, CR and LF.
fn is_arg_char(b: u8) -> bool {
    !matches!(b, 0 | b'\r' | b'\n')
}

/// Characters of a response code (between the brackets): printable ASCII except the
/// brackets themselves.
fn is_code_char(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'[' && b != b']'
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

/// A command keyword (or SASL mechanism name): printable ASCII, no spaces.
pub fn keyword(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(|b: u8| b.is_ascii_graphic()).parse(i)
}

/// The end of a command without arguments: optional spaces, then the line end.
fn no_args(i: &[u8]) -> R<'_, ()> {
    value((), pair(space0, eol)).parse(i)
}

/// `SP mechanism [SP initial-response]`.
fn auth_args(i: &[u8]) -> R<'_, (&[u8], Option<Sensitive<'_>>)> {
    pair(
        preceded(sp, keyword),
        opt(map(
            preceded(sp, take_while1(is_base64_char)),
            |r: &[u8]| Sensitive(if r == b"=" { b"" } else { r }),
        )),
    )
    .parse(i)
}

/// One complete command, line end included.
pub fn command(i: &[u8]) -> R<'_, Command<'_>> {
    let (i, name) = keyword(i)?;
    match name.to_ascii_uppercase().as_slice() {
        b"CAPA" => value(Command::Capa, no_args).parse(i),
        b"QUIT" => value(Command::Quit, no_args).parse(i),
        b"STLS" => value(Command::Stls, no_args).parse(i),
        b"USER" => map(delimited(sp, take_while1(is_arg_char), eol), Command::User).parse(i),
        b"PASS" => map(delimited(sp, take_while(is_arg_char), eol), |p| {
            Command::Pass(Sensitive(p))
        })
        .parse(i),
        b"AUTH" => map(terminated(opt(auth_args), eol), |args| match args {
            None => Command::Auth {
                mechanism: None,
                initial_response: None,
            },
            Some((mechanism, initial_response)) => Command::Auth {
                mechanism: Some(mechanism),
                initial_response,
            },
        })
        .parse(i),
        b"APOP" => value(Command::Apop, pair(opt(preceded(sp, text)), eol)).parse(i),
        _ => map(pair(opt(preceded(sp, text)), eol), |_| Command::Other {
            name,
        })
        .parse(i),
    }
}

/// `[code]` of RFC 2449: returns the text between the brackets.
fn code(i: &[u8]) -> R<'_, &[u8]> {
    delimited(char('['), take_while1(is_code_char), char(']')).parse(i)
}

/// `[SP ["[" code "]" [SP]] text] line-end`.
fn resp_text(i: &[u8]) -> R<'_, (Option<&[u8]>, &[u8])> {
    alt((
        map(eol, |_| (None, &b""[..])),
        preceded(
            sp,
            pair(opt(terminated(code, opt(sp))), terminated(text, eol)),
        ),
    ))
    .parse(i)
}

fn status(i: &[u8]) -> R<'_, Response<'_>> {
    let (i, status) = alt((
        value(Status::Ok, tag_no_case("+OK")),
        value(Status::Err, tag_no_case("-ERR")),
    ))
    .parse(i)?;
    let (i, (code, text)) = resp_text(i)?;
    Ok((i, Response::Status { status, code, text }))
}

/// `"+" [SP text] line-end` (RFC 5034 says `"+" SP`; a bare `+` is accepted).
fn continuation(i: &[u8]) -> R<'_, Response<'_>> {
    map(
        preceded(
            char('+'),
            alt((map(eol, |_| &b""[..]), delimited(sp, text, eol))),
        ),
        Response::Continuation,
    )
    .parse(i)
}

/// One server response line, line end included.
pub fn response(i: &[u8]) -> R<'_, Response<'_>> {
    alt((status, continuation)).parse(i)
}

/// One line of a multi-line response body: the `.` terminator, or a line with its
/// leading termination octet (dot-stuffing) removed.
pub fn body_line(i: &[u8]) -> R<'_, BodyLine<'_>> {
    alt((
        value(BodyLine::End, pair(char('.'), eol)),
        map(
            terminated(preceded(opt(char('.')), text), eol),
            BodyLine::Line,
        ),
    ))
    .parse(i)
}

/// A CAPA body line: the capability name (upper-cased) and its arguments.
pub fn capability(line: &[u8]) -> Option<(String, Vec<&[u8]>)> {
    let mut words = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty());
    let name = words.next()?;
    Some((
        String::from_utf8_lossy(name).to_ascii_uppercase(),
        words.collect(),
    ))
}

#[cfg(test)]
mod tests;
