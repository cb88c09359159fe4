//! (input, expected) tables for every parser.

use super::*;
use proptest::prelude::*;

use crate::proto::testing::{Out, Row, done, run};

#[test]
fn command_table() {
    use Command::*;
    let auth = |mechanism: &'static [u8], ir: Option<&'static [u8]>| Auth {
        mechanism,
        initial_response: ir.map(Sensitive),
    };
    let rows: Vec<Row<Out<Command<'_>>>> = vec![
        (
            b"EHLO client.example\r\n",
            done(Ehlo(b"client.example"), b""),
        ),
        (
            b"ehlo [192.0.2.1]\r\nNOOP",
            done(Ehlo(b"[192.0.2.1]"), b"NOOP"),
        ),
        (b"EhLo x  \n", done(Ehlo(b"x"), b"")),
        (
            "EHLO b\u{fc}cher.example\r\n".as_bytes(),
            done(Ehlo("b\u{fc}cher.example".as_bytes()), b""),
        ),
        (b"HELO x\r\n", done(Helo(b"x"), b"")),
        (b"STARTTLS\r\n", done(StartTls, b"")),
        (b"starttls \r\n", done(StartTls, b"")),
        (b"AUTH PLAIN\r\n", done(auth(b"PLAIN", None), b"")),
        (
            b"AUTH plain AGEAYg==\r\n",
            done(auth(b"plain", Some(b"AGEAYg==")), b""),
        ),
        (b"AUTH PLAIN =\r\n", done(auth(b"PLAIN", Some(b"")), b"")),
        (
            b"AUTH LOGIN YWxpY2U=\r\n",
            done(auth(b"LOGIN", Some(b"YWxpY2U=")), b""),
        ),
        // the machine, not the parser, says "Invalid base64"
        (b"AUTH PLAIN !!\r\n", done(auth(b"PLAIN", Some(b"!!")), b"")),
        (b"AUTH X-OAUTH_2  \r\n", done(auth(b"X-OAUTH_2", None), b"")),
        (b"NOOP\r\n", done(Noop, b"")),
        (b"NOOP anything at all\r\n", done(Noop, b"")),
        (b"RSET\r\n", done(Rset, b"")),
        (b"QUIT\r\n", done(Quit, b"")),
        (b"HELP\r\n", done(Help, b"")),
        (b"HELP AUTH\r\n", done(Help, b"")),
        (b"VRFY postmaster\r\n", done(Vrfy, b"")),
        (b"EXPN staff\r\n", done(Expn, b"")),
        (b"MAIL FROM:<a@example.com> SIZE=10\r\n", done(Mail, b"")),
        (b"RCPT TO:<b@example.com>\r\n", done(Rcpt, b"")),
        (b"DATA\r\n", done(Data, b"")),
        (
            b"BDAT 42\r\nxx",
            done(
                Bdat {
                    size: 42,
                    last: false,
                },
                b"xx",
            ),
        ),
        (
            b"bdat 0 last\r\n",
            done(
                Bdat {
                    size: 0,
                    last: true,
                },
                b"",
            ),
        ),
        (
            b"BDAT 99999999999999999999999 LAST\r\n",
            done(
                Bdat {
                    size: u64::MAX,
                    last: true,
                },
                b"",
            ),
        ),
        (b"ETRN x\r\n", done(Other { name: b"ETRN" }, b"")),
        (b"XFOO\r\n", done(Other { name: b"XFOO" }, b"")),
        // incomplete lines: need more
        (b"EHLO x", Out::More),
        (b"AUTH PLAIN", Out::More),
        (b"QUIT\r", Out::More),
        // syntax errors
        (b"EHLO\r\n", Out::Bad),
        (b"EHLO a b\r\n", Out::Bad),
        (b"EHLO a\x01\r\n", Out::Bad),
        (b"EHLO \xff\xfe\r\n", Out::Bad),
        (b"STARTTLS now\r\n", Out::Bad),
        (b"QUIT x\r\n", Out::Bad),
        (b"DATA x\r\n", Out::Bad),
        (b"AUTH\r\n", Out::Bad),
        (b"AUTH PLAIN a b\r\n", Out::Bad),
        (b"AUTH PL@IN\r\n", Out::Bad),
        (b"VRFY\r\n", Out::Bad),
        (b"MAIL\r\n", Out::Bad),
        (b"BDAT\r\n", Out::Bad),
        (b"BDAT x\r\n", Out::Bad),
        (b"BDAT 5 FIRST\r\n", Out::Bad),
        (b"NOOP\rX\r\n", Out::Bad),
        (b"12 x\r\n", Out::Bad),
        (b" EHLO x\r\n", Out::Bad),
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
    // a domain of exactly MAX_DOMAIN bytes is fine, one more is not
    let long = format!("EHLO {}\r\n", "a".repeat(MAX_DOMAIN));
    assert!(command(long.as_bytes()).is_ok());
    let long = format!("EHLO {}\r\n", "a".repeat(MAX_DOMAIN + 1));
    assert_eq!(run(command(long.as_bytes())), Out::Bad);
}

#[test]
fn verb_table() {
    let rows: &[Row<Out<&[u8]>>] = &[
        (b"MAIL FROM:<>\r\n", done(b"MAIL", b" FROM:<>\r\n")),
        (b"mail:\r\n", done(b"mail", b":\r\n")),
        (b"DATA\r\n", done(b"DATA", b"\r\n")),
        (b"DATA", Out::More),
        (b"1MAIL\r\n", Out::Bad),
        (b"\r\n", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(run(verb(input)), *expected, "{input:?}");
    }
}

#[test]
fn reply_line_table() {
    let line = |code, last, text: &'static [u8]| ReplyLine { code, last, text };
    let rows: Vec<Row<Out<ReplyLine<'_>>>> = vec![
        (
            b"220 mx.example ESMTP ready\r\n",
            done(line(220, true, b"mx.example ESMTP ready"), b""),
        ),
        (
            b"250-mx.example\r\n250-PIPELINING\r\n",
            done(line(250, false, b"mx.example"), b"250-PIPELINING\r\n"),
        ),
        (b"250 \r\n", done(line(250, true, b""), b"")),
        (b"250\r\n", done(line(250, true, b""), b"")),
        (b"250-\n", done(line(250, false, b""), b"")),
        (b"334 \r\n", done(line(334, true, b""), b"")),
        (
            b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n",
            done(line(334, true, b"eyJzdGF0dXMiOiI0MDEifQ=="), b""),
        ),
        (
            b"535 5.7.8 Authentication failed\r\nX",
            done(line(535, true, b"5.7.8 Authentication failed"), b"X"),
        ),
        (b"559 x\r\n", done(line(559, true, b"x"), b"")),
        (b"250", Out::More),
        (b"25", Out::More),
        (b"250 partial", Out::More),
        (b"250-partial\r", Out::More),
        (b"199 x\r\n", Out::Bad),
        (b"600 x\r\n", Out::Bad),
        (b"260 x\r\n", Out::Bad),
        (b"2500 x\r\n", Out::Bad),
        (b"250x\r\n", Out::Bad),
        (b"250 a\rb\r\n", Out::Bad),
        (b"+OK\r\n", Out::Bad),
        (b"\r\n", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(
            run(reply_line(input)),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn enhanced_code_table() {
    let code = |class, subject, detail| EnhancedCode {
        class,
        subject,
        detail,
    };
    let rows: Vec<Row<Out<EnhancedCode>>> = vec![
        (b"2.0.0 OK", done(code(2, 0, 0), b"OK")),
        (b"5.7.8  Bad", done(code(5, 7, 8), b"Bad")),
        (b"4.7.0", done(code(4, 7, 0), b"")),
        (b"5.5.4 x", done(code(5, 5, 4), b"x")),
        (b"2.123.456 x", done(code(2, 123, 456), b"x")),
        (b"3.0.0 x", Out::Bad),
        (b"5.7 x", Out::Bad),
        (b"5.7.8x", Out::Bad),
        (b"5.1234.0 x", Out::Bad),
        (b"5..0 x", Out::Bad),
        (b"Authentication failed", Out::Bad),
        (b"", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(
            run(enhanced_code(input)),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn ehlo_line_table() {
    /// `(keyword, parameters)`
    type Pair<'a> = (&'a [u8], &'a [u8]);
    let rows: Vec<Row<Out<Pair<'_>>>> = vec![
        (b"PIPELINING", done((b"PIPELINING", b""), b"")),
        (b"SIZE 35882577", done((b"SIZE", b"35882577"), b"")),
        (
            b"AUTH PLAIN XOAUTH2 OAUTHBEARER",
            done((b"AUTH", b"PLAIN XOAUTH2 OAUTHBEARER"), b""),
        ),
        (b"AUTH=PLAIN LOGIN", done((b"AUTH", b"PLAIN LOGIN"), b"")),
        (b"STARTTLS ", done((b"STARTTLS", b""), b"")),
        (b"X-EXPS GSSAPI", done((b"X-EXPS", b"GSSAPI"), b"")),
        (b"8BITMIME", done((b"8BITMIME", b""), b"")),
        (b"SIZE,5", Out::Bad),
        (b" SIZE", Out::Bad),
        (b"", Out::Bad),
    ];
    for (input, expected) in rows {
        assert_eq!(
            run(ehlo_line(input)),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn keyword_and_mechanism_lookup() {
    let exts: Vec<String> = [
        "SIZE 10",
        "AUTH PLAIN xoauth2",
        "AUTH=OAUTHBEARER",
        "STARTTLS",
    ]
    .map(str::to_owned)
    .to_vec();
    assert!(offers_mechanism(&exts, "XOAUTH2"));
    assert!(offers_mechanism(&exts, "OAUTHBEARER"));
    assert!(offers_mechanism(&exts, "PLAIN"));
    assert!(!offers_mechanism(&exts, "LOGIN"));
    assert!(!offers_mechanism(&["SIZE XOAUTH2".to_owned()], "XOAUTH2"));
    assert!(!offers_mechanism(&["AUTHX XOAUTH2".to_owned()], "XOAUTH2"));
    assert!(is_keyword("starttls", "STARTTLS"));
    assert!(is_keyword("AUTH=PLAIN", "AUTH"));
    assert!(!is_keyword("STARTTLSX", "STARTTLS"));
    assert!(!is_keyword("X STARTTLS", "STARTTLS"));
}

proptest! {
    /// The parsers never panic on any input.
    #[test]
    fn parsers_total(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = command(&input);
        let _ = reply_line(&input);
        let _ = enhanced_code(&input);
        let _ = ehlo_line(&input);
        let _ = verb(&input);
    }

    /// Every prefix of a complete command line is "need more", never "malformed".
    #[test]
    fn command_prefixes_need_more(domain in "[a-z0-9.-]{1,20}", ir in "[A-Za-z0-9+/=]{1,20}",
                                  which in 0usize..4) {
        let line = match which {
            0 => format!("EHLO {domain}\r\n"),
            1 => format!("AUTH PLAIN {ir}\r\n"),
            2 => format!("MAIL FROM:<{domain}>\r\n"),
            _ => format!("BDAT {} LAST\r\n", domain.len()),
        };
        let input = line.as_bytes();
        prop_assert!(command(input).is_ok());
        for cut in 0..input.len() {
            prop_assert!(matches!(command(&input[..cut]), Err(nom::Err::Incomplete(_))), "cut {}", cut);
        }
    }
}
