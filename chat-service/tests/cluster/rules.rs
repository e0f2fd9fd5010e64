//! The rules the scenario judges, apart from its choreography: per send by
//! the cluster phase it began in, and history's completeness at a point of
//! the run.

use allmine_test_support::history::{Send, Violation, check};
use tonic::Code;
use tonic::transport::Channel;

use crate::load::{Answer, DEADLINE, Phase, Record, Recorder};
use crate::readers::{history_page, read_history};

/// What must hold of every send, by the phase it began in.
pub fn assert_phase_rules(records: &[Record]) {
    let mut failures = Vec::new();
    for record in records {
        let content = &record.send.content;
        match (record.phase, record.answer) {
            // Whatever happens, an answer within the deadline, and never
            // one that blames the request or the service.
            (_, Answer::Silent) => failures.push(format!(
                "{content:?} ({:?}): no answer within {DEADLINE:?}",
                record.phase
            )),
            (_, Answer::Refused(code)) if code != Code::Unavailable => {
                failures.push(format!(
                    "{content:?} ({:?}): refused with {code:?}, not UNAVAILABLE",
                    record.phase
                ));
            }
            // One node down of three: a quorum is there, every send succeeds.
            (
                Phase::AllUp | Phase::OneDown | Phase::OtherDown | Phase::QuorumBack,
                Answer::Refused(code),
            ) => {
                failures.push(format!(
                    "{content:?} ({:?}): refused with {code:?} while a quorum was up",
                    record.phase
                ));
            }
            // Two nodes down: no send may be acknowledged.
            (Phase::QuorumLost, Answer::Ok) => {
                failures.push(format!("{content:?}: acknowledged without a quorum"));
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} sends broke their phase's rule:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// History (B) holds every message acknowledged so far.
pub async fn assert_nothing_lost(
    recorder: &Recorder,
    channel: &Channel,
    stream: &str,
    cursor: &str,
    when: &str,
) {
    let sends: Vec<Send> = recorder
        .records()
        .into_iter()
        .map(|record| record.send)
        .collect();
    let history = read_history(channel, stream, cursor).await;
    // Sends still in flight may already be stored, unrecorded: only losses
    // count here; the final check judges everything.
    let lost: Vec<String> = check(&sends, &history)
        .into_iter()
        .filter(|violation| matches!(violation, Violation::Lost { .. }))
        .map(|violation| violation.to_string())
        .collect();
    assert!(
        lost.is_empty(),
        "{when}: history misses acknowledged messages:\n{}",
        lost.join("\n")
    );
}

/// Without a quorum, a history read is refused as UNAVAILABLE within the
/// deadline.
pub async fn assert_reads_unavailable(channel: &Channel, stream: &str, cursor: &str) {
    let page = history_page(channel, stream, cursor, DEADLINE).await;
    assert_eq!(
        page.as_ref().map_err(tonic::Status::code).err(),
        Some(Code::Unavailable),
        "history without a quorum: {page:?}"
    );
}
