//! nom 8 parsers for the SMTP the machines read.
//!
//! Client side: the command verb and the pre-login commands (EHLO, HELO, STARTTLS,
//! AUTH, NOOP, RSET, QUIT, HELP, VRFY, EXPN, MAIL, RCPT, DATA, BDAT; anything else is
//! `Other`). Server side: reply lines (`250-...` / `250 ...`), enhanced status codes
//! (RFC 3463) and EHLO keyword lines.
//!
//! [`command`] and [`reply_line`] are *streaming*: running out of input gives
//! `Err::Incomplete` ("need more", not "malformed"); the machines only call them on
//! input that ends with a line end. [`enhanced_code`] and [`ehlo_line`] read the text
//! of a line that is already complete, so they are *complete* parsers.
//!
//! Leniencies (as Postfix and Dovecot): a bare LF ends a line; verbs are
//! case-insensitive; one or more spaces separate arguments and trailing spaces are
//! ignored; 8-bit (UTF-8) bytes are allowed in the EHLO domain (SMTPUTF8 clients).

use nom::branch::alt;
use nom::bytes::complete as bc;
use nom::bytes::streaming::{tag, tag_no_case, take_till, take_while, take_while_m_n, take_while1};
use nom::character::complete as cc;
use nom::combinator::{eof, map, map_res, opt, peek, rest, verify};
use nom::sequence::{preceded, separated_pair, terminated};
use nom::{IResult, Parser};

use super::types::{Command, EnhancedCode, ReplyLine, Sensitive};

type R<'a, T> = IResult<&'a [u8], T>;

/// Longest EHLO/HELO argument we accept (RFC 1035's limit for a domain name); it is
/// repeated in the upstream EHLO.
pub const MAX_DOMAIN: usize = 255;

/// CRLF, or a bare LF.
pub fn eol(i: &[u8]) -> R<'_, &[u8]> {
    alt((tag("\r\n"), tag("\n"))).parse(i)
}

/// One or more spaces (RFC 5321 says one; clients that send more exist).
fn sp(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(|b| b == b' ').parse(i)
}

/// Trailing spaces and the line end.
fn end(i: &[u8]) -> R<'_, &[u8]> {
    preceded(take_while(|b| b == b' '), eol).parse(i)
}

/// Everything up to (not including) the line end.
fn text(i: &[u8]) -> R<'_, &[u8]> {
    take_till(|b| b == b'\r' || b == b'\n').parse(i)
}

/// Printable ASCII without space.
fn is_visible(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
}

/// The command verb: letters only.
pub fn verb(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphabetic()).parse(i)
}

/// An EHLO/HELO argument: a domain or address literal, printable and UTF-8, at most
/// [`MAX_DOMAIN`] bytes.
fn domain(i: &[u8]) -> R<'_, &[u8]> {
    verify(take_while1(|b| is_visible(b) || b >= 0x80), |d: &[u8]| {
        d.len() <= MAX_DOMAIN && std::str::from_utf8(d).is_ok()
    })
    .parse(i)
}

/// A SASL mechanism name (RFC 4422: upper-case letters, digits, `-`, `_`; we accept
/// lower case too).
fn mechanism(i: &[u8]) -> R<'_, &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_').parse(i)
}

/// `AUTH mechanism [initial-response]`; the response is any printable word (the
/// machine decodes it and answers "Invalid base64" itself).
fn auth_args(i: &[u8]) -> R<'_, Command<'_>> {
    map(
        (
            preceded(sp, mechanism),
            opt(preceded(sp, take_while1(is_visible))),
        ),
        |(mechanism, ir)| Command::Auth {
            mechanism,
            initial_response: ir.map(|r: &[u8]| Sensitive(if r == b"=" { b"" } else { r })),
        },
    )
    .parse(i)
}

/// `BDAT size [LAST]`; a size too large for `u64` saturates.
fn bdat_args(i: &[u8]) -> R<'_, Command<'_>> {
    let size = map(take_while1(|b: u8| b.is_ascii_digit()), |d: &[u8]| {
        d.iter().fold(0u64, |n, &c| {
            n.saturating_mul(10).saturating_add(u64::from(c - b'0'))
        })
    });
    map(
        (preceded(sp, size), opt(preceded(sp, tag_no_case("LAST")))),
        |(size, last)| Command::Bdat {
            size,
            last: last.is_some(),
        },
    )
    .parse(i)
}

/// `[SP text]`: an optional free-text argument.
fn opt_text(i: &[u8]) -> R<'_, Option<&[u8]>> {
    opt(preceded(sp, text)).parse(i)
}

/// `SP text`: a required free-text argument (not checked further).
fn req_text(i: &[u8]) -> R<'_, &[u8]> {
    preceded(sp, text).parse(i)
}

/// One complete command, line end included.
pub fn command(i: &[u8]) -> R<'_, Command<'_>> {
    let (i, name) = verb(i)?;
    let (i, cmd) = match name.to_ascii_uppercase().as_slice() {
        b"EHLO" => map(preceded(sp, domain), Command::Ehlo).parse(i)?,
        b"HELO" => map(preceded(sp, domain), Command::Helo).parse(i)?,
        b"STARTTLS" => (i, Command::StartTls),
        b"AUTH" => auth_args(i)?,
        b"NOOP" => (opt_text(i)?.0, Command::Noop),
        b"RSET" => (i, Command::Rset),
        b"QUIT" => (i, Command::Quit),
        b"HELP" => (opt_text(i)?.0, Command::Help),
        b"VRFY" => (req_text(i)?.0, Command::Vrfy),
        b"EXPN" => (req_text(i)?.0, Command::Expn),
        b"MAIL" => (req_text(i)?.0, Command::Mail),
        b"RCPT" => (req_text(i)?.0, Command::Rcpt),
        b"DATA" => (i, Command::Data),
        b"BDAT" => bdat_args(i)?,
        _ => (opt_text(i)?.0, Command::Other { name }),
    };
    let (i, _) = end(i)?;
    Ok((i, cmd))
}

/// A reply code (RFC 5321 4.2: `[2-5][0-5][0-9]`).
fn reply_code(i: &[u8]) -> R<'_, u16> {
    map_res(
        take_while_m_n(3, 3, |b: u8| b.is_ascii_digit()),
        |d: &[u8]| match *d {
            [a @ b'2'..=b'5', b @ b'0'..=b'5', c] => {
                Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
            }
            _ => Err(()),
        },
    )
    .parse(i)
}

/// One server reply line, line end included: `NNN-text`, `NNN text` or `NNN`.
pub fn reply_line(i: &[u8]) -> R<'_, ReplyLine<'_>> {
    let (i, code) = reply_code(i)?;
    let (i, last) = alt((
        map(tag("-"), |_| false),
        map(tag(" "), |_| true),
        map(peek(eol), |_| true),
    ))
    .parse(i)?;
    let (i, text) = terminated(text, eol).parse(i)?;
    Ok((i, ReplyLine { code, last, text }))
}

/// An enhanced status code at the start of a reply line's text, and the text after
/// it (leading spaces removed). The code must be followed by a space or end the text.
pub fn enhanced_code(text: &[u8]) -> R<'_, EnhancedCode> {
    // 1 to 3 digits, so always a u16
    let number = || {
        map(
            bc::take_while_m_n(1, 3, |b: u8| b.is_ascii_digit()),
            |d: &[u8]| d.iter().fold(0u16, |n, &c| n * 10 + u16::from(c - b'0')),
        )
    };
    let (after, (class, (subject, detail))) = separated_pair(
        cc::one_of("245"),
        cc::char('.'),
        separated_pair(number(), cc::char('.'), number()),
    )
    .parse(text)?;
    let (after, _) = alt((cc::space1, eof)).parse(after)?;
    let code = EnhancedCode {
        // one_of("245") yields an ASCII digit
        class: class as u8 - b'0',
        subject,
        detail,
    };
    Ok((after, code))
}

/// An EHLO reply line (after the first): `(keyword, parameters)`, the parameters
/// trimmed. The old `AUTH=PLAIN LOGIN` form reads as keyword `AUTH` with parameters
/// `PLAIN LOGIN`.
pub fn ehlo_line(text: &[u8]) -> R<'_, (&[u8], &[u8])> {
    let keyword = bc::take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'-');
    let params = alt((preceded(cc::one_of("= "), rest), eof));
    map((keyword, params), |(k, p): (&[u8], &[u8])| {
        (k, p.trim_ascii())
    })
    .parse(text)
}

/// Whether an EHLO keyword line (`AUTH PLAIN XOAUTH2`, `STARTTLS`...) has this
/// keyword (case-insensitive).
pub fn is_keyword(extension: &str, keyword: &str) -> bool {
    ehlo_line(extension.as_bytes())
        .is_ok_and(|(_, (k, _))| k.eq_ignore_ascii_case(keyword.as_bytes()))
}

/// Whether an EHLO reply offers `AUTH` with this mechanism (either form).
pub fn offers_mechanism(extensions: &[String], mechanism: &str) -> bool {
    extensions.iter().any(|e| match ehlo_line(e.as_bytes()) {
        Ok((_, (k, params))) if k.eq_ignore_ascii_case(b"AUTH") => params
            .split(|&b| b == b' ' || b == b'\t')
            .any(|m| m.eq_ignore_ascii_case(mechanism.as_bytes())),
        _ => false,
    })
}

#[cfg(test)]
mod tests;
