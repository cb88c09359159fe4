//! What the upstream machine does with each server response, per state.

use super::{ImapUpstream, Sasl, State, Step, protocol};
use crate::proto::imap::encode;
use crate::proto::imap::types::{Code, ImapError, Response, Status};
use crate::proto::{Io, Mechanism, UpstreamAuthError, sasl};

/// One server line, owned (so the buffer can be consumed before acting).
pub(super) enum Msg {
    Status {
        tag: Option<Vec<u8>>,
        status: Status,
        code: Option<String>,
        code_caps: Option<String>,
        text: String,
    },
    Capability(String),
    Continuation(Vec<u8>),
    Other,
}

impl Msg {
    pub(super) fn from_response(r: Response<'_>) -> Msg {
        match r {
            Response::Status {
                tag,
                status,
                code,
                text,
            } => Msg::Status {
                tag: tag.map(<[u8]>::to_vec),
                status,
                code: code.map(|c| String::from_utf8_lossy(c.name).to_ascii_uppercase()),
                code_caps: code.and_then(capability_code),
                text: encode::sanitize_bytes(text),
            },
            Response::Capability(c) => {
                Msg::Capability(String::from_utf8_lossy(c).trim().to_owned())
            }
            Response::Continuation(t) => Msg::Continuation(t.to_vec()),
            Response::OtherUntagged => Msg::Other,
        }
    }
}

fn capability_code(code: Code<'_>) -> Option<String> {
    code.name.eq_ignore_ascii_case(b"CAPABILITY").then(|| {
        String::from_utf8_lossy(code.args.unwrap_or_default())
            .trim()
            .to_owned()
    })
}

impl ImapUpstream {
    pub(super) fn handle(&mut self, msg: Msg) {
        // BYE after the greeting: the server is going away (greeting BYE is handled
        // by `greeting`).
        if let Msg::Status {
            tag: None,
            status: Status::Bye,
            text,
            ..
        } = &msg
            && !matches!(self.state, State::Greeting)
        {
            return self.fail(UpstreamAuthError::Unavailable(text.clone()).into());
        }
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeting => self.greeting(msg),
            State::Capability { tag } => self.capability_reply(tag, msg),
            State::StartTls { tag } => self.starttls_reply(tag, msg),
            State::Auth {
                tag,
                sasl,
                status,
                caps_after,
            } => self.auth_reply(tag, sasl, status, caps_after, msg),
            other => self.state = other,
        }
    }

    fn greeting(&mut self, msg: Msg) {
        match msg {
            Msg::Status {
                tag: None,
                status: Status::Ok,
                code_caps,
                ..
            } => {
                self.caps = code_caps;
                if self.caps.is_some() {
                    self.proceed();
                } else {
                    self.send_capability();
                }
            }
            Msg::Status {
                tag: None,
                status: Status::PreAuth,
                ..
            } => self.fail(protocol(
                "server greeted with PREAUTH; refusing a session that skips authentication",
            )),
            Msg::Status {
                tag: None,
                status: Status::Bye,
                text,
                ..
            } => self.fail(UpstreamAuthError::Unavailable(text).into()),
            _ => self.fail(protocol("unexpected server greeting")),
        }
    }

    /// Checks that a tagged reply is ours; anything else tagged is a protocol error.
    fn is_ours(&mut self, tag: &str, got: &Option<Vec<u8>>) -> bool {
        match got {
            Some(t) if t.as_slice() == tag.as_bytes() => true,
            Some(_) => {
                self.fail(protocol("server answered with an unknown tag"));
                false
            }
            None => false,
        }
    }

    fn capability_reply(&mut self, tag: String, msg: Msg) {
        match msg {
            Msg::Capability(c) => {
                self.caps = Some(c);
                self.state = State::Capability { tag };
            }
            Msg::Status {
                tag: t,
                status,
                code_caps,
                ..
            } if self.is_ours(&tag, &t) => {
                if status != Status::Ok {
                    return self.fail(protocol("CAPABILITY command failed"));
                }
                if self.caps.is_none() {
                    self.caps = code_caps;
                }
                match self.caps {
                    Some(_) => self.proceed(),
                    None => self.fail(protocol("server sent no capabilities")),
                }
            }
            Msg::Status { tag: None, .. } => self.state = State::Capability { tag },
            Msg::Status { .. } => {} // is_ours() failed the machine
            Msg::Continuation(_) => self.fail(protocol("unexpected continuation request")),
            Msg::Other => self.state = State::Capability { tag },
        }
    }

    fn starttls_reply(&mut self, tag: String, msg: Msg) {
        match msg {
            Msg::Status { tag: t, status, .. } if self.is_ours(&tag, &t) => {
                if status != Status::Ok {
                    self.fail(UpstreamAuthError::StartTlsUnavailable.into());
                } else if !self.buf.is_empty() {
                    self.fail(ImapError::StartTlsInjection);
                } else {
                    self.queue.push_back(Step::Io(Io::StartTls));
                    self.state = State::TlsPending;
                }
            }
            Msg::Status { tag: Some(_), .. } => {}
            Msg::Continuation(_) => self.fail(protocol("unexpected continuation request")),
            _ => self.state = State::StartTls { tag },
        }
    }

    fn auth_reply(
        &mut self,
        tag: String,
        sasl: Sasl,
        status: Option<String>,
        caps_after: Option<String>,
        msg: Msg,
    ) {
        match msg {
            Msg::Continuation(challenge) => match sasl {
                Sasl::AwaitingFirstContinuation => {
                    let ir = self.initial_response();
                    self.write(encode::sasl_response(&ir));
                    self.state = State::Auth {
                        tag,
                        sasl: Sasl::Sent,
                        status,
                        caps_after,
                    };
                }
                Sasl::Sent => {
                    let status = sasl::error_challenge_status(&challenge);
                    self.write(match self.login.mechanism {
                        Mechanism::Xoauth2 => b"\r\n".to_vec(),
                        Mechanism::Oauthbearer => b"AQ==\r\n".to_vec(),
                    });
                    let sasl = Sasl::ErrorAnswered;
                    self.state = State::Auth {
                        tag,
                        sasl,
                        status,
                        caps_after,
                    };
                }
                Sasl::ErrorAnswered => self.fail(protocol("unexpected continuation request")),
            },
            Msg::Capability(c) => {
                let caps_after = Some(c);
                self.state = State::Auth {
                    tag,
                    sasl,
                    status,
                    caps_after,
                };
            }
            Msg::Status {
                tag: t,
                status: s,
                code,
                code_caps,
                text,
            } if self.is_ours(&tag, &t) => match s {
                Status::Ok => {
                    self.queue
                        .push_back(Step::LoggedIn(code_caps.or(caps_after)));
                    self.state = State::Finished;
                }
                Status::No if code.as_deref() == Some("UNAVAILABLE") => {
                    self.fail(UpstreamAuthError::Unavailable(text).into())
                }
                Status::No => {
                    let status = status.unwrap_or_else(|| "unknown".to_owned());
                    self.fail(UpstreamAuthError::TokenRejected { status }.into())
                }
                _ => self.fail(protocol(format!("AUTHENTICATE refused: {text}"))),
            },
            Msg::Status { tag: Some(_), .. } => {}
            Msg::Status { .. } | Msg::Other => {
                self.state = State::Auth {
                    tag,
                    sasl,
                    status,
                    caps_after,
                };
            }
        }
    }
}
