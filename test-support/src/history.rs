//! History checks (Jepsen's method), the checker: what a recorded history of
//! sends allows the readers to see. Pure functions over plain data, so the
//! rules are tested here on hand-written histories, apart from any server;
//! the recorders and fault scenarios live with the tests that drive a
//! service (`chat-service/tests/api/history_checks/`).
//!
//! Each logical send has a unique content and one or more attempts (more
//! only when a client retries with the same idempotency key). Its verdict:
//! - *acknowledged* if any attempt was answered with a message: it must be
//!   read exactly once, with the id the client was given (every attempt that
//!   was answered must have been given that same id);
//! - *refused* if every attempt was a definite refusal: it must be absent;
//! - *indeterminate* otherwise (a timeout, UNAVAILABLE, a cut connection):
//!   it may be read, but at most once.
//!
//! Whatever was read and matches no send is a phantom. One client's
//! acknowledged messages must be read in the order it sent them: it sent
//! each only after the previous one was acknowledged. And there is one
//! order: the messages two readers both read come in the same order
//! ([`check_same_order`]).

use std::collections::HashMap;
use std::fmt;

use tonic::{Code, Status};

/// What one attempt to send came to, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with the stored message's id.
    Ok { id: String },
    /// A definite refusal: nothing was stored (INVALID_ARGUMENT, 4xx, …).
    Failed { reason: String },
    /// No way to know: a timeout, UNAVAILABLE, a connection cut mid-call.
    Unknown { reason: String },
}

/// One logical send: a unique content, sent once or retried with one key.
#[derive(Debug, Clone)]
pub struct Send {
    pub client: usize,
    pub content: String,
    pub attempts: Vec<Outcome>,
}

/// One message as a reader saw it (history page or subscription event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub content: String,
}

/// A broken rule, with what is needed to find the message in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Lost {
        content: String,
        id: String,
    },
    WrongId {
        content: String,
        acknowledged: String,
        read: String,
    },
    RetryAnsweredWithAnotherId {
        content: String,
        ids: Vec<String>,
    },
    PresentAfterRefusal {
        content: String,
    },
    Duplicated {
        content: String,
        copies: usize,
    },
    Phantom {
        content: String,
        id: String,
    },
    OutOfOrder {
        client: usize,
        earlier: String,
        later: String,
    },
    OrderDiffers {
        earlier: String,
        later: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lost { content, id } => write!(f, "acknowledged {content:?} ({id}) is missing"),
            Self::WrongId {
                content,
                acknowledged,
                read,
            } => write!(
                f,
                "{content:?} was acknowledged as {acknowledged} but read as {read}"
            ),
            Self::RetryAnsweredWithAnotherId { content, ids } => {
                write!(f, "retries of {content:?} were answered with ids {ids:?}")
            }
            Self::PresentAfterRefusal { content } => {
                write!(f, "refused {content:?} was stored")
            }
            Self::Duplicated { content, copies } => {
                write!(f, "{content:?} was read {copies} times")
            }
            Self::Phantom { content, id } => write!(f, "{content:?} ({id}) was never sent"),
            Self::OutOfOrder {
                client,
                earlier,
                later,
            } => write!(
                f,
                "client {client}: {later:?} was read before {earlier:?}, which it sent first"
            ),
            Self::OrderDiffers { earlier, later } => write!(
                f,
                "{later:?} was read before {earlier:?}, which the reference reader read first"
            ),
        }
    }
}

/// What a send's attempts, together, say about the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Acknowledged { id: String },
    Refused,
    Indeterminate,
}

impl Send {
    /// The verdict, and the distinct ids the attempts were answered with
    /// (more than one is itself a violation).
    pub fn verdict(&self) -> (Verdict, Vec<String>) {
        let mut ids: Vec<String> = Vec::new();
        for attempt in &self.attempts {
            if let Outcome::Ok { id } = attempt
                && !ids.contains(id)
            {
                ids.push(id.clone());
            }
        }
        let verdict = if let Some(id) = ids.first() {
            Verdict::Acknowledged { id: id.clone() }
        } else if !self.attempts.is_empty()
            && self
                .attempts
                .iter()
                .all(|attempt| matches!(attempt, Outcome::Failed { .. }))
        {
            Verdict::Refused
        } else {
            Verdict::Indeterminate
        };
        (verdict, ids)
    }
}

/// Every violation of the rules above by `observed` (one reader's view,
/// in the order it was read) against `sends`.
pub fn check(sends: &[Send], observed: &[Observed]) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut reads: HashMap<&str, Vec<(usize, &Observed)>> = HashMap::new();
    for (position, message) in observed.iter().enumerate() {
        reads
            .entry(message.content.as_str())
            .or_default()
            .push((position, message));
    }
    let known: HashMap<&str, &Send> = sends
        .iter()
        .map(|send| (send.content.as_str(), send))
        .collect();
    for message in observed {
        if !known.contains_key(message.content.as_str()) {
            violations.push(Violation::Phantom {
                content: message.content.clone(),
                id: message.id.clone(),
            });
        }
    }

    // Position at which each acknowledged send was read, per client, in the
    // order the client sent them.
    let mut read_order: HashMap<usize, Vec<(usize, &str)>> = HashMap::new();
    for send in sends {
        let copies = reads
            .get(send.content.as_str())
            .map_or(&[][..], Vec::as_slice);
        if copies.len() > 1 {
            violations.push(Violation::Duplicated {
                content: send.content.clone(),
                copies: copies.len(),
            });
        }
        let (verdict, ids) = send.verdict();
        if ids.len() > 1 {
            violations.push(Violation::RetryAnsweredWithAnotherId {
                content: send.content.clone(),
                ids,
            });
        }
        match verdict {
            Verdict::Acknowledged { id } => match copies.first() {
                None => violations.push(Violation::Lost {
                    content: send.content.clone(),
                    id,
                }),
                Some((position, message)) => {
                    if message.id != id {
                        violations.push(Violation::WrongId {
                            content: send.content.clone(),
                            acknowledged: id,
                            read: message.id.clone(),
                        });
                    }
                    read_order
                        .entry(send.client)
                        .or_default()
                        .push((*position, send.content.as_str()));
                }
            },
            Verdict::Refused if !copies.is_empty() => {
                violations.push(Violation::PresentAfterRefusal {
                    content: send.content.clone(),
                });
            }
            Verdict::Refused | Verdict::Indeterminate => {}
        }
    }
    let mut clients: Vec<_> = read_order.into_iter().collect();
    clients.sort_by_key(|(client, _)| *client);
    for (client, positions) in clients {
        for pair in positions.windows(2) {
            if pair[1].0 < pair[0].0 {
                violations.push(Violation::OutOfOrder {
                    client,
                    earlier: pair[0].1.to_owned(),
                    later: pair[1].1.to_owned(),
                });
            }
        }
    }
    violations
}

/// Every pair of messages that `other` read in the opposite order from
/// `reference` (messages only one of them read are skipped: a reader may
/// legitimately miss an unknown send that landed late). Reported once per
/// message of `other` that comes too early.
pub fn check_same_order(reference: &[Observed], other: &[Observed]) -> Vec<Violation> {
    let rank: HashMap<&str, usize> = reference
        .iter()
        .enumerate()
        .map(|(index, message)| (message.content.as_str(), index))
        .collect();
    let mut violations = Vec::new();
    let mut latest: Option<(usize, &str)> = None;
    for message in other {
        let Some(&index) = rank.get(message.content.as_str()) else {
            continue;
        };
        match latest {
            Some((highest, content)) if index < highest => {
                violations.push(Violation::OrderDiffers {
                    earlier: message.content.clone(),
                    later: content.to_owned(),
                });
            }
            _ => latest = Some((index, message.content.as_str())),
        }
    }
    violations
}

/// The outcome of a gRPC refusal. A refusal is definite only when the code
/// says the service decided not to store the message; everything else
/// (UNAVAILABLE, DEADLINE_EXCEEDED, a cut connection, INTERNAL) leaves the
/// outcome unknown.
pub fn classify(status: &Status) -> Outcome {
    let definite = matches!(
        status.code(),
        Code::InvalidArgument
            | Code::OutOfRange
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::NotFound
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::Unimplemented
    );
    let reason = format!("{:?}: {}", status.code(), status.message());
    if definite {
        Outcome::Failed { reason }
    } else {
        Outcome::Unknown { reason }
    }
}

/// The outcome of a REST refusal (a status other than 201), by the same
/// rule: the 4xx of the documented table are decisions (nothing stored);
/// 500, 503, 504 and anything unexpected leave it unknown.
pub fn classify_http(status: u16) -> Outcome {
    let reason = format!("HTTP {status}");
    match status {
        400 | 401 | 403 | 404 | 405 | 408 | 409 | 413 | 414 | 415 | 429 | 431 | 501 => {
            Outcome::Failed { reason }
        }
        _ => Outcome::Unknown { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> Outcome {
        Outcome::Ok { id: id.into() }
    }

    fn failed() -> Outcome {
        Outcome::Failed {
            reason: "INVALID_ARGUMENT".into(),
        }
    }

    fn unknown() -> Outcome {
        Outcome::Unknown {
            reason: "UNAVAILABLE".into(),
        }
    }

    fn send(client: usize, content: &str, attempts: Vec<Outcome>) -> Send {
        Send {
            client,
            content: content.into(),
            attempts,
        }
    }

    fn read(id: &str, content: &str) -> Observed {
        Observed {
            id: id.into(),
            content: content.into(),
        }
    }

    #[test]
    fn a_history_that_keeps_every_rule_has_no_violation() {
        let sends = [
            send(0, "a", vec![ok("1")]),
            send(0, "b", vec![ok("2")]),
            send(1, "c", vec![failed()]),
            send(1, "d", vec![unknown()]),
            send(1, "e", vec![unknown()]),
        ];
        let observed = [read("1", "a"), read("4", "d"), read("2", "b")];
        assert_eq!(check(&sends, &observed), []);
    }

    #[test]
    fn an_acknowledged_message_that_is_not_read_is_lost() {
        let sends = [send(0, "a", vec![ok("1")])];
        assert_eq!(
            check(&sends, &[]),
            [Violation::Lost {
                content: "a".into(),
                id: "1".into()
            }]
        );
    }

    #[test]
    fn an_acknowledged_message_read_twice_is_duplicated() {
        let sends = [send(0, "a", vec![ok("1")])];
        let observed = [read("1", "a"), read("9", "a")];
        assert_eq!(
            check(&sends, &observed),
            [Violation::Duplicated {
                content: "a".into(),
                copies: 2
            }]
        );
    }

    #[test]
    fn an_unknown_message_may_be_read_once_but_not_twice() {
        let sends = [send(0, "a", vec![unknown()])];
        assert_eq!(check(&sends, &[read("1", "a")]), []);
        assert_eq!(
            check(&sends, &[read("1", "a"), read("2", "a")]),
            [Violation::Duplicated {
                content: "a".into(),
                copies: 2
            }]
        );
    }

    #[test]
    fn a_refused_message_that_is_read_was_stored_after_all() {
        let sends = [send(0, "a", vec![failed()])];
        assert_eq!(
            check(&sends, &[read("1", "a")]),
            [Violation::PresentAfterRefusal {
                content: "a".into()
            }]
        );
    }

    #[test]
    fn a_message_nobody_sent_is_a_phantom() {
        assert_eq!(
            check(&[], &[read("1", "x")]),
            [Violation::Phantom {
                content: "x".into(),
                id: "1".into()
            }]
        );
    }

    #[test]
    fn an_acknowledged_message_read_under_another_id_is_reported() {
        let sends = [send(0, "a", vec![ok("1")])];
        assert_eq!(
            check(&sends, &[read("2", "a")]),
            [Violation::WrongId {
                content: "a".into(),
                acknowledged: "1".into(),
                read: "2".into()
            }]
        );
    }

    #[test]
    fn one_clients_acknowledged_messages_must_be_read_in_sending_order() {
        let sends = [
            send(0, "a", vec![ok("1")]),
            send(1, "x", vec![ok("3")]),
            send(0, "b", vec![ok("2")]),
        ];
        // Other clients' messages may interleave anyhow.
        assert_eq!(
            check(&sends, &[read("3", "x"), read("1", "a"), read("2", "b")]),
            []
        );
        assert_eq!(
            check(&sends, &[read("2", "b"), read("1", "a"), read("3", "x")]),
            [Violation::OutOfOrder {
                client: 0,
                earlier: "a".into(),
                later: "b".into()
            }]
        );
    }

    #[test]
    fn retries_with_one_key_are_acknowledged_once_any_attempt_is() {
        let retried = send(0, "a", vec![unknown(), unknown(), ok("1")]);
        assert_eq!(
            retried.verdict(),
            (Verdict::Acknowledged { id: "1".into() }, vec!["1".into()])
        );
        assert_eq!(
            check(std::slice::from_ref(&retried), &[]),
            [Violation::Lost {
                content: "a".into(),
                id: "1".into()
            }]
        );
        // A retry that stored a second copy is caught twice over: by the
        // copy count, and by the id it was answered with.
        let doubled = Send {
            attempts: vec![ok("1"), ok("2")],
            ..retried
        };
        assert_eq!(
            check(&[doubled], &[read("1", "a"), read("2", "a")]),
            [
                Violation::Duplicated {
                    content: "a".into(),
                    copies: 2
                },
                Violation::RetryAnsweredWithAnotherId {
                    content: "a".into(),
                    ids: vec!["1".into(), "2".into()]
                }
            ]
        );
    }

    #[test]
    fn two_readers_must_agree_on_the_order_of_what_both_read() {
        let reference = [read("1", "a"), read("2", "b"), read("3", "c")];
        // Missing one is not an ordering matter.
        assert_eq!(
            check_same_order(&reference, &[read("1", "a"), read("3", "c")]),
            []
        );
        assert_eq!(
            check_same_order(
                &reference,
                &[read("1", "a"), read("3", "c"), read("2", "b")]
            ),
            [Violation::OrderDiffers {
                earlier: "b".into(),
                later: "c".into()
            }]
        );
    }

    #[test]
    fn a_send_is_refused_only_when_every_attempt_was_refused() {
        assert_eq!(send(0, "a", vec![failed()]).verdict().0, Verdict::Refused);
        assert_eq!(
            send(0, "a", vec![unknown(), failed()]).verdict().0,
            Verdict::Indeterminate
        );
        assert_eq!(send(0, "a", vec![]).verdict().0, Verdict::Indeterminate);
    }

    #[test]
    fn only_a_decision_of_the_service_is_a_definite_refusal() {
        for code in [
            Code::InvalidArgument,
            Code::PermissionDenied,
            Code::ResourceExhausted,
        ] {
            assert!(matches!(
                classify(&Status::new(code, "no")),
                Outcome::Failed { .. }
            ));
        }
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::Unknown,
            Code::Internal,
            Code::Aborted,
        ] {
            assert!(matches!(
                classify(&Status::new(code, "?")),
                Outcome::Unknown { .. }
            ));
        }
    }

    #[test]
    fn over_rest_4xx_are_refusals_and_5xx_leave_the_outcome_unknown() {
        for status in [400, 401, 403, 404, 409, 429] {
            assert!(matches!(classify_http(status), Outcome::Failed { .. }));
        }
        for status in [500, 502, 503, 504] {
            assert!(matches!(classify_http(status), Outcome::Unknown { .. }));
        }
    }
}
