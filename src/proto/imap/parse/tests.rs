//! (input, expected) tables for every parser.

use super::*;
use proptest::prelude::*;

use crate::proto::testing::{Out, Row, done, run};

#[test]
fn tag_table() {
    let rows: &[Row<Out<&[u8]>>] = &[
        (b"a1 ", done(b"a1", b" ")),
        (b"A.b]c LOGIN", done(b"A.b]c", b" LOGIN")),
        (b"a+b ", done(b"a", b"+b ")),
        (b"* OK", Out::Bad),
        (b"+ x", Out::Bad),
        (b"\"x ", Out::Bad),
        (b"abc", Out::More),
        (b"\xc3\xa4 ", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(run(tag_token(input)), *expected, "{input:?}");
    }
}

#[test]
fn quoted_table() {
    let rows: &[Row<Out<&[u8]>>] = &[
        (b"\"\" ", done(b"", b" ")),
        (b"\"abc\" ", done(b"abc", b" ")),
        (br#""a\"b" "#, done(br#"a\"b"#, b" ")),
        (br#""a\\" "#, done(br"a\\", b" ")),
        (
            "\"p\u{e4}ss\"\r\n".as_bytes(),
            done("p\u{e4}ss".as_bytes(), b"\r\n"),
        ),
        (br#""a\b" "#, Out::Bad),
        (b"\"a\r\nb\"", Out::Bad),
        (b"\"a\0\"", Out::Bad),
        (b"\"abc", Out::More),
        (b"\"ab\\", Out::More),
        (b"abc", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(run(quoted(input)), *expected, "{input:?}");
    }
}

#[test]
fn literal_header_table() {
    let rows: &[Row<Out<(usize, bool)>>] = &[
        (b"{5}\r\nhello", done((5, true), b"hello")),
        (b"{5+}\r\nhello", done((5, false), b"hello")),
        (b"{0}\r\n", done((0, true), b"")),
        (b"{5}\nx", done((5, true), b"x")),
        (b"{5}", Out::More),
        (b"{5}\r", Out::More),
        (b"{12", Out::More),
        (b"{}\r\n", Out::Bad),
        (b"{5-}\r\n", Out::Bad),
        (b"{5} \r\n", Out::Bad),
        (b"{12345678901}\r\n", Out::Bad),
        (b"{x}\r\n", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(run(literal_header(input)), *expected, "{input:?}");
    }
}

#[test]
fn astring_table() {
    use AString::*;
    let rows: &[Row<Out<AString<'_>>>] = &[
        (b"alice ", done(Atom(b"alice"), b" ")),
        (b"a]b\r\n", done(Atom(b"a]b"), b"\r\n")),
        (
            "j\u{f6}rg ".as_bytes(),
            done(Atom("j\u{f6}rg".as_bytes()), b" "),
        ),
        (b"\"a b\" ", done(Quoted(b"a b"), b" ")),
        (b"{3}\r\na b\r\n", done(Literal(b"a b"), b"\r\n")),
        (b"{3+}\r\n\"\r\n ", done(Literal(b"\"\r\n"), b" ")),
        (b"{3}\r\nab", Out::More),
        (b"{2}\r\na\0 ", Out::Bad),
        (b"(x) ", Out::Bad),
        (b"%", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(run(astring(input)), *expected, "{input:?}");
    }
}

#[test]
fn command_table() {
    use AString::*;
    use CommandBody::*;
    let cmd = |tag: &'static [u8], body| Command { tag, body };
    let rows: Vec<Row<Out<Command<'_>>>> = vec![
        (b"a CAPABILITY\r\n", done(cmd(b"a", Capability), b"")),
        (b"a capability\r\nb", done(cmd(b"a", Capability), b"b")),
        (b"a NOOP\n", done(cmd(b"a", Noop), b"")),
        (b"a LOGOUT\r\n", done(cmd(b"a", Logout), b"")),
        (b"a STARTTLS\r\n", done(cmd(b"a", StartTls), b"")),
        (b"a ID NIL\r\n", done(cmd(b"a", Id), b"")),
        (b"a ID (\"name\" \"x\")\r\n", done(cmd(b"a", Id), b"")),
        (
            b"a LOGIN alice secret\r\n",
            done(
                cmd(
                    b"a",
                    Login {
                        username: Atom(b"alice"),
                        password: Atom(b"secret"),
                    },
                ),
                b"",
            ),
        ),
        (
            b"a login \"al ice\" {3}\r\nx\"y\r\n",
            done(
                cmd(
                    b"a",
                    Login {
                        username: Quoted(b"al ice"),
                        password: Literal(b"x\"y"),
                    },
                ),
                b"",
            ),
        ),
        (
            b"a AUTHENTICATE PLAIN\r\n",
            done(
                cmd(
                    b"a",
                    Authenticate {
                        mechanism: b"PLAIN",
                        initial_response: None,
                    },
                ),
                b"",
            ),
        ),
        (
            b"a AUTHENTICATE plain AGEAYg==\r\n",
            done(
                cmd(
                    b"a",
                    Authenticate {
                        mechanism: b"plain",
                        initial_response: Some(Sensitive(b"AGEAYg==")),
                    },
                ),
                b"",
            ),
        ),
        (
            b"a AUTHENTICATE PLAIN =\r\n",
            done(
                cmd(
                    b"a",
                    Authenticate {
                        mechanism: b"PLAIN",
                        initial_response: Some(Sensitive(b"")),
                    },
                ),
                b"",
            ),
        ),
        (
            b"a SELECT INBOX\r\n",
            done(cmd(b"a", Other { name: b"SELECT" }), b""),
        ),
        (b"a FOO\r\n", done(cmd(b"a", Other { name: b"FOO" }), b"")),
        // literal data still missing: need more (the machine's cue for "+")
        (b"a LOGIN {5}\r\n", Out::More),
        (b"a LOGIN alice {6+}\r\nsec", Out::More),
        // syntax errors
        (b"a NOOP x\r\n", Out::Bad),
        (b"a LOGIN alice\r\n", Out::Bad),
        (b"a LOGIN alice secret extra\r\n", Out::Bad),
        (b"a LOGIN \"alice secret\r\n", Out::Bad),
        (b"a LOGIN {3}\r\nabc {3}\r\nxyz {1}\r\n", Out::Bad),
        (b"a AUTHENTICATE PLAIN !!!\r\n", Out::Bad),
        (b"a AUTHENTICATE\r\n", Out::Bad),
        (b"a CAPABILITY\rX\r\n", Out::Bad),
        (b"* LOGIN a b\r\n", Out::Bad),
        (b"a\r\n", Out::Bad),
        (b"\r\n", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(
            run(command(input)),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn trailing_literal_table() {
    let rows: &[Row<Option<(usize, bool)>>] = &[
        (b"a LOGIN {5}\r\n", Some((5, true))),
        (b"a LOGIN {5+}\r\n", Some((5, false))),
        (b"a LOGIN {5}\n", Some((5, true))),
        (b"{0}\r\n", Some((0, true))),
        (
            b"a LOGIN {99999999999999999999999}\r\n",
            Some((usize::MAX, true)),
        ),
        (b"a LOGIN {5} \r\n", None),
        (b"a LOGIN {}\r\n", None),
        (b"a LOGIN {+}\r\n", None),
        (b"a LOGIN {5x}\r\n", None),
        (b"a LOGIN \"{5}\"\r\n", None),
        (b"a NOOP\r\n", None),
    ];
    for (input, expected) in rows {
        assert_eq!(trailing_literal(input), *expected, "{input:?}");
    }
}

#[test]
fn response_table() {
    let status = |tag: Option<&'static [u8]>, status, code, text: &'static [u8]| Response::Status {
        tag,
        status,
        code,
        text,
    };
    let caps = Some(Code {
        name: b"CAPABILITY",
        args: Some(b"IMAP4rev1 AUTH=XOAUTH2"),
    });
    let rows: Vec<Row<Out<Response<'_>>>> = vec![
        (
            b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] Ready\r\n",
            done(status(None, Status::Ok, caps, b"Ready"), b""),
        ),
        (
            b"* OK Dovecot ready.\r\nA",
            done(status(None, Status::Ok, None, b"Dovecot ready."), b"A"),
        ),
        (b"* OK\r\n", done(status(None, Status::Ok, None, b""), b"")),
        (
            b"* ok hi\n",
            done(status(None, Status::Ok, None, b"hi"), b""),
        ),
        (
            b"* PREAUTH hi\r\n",
            done(status(None, Status::PreAuth, None, b"hi"), b""),
        ),
        (
            b"* BYE busy\r\n",
            done(status(None, Status::Bye, None, b"busy"), b""),
        ),
        (b"* [x\r\n", done(Response::OtherUntagged, b"")),
        (
            b"* OK [x\r\n",
            done(status(None, Status::Ok, None, b"[x"), b""),
        ),
        (
            b"* CAPABILITY IMAP4rev1 STARTTLS\r\n",
            done(Response::Capability(b"IMAP4rev1 STARTTLS"), b""),
        ),
        (b"* 3 EXISTS\r\n", done(Response::OtherUntagged, b"")),
        (b"+ \r\n", done(Response::Continuation(b""), b"")),
        (b"+\r\n", done(Response::Continuation(b""), b"")),
        (
            b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n",
            done(Response::Continuation(b"eyJzdGF0dXMiOiI0MDEifQ=="), b""),
        ),
        (
            b"A1 OK done\r\n",
            done(status(Some(b"A1"), Status::Ok, None, b"done"), b""),
        ),
        (
            b"A3 NO [UNAVAILABLE] later\r\n",
            done(
                status(
                    Some(b"A3"),
                    Status::No,
                    Some(Code {
                        name: b"UNAVAILABLE",
                        args: None,
                    }),
                    b"later",
                ),
                b"",
            ),
        ),
        (
            b"A3 BAD\r\n",
            done(status(Some(b"A3"), Status::Bad, None, b""), b""),
        ),
        (b"A1 BYE x\r\n", Out::Bad),
        (b"A1 FOO x\r\n", Out::Bad),
        (b"garbage\r\n", Out::Bad),
        (b"\r\n", Out::Bad),
        (b"* OK partial", Out::More),
    ];
    for (input, expected) in rows {
        assert_eq!(
            run(response(input)),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

proptest! {
    /// The command parser never panics, and only says "need more" when the input does
    /// not yet hold a complete line or a literal's data.
    #[test]
    fn command_total(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = command(&input);
        let _ = response(&input);
        let _ = trailing_literal(&input);
    }

    /// Splitting input never changes the answer once the whole command is there.
    #[test]
    fn command_prefixes_need_more(user in "[a-z]{1,8}", pass in "[ -~]{0,8}") {
        let mut input = format!("t LOGIN {user} ").into_bytes();
        input.extend(crate::proto::imap::encode::astring(pass.as_bytes()));
        input.extend(b"\r\n");
        let full = command(&input);
        prop_assert!(full.is_ok());
        for cut in 0..input.len() {
            prop_assert!(matches!(command(&input[..cut]), Err(nom::Err::Incomplete(_))), "cut {}", cut);
        }
    }
}
