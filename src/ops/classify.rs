//! What a failed check means and what to do about it.
//!
//! [`classify`] is a pure function from a failure (the token endpoint's message, the
//! upstream's refusal, a connection error) to a [`Diagnosis`]: a kind and the steps
//! to fix it. Microsoft's AADSTS codes and Google's error texts are recognised in the
//! token endpoint's `error_description`, which the token manager's messages carry.

use crate::proto::UpstreamAuthError;

/// Where a failure came from.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// Getting an access token failed; the token manager's message (it quotes the
    /// token endpoint's `error` and `error_description`, never a token).
    Token(&'a str),
    /// The server refused the login.
    Upstream(&'a UpstreamAuthError),
    /// TCP, DNS or the TLS handshake failed.
    Connect(&'a str),
    /// Anything else (protocol error, timeout after connecting, ...).
    Other(&'a str),
}

/// What went wrong, in the terms an admin acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No token stored yet.
    NotLoggedIn,
    /// Client id or secret wrong, or the app registration is gone.
    WrongClient,
    /// The redirect URI is not registered for the app.
    RedirectUri,
    /// The user or admin has not consented, or a scope is missing or unknown.
    Consent,
    /// The refresh token was revoked or has expired.
    RefreshRevoked,
    /// The refresh token expired because it was not used for a long time.
    ExpiredInactivity,
    /// A sign-in frequency or MFA policy requires the user to sign in again.
    SignInPolicy,
    /// The server does not offer the configured SASL mechanism (or STARTTLS).
    Mechanism,
    /// The server rejected a fresh access token.
    TokenRefused,
    /// Token endpoint or mail server temporarily unavailable.
    Unavailable,
    /// DNS, TCP or TLS failure.
    Network,
    Unknown,
}

impl Kind {
    /// A short machine word (used in `verify` output and JSON).
    pub fn word(self) -> &'static str {
        match self {
            Kind::NotLoggedIn => "not_logged_in",
            Kind::WrongClient => "wrong_client",
            Kind::RedirectUri => "redirect_uri",
            Kind::Consent => "consent",
            Kind::RefreshRevoked => "refresh_token_revoked",
            Kind::ExpiredInactivity => "expired_after_inactivity",
            Kind::SignInPolicy => "sign_in_policy",
            Kind::Mechanism => "mechanism_refused",
            Kind::TokenRefused => "token_refused",
            Kind::Unavailable => "unavailable",
            Kind::Network => "network",
            Kind::Unknown => "unknown",
        }
    }
}

/// A classified failure with the steps to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub kind: Kind,
    /// One sentence: what this means.
    pub summary: String,
    /// What to do, in order.
    pub steps: Vec<String>,
}

/// Token-endpoint markers, most specific first: AADSTS codes before generic OAuth
/// error codes (an AADSTS70008 answer also says `invalid_grant`).
const TOKEN_MARKERS: &[(&str, Kind)] = &[
    ("AADSTS7000215", Kind::WrongClient),
    ("AADSTS700016", Kind::WrongClient),
    ("AADSTS7000222", Kind::WrongClient),
    ("AADSTS50011", Kind::RedirectUri),
    ("redirect_uri_mismatch", Kind::RedirectUri),
    ("AADSTS65001", Kind::Consent),
    ("AADSTS70011", Kind::Consent),
    ("consent_required", Kind::Consent),
    ("interaction_required", Kind::SignInPolicy),
    ("invalid_scope", Kind::Consent),
    ("AADSTS70008", Kind::ExpiredInactivity),
    ("AADSTS700082", Kind::ExpiredInactivity),
    ("AADSTS70043", Kind::SignInPolicy),
    ("AADSTS50078", Kind::SignInPolicy),
    ("AADSTS50079", Kind::SignInPolicy),
    ("AADSTS50076", Kind::SignInPolicy),
    ("AADSTS50173", Kind::RefreshRevoked),
    ("AADSTS50133", Kind::RefreshRevoked),
    ("Token has been expired or revoked", Kind::RefreshRevoked),
    ("invalid_client", Kind::WrongClient),
    ("unauthorized_client", Kind::WrongClient),
    ("invalid_grant", Kind::RefreshRevoked),
    ("no token stored", Kind::NotLoggedIn),
    ("no refresh token", Kind::NotLoggedIn),
];

/// Classifies `failure` of `account`; the steps name the commands to run.
pub fn classify(account: &str, failure: Failure<'_>) -> Diagnosis {
    let kind = match failure {
        Failure::Token(msg) => TOKEN_MARKERS
            .iter()
            .find(|(m, _)| msg.contains(m))
            .map(|(_, k)| *k)
            .unwrap_or(if msg.contains("temporary") || msg.contains("timed out") {
                Kind::Unavailable
            } else {
                Kind::Unknown
            }),
        Failure::Upstream(e) => match e {
            UpstreamAuthError::TokenRejected { .. } => Kind::TokenRefused,
            UpstreamAuthError::Unavailable(_) => Kind::Unavailable,
            UpstreamAuthError::StartTlsUnavailable | UpstreamAuthError::MechanismUnavailable(_) => {
                Kind::Mechanism
            }
            UpstreamAuthError::Protocol(_) => Kind::Unknown,
        },
        Failure::Connect(_) => Kind::Network,
        Failure::Other(_) => Kind::Unknown,
    };
    diagnosis(account, kind)
}

fn diagnosis(account: &str, kind: Kind) -> Diagnosis {
    let login = format!("oauth-mail-proxy login {account}");
    let verify = format!("oauth-mail-proxy verify {account}");
    let (summary, steps): (&str, Vec<String>) = match kind {
        Kind::NotLoggedIn => (
            "the account has no usable token yet",
            vec![format!("run `{login}`"), format!("then `{verify}`")],
        ),
        Kind::WrongClient => (
            "the provider does not accept the client id or client secret",
            vec![
                "compare `client_id` with the app registration (Google: Cloud console → Credentials; Microsoft: Entra ID → App registrations → Application (client) ID)".into(),
                "if the app has a secret, create a new one (Microsoft secrets expire) and put its value (not its id) in `client_secret`".into(),
                "Microsoft: use the right `tenant`, the app must exist there".into(),
                format!("run `{login}`, then `{verify}`"),
            ],
        ),
        Kind::RedirectUri => (
            "the redirect URI the proxy uses is not registered for the app",
            vec![
                "Microsoft: App registration → Authentication → add platform \"Mobile and desktop applications\" with `http://localhost`; Google: use a \"Desktop app\" client".into(),
                "or set `redirect_uri` in the account to the exact URI registered".into(),
                format!("run `{login}`"),
            ],
        ),
        Kind::Consent => (
            "consent for the requested scopes is missing, or a scope is wrong",
            vec![
                "check `scopes`: Google needs https://mail.google.com/; Microsoft needs IMAP.AccessAsUser.All, POP.AccessAsUser.All, SMTP.Send and offline_access".into(),
                "Microsoft: App registration → API permissions: add them and, if users may not consent, click \"Grant admin consent\"".into(),
                "Google: OAuth consent screen: add the scope (and yourself as a test user while in testing)".into(),
                format!("run `{login}` and accept every permission"),
            ],
        ),
        Kind::RefreshRevoked => (
            "the refresh token was revoked or has expired (password change, revoked app access, or Google testing-mode tokens expiring after 7 days)",
            vec![
                format!("run `{login}` to authorise again"),
                "Google: if this recurs weekly, publish the OAuth consent screen (testing-mode refresh tokens expire after 7 days)".into(),
                format!("then `{verify}`"),
            ],
        ),
        Kind::ExpiredInactivity => (
            "the refresh token expired after a long time unused",
            vec![
                format!("run `{login}`"),
                "keep the proxy running (it refreshes tokens as they are used) or run `verify` periodically".into(),
            ],
        ),
        Kind::SignInPolicy => (
            "a sign-in frequency, MFA or conditional-access policy requires the user to sign in again",
            vec![
                format!("run `{login}` and complete the sign-in (MFA included)"),
                "ask the tenant admin whether the sign-in frequency policy should exclude this app".into(),
            ],
        ),
        Kind::Mechanism => (
            "the mail server does not offer the configured SASL mechanism (or STARTTLS)",
            vec![
                "try the other `mechanism` (xoauth2 / oauthbearer) for the account".into(),
                "check `upstream` and `upstream_tls` point at the provider's OAuth-capable server (imap.gmail.com:993, outlook.office365.com:993, smtp.gmail.com:465, smtp.office365.com:587 with starttls)".into(),
                format!("then `{verify}`"),
            ],
        ),
        Kind::TokenRefused => (
            "the mail server rejected a fresh access token",
            vec![
                "check `upstream_username` is the mailbox the token was issued for".into(),
                "check the scopes cover this protocol (Microsoft: IMAP.AccessAsUser.All / POP.AccessAsUser.All / SMTP.Send; the tenant must enable IMAP/POP/SMTP AUTH for the mailbox)".into(),
                format!("run `{login}` (as the mailbox's own user), then `{verify}`"),
            ],
        ),
        Kind::Unavailable => (
            "the token endpoint or the mail server is temporarily unavailable",
            vec![
                "wait a few minutes and retry".into(),
                format!("if it persists, check the provider's status page, then `{verify}`"),
            ],
        ),
        Kind::Network => (
            "the mail server could not be reached or its TLS certificate was not accepted",
            vec![
                "check `upstream` (host and port) and that this host can reach it (DNS, firewall, proxy)".into(),
                "check `upstream_tls`: implicit for 993/995/465, starttls for 143/110/587".into(),
                "for a private CA, set `upstream_ca` to its certificate (PEM)".into(),
                format!("then `{verify}`"),
            ],
        ),
        Kind::Unknown => (
            "an unexpected error; see the message above",
            vec![
                format!("run `oauth-mail-proxy --log debug verify {account}` for details"),
                format!("if the token is at fault, `{login}`"),
            ],
        ),
    };
    Diagnosis {
        kind,
        summary: summary.into(),
        steps,
    }
}

impl Diagnosis {
    /// The summary and numbered steps, each line indented by `indent`.
    pub fn render(&self, indent: &str) -> String {
        let mut s = format!("{indent}cause: {} ({})\n", self.summary, self.kind.word());
        s.push_str(&format!("{indent}what to do:\n"));
        for (i, step) in self.steps.iter().enumerate() {
            s.push_str(&format!("{indent}  {}. {step}\n", i + 1));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rejected = UpstreamAuthError::TokenRejected {
            status: "401".into(),
        };
        let unavailable = UpstreamAuthError::Unavailable("x".into());
        let mech = UpstreamAuthError::MechanismUnavailable("XOAUTH2");
        let starttls = UpstreamAuthError::StartTlsUnavailable;
        let proto = UpstreamAuthError::Protocol("x".into());
        let cases: &[(Failure, Kind)] = &[
            (
                Failure::Token(
                    "token endpoint said HTTP 401: invalid_client: AADSTS7000215: Invalid client secret provided.",
                ),
                Kind::WrongClient,
            ),
            (
                Failure::Token(
                    "token endpoint said HTTP 400: unauthorized_client: AADSTS700016: Application with identifier 'x' was not found",
                ),
                Kind::WrongClient,
            ),
            (
                Failure::Token(
                    "token endpoint said HTTP 401: invalid_client: client authentication failed",
                ),
                Kind::WrongClient,
            ),
            (
                Failure::Token(
                    "token endpoint said HTTP 400: invalid_request: AADSTS50011: The redirect URI 'http://localhost:1' specified in the request does not match",
                ),
                Kind::RedirectUri,
            ),
            (
                Failure::Token("token endpoint said HTTP 400: redirect_uri_mismatch: Bad Request"),
                Kind::RedirectUri,
            ),
            (
                Failure::Token(
                    "refresh token rejected: token endpoint said HTTP 400: invalid_grant: AADSTS65001: The user or administrator has not consented",
                ),
                Kind::Consent,
            ),
            (
                Failure::Token(
                    "token endpoint said HTTP 400: invalid_scope: requested scope exceeds the granted scope",
                ),
                Kind::Consent,
            ),
            (Failure::Token("consent_required"), Kind::Consent),
            (
                Failure::Token(
                    "refresh token rejected: token endpoint said HTTP 400: invalid_grant: unknown or revoked refresh token",
                ),
                Kind::RefreshRevoked,
            ),
            (
                Failure::Token(
                    "refresh token rejected: token endpoint said HTTP 400: invalid_grant: AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
                ),
                Kind::ExpiredInactivity,
            ),
            (
                Failure::Token(
                    "invalid_grant: AADSTS700082: The refresh token has expired due to inactivity.",
                ),
                Kind::ExpiredInactivity,
            ),
            (
                Failure::Token(
                    "invalid_grant: AADSTS50173: The provided grant has expired due to it being revoked",
                ),
                Kind::RefreshRevoked,
            ),
            (
                Failure::Token(
                    "invalid_grant: AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.",
                ),
                Kind::SignInPolicy,
            ),
            (
                Failure::Token(
                    "invalid_grant: AADSTS50078: Presented multi-factor authentication has expired",
                ),
                Kind::SignInPolicy,
            ),
            (
                Failure::Token(
                    "invalid_grant: AADSTS50079: Due to a configuration change made by your administrator, you must enroll in MFA",
                ),
                Kind::SignInPolicy,
            ),
            (
                Failure::Token(
                    "refresh token rejected: token endpoint said HTTP 400: invalid_grant: Token has been expired or revoked.",
                ),
                Kind::RefreshRevoked,
            ),
            (
                Failure::Token(
                    "refresh token rejected: token endpoint said HTTP 400: invalid_grant: Bad Request",
                ),
                Kind::RefreshRevoked,
            ),
            (
                Failure::Token(
                    "account a needs `oauth-mail-proxy login a`: no token stored; run login",
                ),
                Kind::NotLoggedIn,
            ),
            (
                Failure::Token(
                    "token refresh failed (temporary): token request timed out after 60s",
                ),
                Kind::Unavailable,
            ),
            (Failure::Token("something odd"), Kind::Unknown),
            (Failure::Upstream(&rejected), Kind::TokenRefused),
            (Failure::Upstream(&unavailable), Kind::Unavailable),
            (Failure::Upstream(&mech), Kind::Mechanism),
            (Failure::Upstream(&starttls), Kind::Mechanism),
            (Failure::Upstream(&proto), Kind::Unknown),
            (
                Failure::Connect(
                    "TLS handshake with localhost:993 failed: invalid peer certificate",
                ),
                Kind::Network,
            ),
            (
                Failure::Connect("cannot connect to localhost:1: connection refused"),
                Kind::Network,
            ),
            (Failure::Other("timed out"), Kind::Unknown),
        ];
        for (failure, want) in cases {
            let d = classify("alice", *failure);
            assert_eq!(d.kind, *want, "{failure:?}");
            assert!(!d.steps.is_empty());
        }
        let d = classify("alice", Failure::Token("invalid_grant"));
        assert!(
            d.render("  ")
                .contains("1. run `oauth-mail-proxy login alice`")
        );
    }
}
