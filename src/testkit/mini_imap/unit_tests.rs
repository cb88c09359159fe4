//! Unit tests of the parsers.

use super::fetch::*;
use super::sasl::*;
use super::syntax::*;

#[test]
fn tokenizes_commands() {
    let mut t = Vec::new();
    let lit = tokenize(
        b"a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)] BODY[]<0.10>)",
        &mut t,
    )
    .unwrap();
    assert_eq!(lit, None);
    assert_eq!(
        t,
        vec![
            Tok::Atom("a1".into()),
            Tok::Atom("FETCH".into()),
            Tok::Atom("1:*".into()),
            Tok::LParen,
            Tok::Atom("FLAGS".into()),
            Tok::Atom("BODY.PEEK[HEADER.FIELDS (FROM TO)]".into()),
            Tok::Atom("BODY[]<0.10>".into()),
            Tok::RParen,
        ]
    );
    t.clear();
    let lit = tokenize(br#"a2 LOGIN "us\"er" {12+}"#, &mut t).unwrap();
    assert_eq!(
        lit,
        Some(Literal {
            len: 12,
            sync: false
        })
    );
    assert_eq!(t[2], Tok::Str(b"us\"er".to_vec()));
    t.clear();
    assert_eq!(
        tokenize(b"a3 APPEND INBOX {5}", &mut t).unwrap(),
        Some(Literal { len: 5, sync: true })
    );
    for bad in [&b"a \"open"[..], b"a {5} x", b"a {x}", b"a \x01"] {
        assert!(tokenize(bad, &mut Vec::new()).is_err(), "{bad:?}");
    }
}

#[test]
fn sequence_sets() {
    assert_eq!(parse_seq_set("1:*", 3, false), Ok(vec![(1, 3)]));
    assert_eq!(parse_seq_set("1,3", 3, false), Ok(vec![(1, 1), (3, 3)]));
    assert_eq!(parse_seq_set("3:2,1", 3, false), Ok(vec![(1, 3)]));
    assert_eq!(parse_seq_set("*", 3, false), Ok(vec![(3, 3)]));
    assert!(parse_seq_set("4", 3, false).is_err());
    assert!(parse_seq_set("0", 3, false).is_err());
    assert!(parse_seq_set("1,,2", 3, false).is_err());
    assert_eq!(parse_seq_set("1:*", 0, false), Ok(vec![]));
    assert_eq!(parse_seq_set("9:*", 3, true), Ok(vec![(3, 3)]));
    assert_eq!(parse_seq_set("4:9", 3, true), Ok(vec![]));
    assert_eq!(parse_seq_set("1:*", 0, true), Ok(vec![]));
    let r = parse_seq_set("2,5:6", 10, true).unwrap();
    assert!(!ranges_contain(&r, 1) && ranges_contain(&r, 2) && ranges_contain(&r, 6));
    assert!(!ranges_contain(&r, 7) && !ranges_contain(&r, 4));
}

#[test]
fn sasl_messages() {
    assert_eq!(
        parse_xoauth2(b"user=a@b.c\x01auth=Bearer tok\x01\x01"),
        Some(("a@b.c".into(), "tok".into()))
    );
    assert_eq!(parse_xoauth2(b"user=a\x01auth=Basic tok\x01\x01"), None);
    assert_eq!(parse_xoauth2(b"auth=Bearer tok\x01\x01"), None);
    assert_eq!(
        parse_oauthbearer(b"n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer t\x01\x01"),
        Some(("a,b=c".into(), "t".into()))
    );
    assert_eq!(
        parse_oauthbearer(b"n,,\x01auth=bearer t\x01\x01"),
        Some((String::new(), "t".into()))
    );
    assert_eq!(
        parse_oauthbearer(b"p=tls-unique,,\x01auth=Bearer t\x01\x01"),
        None
    );
    assert_eq!(
        parse_oauthbearer(b"n,a=x=41,\x01auth=Bearer t\x01\x01"),
        None
    );
    assert_eq!(parse_oauthbearer(b"n,a=x,\x01host=h\x01\x01"), None);
}

#[test]
fn fetch_items_and_parts() {
    let mut t = Vec::new();
    tokenize(b"(UID BODY.PEEK[] body[text]<2.3> FAST)", &mut t).unwrap();
    assert_eq!(
        parse_fetch_items(&t).unwrap(),
        vec![
            Item::Uid,
            Item::Body {
                peek: true,
                part: Part::Full,
                partial: None
            },
            Item::Body {
                peek: false,
                part: Part::Text,
                partial: Some((2, 3))
            },
            Item::Flags,
            Item::InternalDate,
            Item::Size,
        ]
    );
    for bad in [
        "ENVELOPE",
        "BODY",
        "BODY[1]",
        "BODY[]<1.0>",
        "BODYSTRUCTURE",
    ] {
        assert!(
            parse_fetch_items(&[Tok::Atom(bad.into())]).is_err(),
            "{bad}"
        );
    }
    assert_eq!(
        split_message(b"A: b\r\n\r\nbody"),
        (&b"A: b\r\n\r\n"[..], &b"body"[..])
    );
    assert_eq!(split_message(b"A: b\r\n"), (&b"A: b\r\n"[..], &b""[..]));
    assert!(wildcard_match("*", "INBOX") && wildcard_match("in%", "INBOX"));
    assert!(!wildcard_match("Sent", "INBOX"));
}
