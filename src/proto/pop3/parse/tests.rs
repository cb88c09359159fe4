//! (input, expected) tables for every parser.

use super::*;
use proptest::prelude::*;

use crate::proto::testing::{Out, Row, done, run};

#[test]
fn keyword_table() {
    let rows: &[Row<Out<&[u8]>>] = &[
        (b"USER alice", done(b"USER", b" alice")),
        (b"capa\r\n", done(b"capa", b"\r\n")),
        (b"X-FOO\n", done(b"X-FOO", b"\n")),
        (b" USER", Out::Bad),
        (b"\r\n", Out::Bad),
        (b"\xc3\xa4 ", Out::Bad),
        (b"USER", Out::More),
    ];
    for (input, expected) in rows {
        assert_eq!(run(keyword(input)), *expected, "{input:?}");
    }
}

#[test]
fn command_table() {
    use Command::*;
    let auth = |mechanism: Option<&'static [u8]>, ir: Option<&'static [u8]>| Auth {
        mechanism,
        initial_response: ir.map(Sensitive),
    };
    let rows: Vec<Row<Out<Command<'_>>>> = vec![
        (b"CAPA\r\n", done(Capa, b"")),
        (b"capa\r\nQUIT", done(Capa, b"QUIT")),
        (b"Quit\n", done(Quit, b"")),
        (b"STLS  \r\n", done(Stls, b"")),
        (b"USER alice\r\n", done(User(b"alice"), b"")),
        (b"user Al Ice \r\n", done(User(b"Al Ice "), b"")),
        (
            "USER j\u{f6}rg\r\n".as_bytes(),
            done(User("j\u{f6}rg".as_bytes()), b""),
        ),
        (b"PASS secret\r\n", done(Pass(Sensitive(b"secret")), b"")),
        (
            b"PASS  two words \r\nSTAT\r\n",
            done(Pass(Sensitive(b" two words ")), b"STAT\r\n"),
        ),
        (b"PASS \r\n", done(Pass(Sensitive(b"")), b"")),
        (b"AUTH\r\n", done(auth(None, None), b"")),
        (b"AUTH PLAIN\r\n", done(auth(Some(b"PLAIN"), None), b"")),
        (
            b"auth plain AGEAYg==\r\n",
            done(auth(Some(b"plain"), Some(b"AGEAYg==")), b""),
        ),
        (
            b"AUTH PLAIN =\r\n",
            done(auth(Some(b"PLAIN"), Some(b"")), b""),
        ),
        (
            b"AUTH XOAUTH2 dXNlcj0=\r\n",
            done(auth(Some(b"XOAUTH2"), Some(b"dXNlcj0=")), b""),
        ),
        (
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
            done(Apop, b""),
        ),
        (b"APOP\r\n", done(Apop, b"")),
        (b"STAT\r\n", done(Other { name: b"STAT" }, b"")),
        (b"retr 1\r\n", done(Other { name: b"retr" }, b"")),
        (b"NOOP\r\n", done(Other { name: b"NOOP" }, b"")),
        (b"USERX a\r\n", done(Other { name: b"USERX" }, b"")),
        // incomplete lines
        (b"USER alice", Out::More),
        (b"CAPA", Out::More),
        (b"PASS secret\r", Out::More),
        // syntax errors
        (b"CAPA x\r\n", Out::Bad),
        (b"QUIT now\r\n", Out::Bad),
        (b"USER\r\n", Out::Bad),
        (b"USER \r\n", Out::Bad),
        (b"USER a\0b\r\n", Out::Bad),
        (b"USER a\rb\r\n", Out::Bad),
        (b"PASS\r\n", Out::Bad),
        (b"PASS a\0b\r\n", Out::Bad),
        (b"AUTH \r\n", Out::Bad),
        (b"AUTH PLAIN !!!\r\n", Out::Bad),
        (b"AUTH PLAIN AGEA YQ==\r\n", Out::Bad),
        (b"STAT\x01\r\n", Out::Bad),
        (b" USER a\r\n", Out::Bad),
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
fn response_table() {
    let st = |status, code: Option<&'static [u8]>, text: &'static [u8]| Response::Status {
        status,
        code,
        text,
    };
    let rows: Vec<Row<Out<Response<'_>>>> = vec![
        (
            b"+OK Dovecot ready.\r\n",
            done(st(Status::Ok, None, b"Dovecot ready."), b""),
        ),
        (
            b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\nX",
            done(
                st(
                    Status::Ok,
                    None,
                    b"POP3 server ready <1896.697170952@dbc.mtview.ca.us>",
                ),
                b"X",
            ),
        ),
        (b"+OK\r\n", done(st(Status::Ok, None, b""), b"")),
        (b"+ok hi\n", done(st(Status::Ok, None, b"hi"), b"")),
        (
            b"-ERR [SYS/TEMP] Temporary authentication failure.\r\n",
            done(
                st(
                    Status::Err,
                    Some(b"SYS/TEMP"),
                    b"Temporary authentication failure.",
                ),
                b"",
            ),
        ),
        (
            b"-ERR [AUTH] Authentication failed.\r\n",
            done(
                st(Status::Err, Some(b"AUTH"), b"Authentication failed."),
                b"",
            ),
        ),
        (
            b"-ERR [IN-USE]\r\n",
            done(st(Status::Err, Some(b"IN-USE"), b""), b""),
        ),
        (b"-ERR\r\n", done(st(Status::Err, None, b""), b"")),
        (
            b"-ERR [x y] z\r\n",
            done(st(Status::Err, None, b"[x y] z"), b""),
        ),
        (b"+ \r\n", done(Response::Continuation(b""), b"")),
        (b"+\r\n", done(Response::Continuation(b""), b"")),
        (
            b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n",
            done(Response::Continuation(b"eyJzdGF0dXMiOiI0MDEifQ=="), b""),
        ),
        (b"+OKAY\r\n", Out::Bad),
        (b"-ERROR x\r\n", Out::Bad),
        (b"+x\r\n", Out::Bad),
        (b"OK\r\n", Out::Bad),
        (b"* OK hi\r\n", Out::Bad),
        (b"\r\n", Out::Bad),
        (b"+OK a\rb\r\n", Out::Bad),
        (b"+OK partial", Out::More),
        (b"-ERR [SYS/TEMP", Out::More),
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

#[test]
fn body_line_table() {
    use BodyLine::*;
    let rows: &[Row<Out<BodyLine<'_>>>] = &[
        (b".\r\n", done(End, b"")),
        (b".\nX", done(End, b"X")),
        (b"SASL PLAIN\r\n", done(Line(b"SASL PLAIN"), b"")),
        (b"..\r\n", done(Line(b"."), b"")),
        (b"..x\r\n", done(Line(b".x"), b"")),
        (b".x\r\n", done(Line(b"x"), b"")),
        (b"\r\n", done(Line(b""), b"")),
        (b". \r\n", done(Line(b" "), b"")),
        (b".", Out::More),
        (b"USER", Out::More),
        (b"a\rb\r\n", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(run(body_line(input)), *expected, "{input:?}");
    }
}

#[test]
fn capability_table() {
    type CapRow = (
        &'static [u8],
        Option<(&'static str, &'static [&'static [u8]])>,
    );
    let rows: &[CapRow] = &[
        (b"STLS", Some(("STLS", &[]))),
        (
            b"sasl PLAIN  XOAUTH2 OAUTHBEARER",
            Some(("SASL", &[b"PLAIN", b"XOAUTH2", b"OAUTHBEARER"])),
        ),
        (b" USER\t", Some(("USER", &[]))),
        (b"", None),
        (b"   ", None),
    ];
    for (input, expected) in rows {
        let got = capability(input);
        let want = expected.map(|(n, a)| (n.to_owned(), a.to_vec()));
        assert_eq!(got, want, "{input:?}");
    }
}

proptest! {
    /// No parser panics on any input.
    #[test]
    fn parsers_total(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = command(&input);
        let _ = response(&input);
        let _ = body_line(&input);
        let _ = capability(&input);
    }

    /// Every proper prefix of a complete command needs more input.
    #[test]
    fn command_prefixes_need_more(user in "[!-~]{1,8}", pass in "[ -~]{0,8}") {
        for line in [format!("USER {user}\r\n"), format!("PASS {pass}\r\n")] {
            let input = line.as_bytes();
            prop_assert!(command(input).is_ok());
            for cut in 0..input.len() {
                prop_assert!(matches!(command(&input[..cut]), Err(nom::Err::Incomplete(_))), "cut {}", cut);
            }
        }
    }
}
