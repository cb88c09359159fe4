//! The bookkeeping all three downstream (pre-login) machines share: the steps they
//! have decided on but not yet handed out through `next()`, and the two counters
//! their limits apply to. What a step says and when a limit closes the connection
//! stays with each protocol.

use std::collections::VecDeque;

use super::line::InputBuffer;
use super::{CloseReason, Credentials, DownstreamEvent, Interrupt, Io, Limits};

/// One thing a downstream machine hands out, in order.
#[derive(Debug)]
pub(crate) enum Step<E> {
    Io(Io),
    Login(Credentials),
    /// The login is finished: [`DownstreamEvent::Done`] with the unread input.
    Done,
    Error(E),
}

/// The steps not yet handed out, and the counts of refusals (towards
/// `Limits::max_errors`) and rejected logins (towards `Limits::max_auth_failures`).
/// The counts survive [`Outbox::clear`] (so STARTTLS does not reset them).
#[derive(Debug)]
pub(crate) struct Outbox<E> {
    queue: VecDeque<Step<E>>,
    errors: u32,
    failures: u32,
    /// The limit that closed the connection, if one did.
    reason: Option<CloseReason>,
}

impl<E> Outbox<E> {
    pub(crate) fn new() -> Self {
        Outbox {
            queue: VecDeque::new(),
            errors: 0,
            failures: 0,
            reason: None,
        }
    }

    pub(crate) fn push(&mut self, step: Step<E>) {
        self.queue.push_back(step);
    }

    /// Forgets the steps not yet handed out.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }

    /// The next step as the answer of the machine's `next()`, if there is one; `Done`
    /// hands out what is left in `buf` (bytes the client pipelined after its login).
    pub(crate) fn pop(
        &mut self,
        buf: &mut InputBuffer,
    ) -> Option<Result<DownstreamEvent, Interrupt<E>>> {
        Some(match self.queue.pop_front()? {
            Step::Io(io) => Err(io.into()),
            Step::Login(c) => Ok(DownstreamEvent::Login(c)),
            Step::Done => Ok(DownstreamEvent::Done {
                leftover: buf.take(),
            }),
            Step::Error(e) => Err(Interrupt::Error(e)),
        })
    }

    /// Counts a refusal; `true` when it reaches `limits.max_errors`.
    pub(crate) fn count_error(&mut self, limits: &Limits) -> bool {
        self.errors += 1;
        let reached = self.errors >= limits.max_errors;
        if reached {
            self.limit_hit(CloseReason::TooManyErrors);
        }
        reached
    }

    /// Counts a rejected login; `true` when it reaches `limits.max_auth_failures`.
    pub(crate) fn count_failure(&mut self, limits: &Limits) -> bool {
        self.failures += 1;
        let reached = self.failures >= limits.max_auth_failures;
        if reached {
            self.limit_hit(CloseReason::TooManyFailures);
        }
        reached
    }

    /// Records the limit that is closing the connection (the first one counts).
    pub(crate) fn limit_hit(&mut self, reason: CloseReason) {
        self.reason.get_or_insert(reason);
    }

    /// The limit that closed the connection, if one did.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.reason
    }
}
