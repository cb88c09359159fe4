//! OAuth 2.0 logins: the XOAUTH2 and OAUTHBEARER messages and AUTHENTICATE.

use super::session::*;
use super::syntax::*;
use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mechanism {
    XOAuth2,
    OAuthBearer,
}

/// `Bearer <token>` (scheme case-insensitive) → token.
pub(super) fn bearer_token(auth: &str) -> Option<&str> {
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A` → (user, token).
pub(super) fn parse_xoauth2(raw: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (mut user, mut token) = (None, None);
    for field in text.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u);
        } else if let Some(a) = field.strip_prefix("auth=") {
            token = Some(bearer_token(a)?);
        }
    }
    Some((user?.to_owned(), token?.to_owned()))
}

/// GS2 `saslname` unescaping (RFC 5801): `=2C` → `,`, `=3D` → `=`.
pub(super) fn gs2_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3)? {
            "2C" | "2c" => out.push(','),
            "3D" | "3d" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// OAUTHBEARER (RFC 7628): `gs2-header ^A host=H ^A port=P ^A auth=Bearer T ^A ^A` →
/// (authzid or "", token). Channel binding (`p=`) is not supported.
pub(super) fn parse_oauthbearer(raw: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (gs2, kvpairs) = text.split_once('\x01')?;
    let mut gs2 = gs2.split(',');
    let (flag, authzid, end) = (gs2.next()?, gs2.next()?, gs2.next()?);
    if !matches!(flag, "n" | "y") || !end.is_empty() || gs2.next().is_some() {
        return None;
    }
    let user = match authzid {
        "" => String::new(),
        a => gs2_unescape(a.strip_prefix("a=")?)?,
    };
    let token = kvpairs
        .split('\x01')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(bearer_token)?;
    Some((user, token.to_owned()))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn authenticate(&mut self, tag: &str, args: &[Tok]) -> io::Result<Flow> {
        let (mechanism, initial) = match args {
            [Tok::Atom(m)] => (m, None),
            [Tok::Atom(m), Tok::Atom(ir)] => (m, Some(ir.as_bytes())),
            _ => {
                return self
                    .tagged(
                        tag,
                        "BAD Expected AUTHENTICATE mechanism [initial-response]",
                    )
                    .await;
            }
        };
        let mechanism = match mechanism.to_ascii_uppercase().as_str() {
            "XOAUTH2" => Mechanism::XOAuth2,
            "OAUTHBEARER" => Mechanism::OAuthBearer,
            _ => {
                return self
                    .tagged(tag, "NO [CANNOT] Unsupported authentication mechanism")
                    .await;
            }
        };
        let response: Vec<u8> = match initial {
            Some(ir) => ir.to_vec(),
            None => match self.continuation("").await? {
                Line::Ok => std::mem::take(&mut self.line),
                Line::Eof => return Ok(Flow::Close),
                Line::TooLong => return self.bye("Line too long").await,
            },
        };
        if response == b"*" {
            return self.tagged(tag, "BAD AUTHENTICATE cancelled").await;
        }
        let decoded = if response == b"=" {
            Vec::new()
        } else {
            match B64.decode(&response) {
                Ok(d) => d,
                Err(_) => return self.tagged(tag, "BAD Invalid base64").await,
            }
        };
        let credentials = match mechanism {
            Mechanism::XOAuth2 => parse_xoauth2(&decoded),
            Mechanism::OAuthBearer => parse_oauthbearer(&decoded),
        };
        let Some((user, token)) = credentials else {
            self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
            return self
                .tagged(tag, "NO [AUTHENTICATIONFAILED] Malformed SASL message")
                .await;
        };
        if (self.shared.validate)(&user, &token) {
            self.shared.logins.fetch_add(1, Ordering::Relaxed);
            self.state = State::Authenticated;
            tracing::debug!(%user, ?mechanism, "mini-imap login");
            let text = format!("OK [CAPABILITY {CAPABILITIES_AUTHENTICATED}] Logged in");
            return self.tagged(tag, &text).await;
        }
        self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%user, ?mechanism, "mini-imap refused a token");
        let challenge = B64.encode(ERROR_CHALLENGE_JSON);
        match self.continuation(&challenge).await? {
            Line::Ok if self.line == b"*" => self.tagged(tag, "BAD AUTHENTICATE cancelled").await,
            Line::Ok => {
                self.tagged(tag, "NO [AUTHENTICATIONFAILED] Invalid token")
                    .await
            }
            Line::Eof => Ok(Flow::Close),
            Line::TooLong => self.bye("Line too long").await,
        }
    }
}
