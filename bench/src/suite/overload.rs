//! Section 6: the overload experiment ([`crate::overload`]) against
//! chat-service on the embedded store over gRPC, and against the REST send
//! through http-edge in front of it, each repeat in fresh processes on a
//! fresh store (so that no run inherits another's backlog of flushes).

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use super::{Suite, register_stream};
use crate::load::http::HttpRequest;
use crate::overload::{self, OverloadRun, OverloadTarget, Watched};
use crate::payload;
use crate::process::free_local_addr;

/// The targets, by name.
pub const OVERLOAD_GRPC: &str = "grpc send embedded";
pub const OVERLOAD_REST: &str = "rest send via edge";

/// One repeat against one target.
#[derive(Debug, Clone, Serialize)]
pub struct OverloadPoint {
    pub target: String,
    pub repeat: usize,
    pub load_average_before: [f64; 3],
    pub run: OverloadRun,
}

impl Suite {
    pub(super) async fn overload(&mut self) -> anyhow::Result<Vec<OverloadPoint>> {
        let mut points = Vec::new();
        for repeat in 1..=self.config.repeats {
            for target in self.config.overload_targets.clone() {
                let load_average_before = crate::machine::load_average();
                let run = self.overload_once(target, repeat).await?;
                self.check_overload(target, repeat, &run);
                points.push(OverloadPoint {
                    target: target.to_owned(),
                    repeat,
                    load_average_before,
                    run,
                });
            }
        }
        Ok(points)
    }

    /// Fresh chat-service (and edge), one run, stopped again.
    async fn overload_once(&mut self, target: &str, repeat: usize) -> anyhow::Result<OverloadRun> {
        let through_edge = target == OVERLOAD_REST;
        let logs = format!(
            "overload-{}-{repeat}",
            if through_edge { "rest" } else { "grpc" }
        );
        let data_dir = self.config.out_dir.join("data-overload");
        let _ = std::fs::remove_dir_all(&data_dir);
        let chat_addr = free_local_addr()?;
        let mut chat = self.spawn_chat_service(
            &format!("{logs}-chat-service"),
            chat_addr,
            [
                ("CHAT_STORE", "embedded".to_owned()),
                ("CHAT_DATA_DIR", data_dir.display().to_string()),
            ],
        )?;
        chat.wait_for_port(chat_addr, Duration::from_secs(60))
            .await?;
        let (edge, target_addr) = if through_edge {
            let edge_addr = free_local_addr()?;
            let mut edge = self.spawn_edge(&format!("{logs}-http-edge"), edge_addr, chat_addr)?;
            edge.wait_for_port(edge_addr, Duration::from_secs(20))
                .await?;
            (Some(edge), edge_addr)
        } else {
            (None, chat_addr)
        };
        let stream_id = register_stream(chat_addr).await?;
        let mut watch = vec![Watched {
            name: "chat-service".to_owned(),
            pid: chat.pid(),
        }];
        if let Some(server) = &edge {
            watch.push(Watched {
                name: "http-edge".to_owned(),
                pid: server.pid(),
            });
        }
        let overload_target = if through_edge {
            OverloadTarget::Http(HttpRequest {
                addr: target_addr,
                path: format!("/api/v1/live-stream/{stream_id}/chat/messages").parse()?,
                body: Bytes::from(payload::rest_body()),
                expect: StatusCode::CREATED,
            })
        } else {
            OverloadTarget::Grpc(target_addr)
        };
        let run = overload::run(&overload_target, &stream_id, &self.config.overload, &watch).await;
        if let Some(server) = edge {
            server.stop(Duration::from_secs(10)).await?;
        }
        chat.stop(Duration::from_secs(15)).await?;
        let _ = std::fs::remove_dir_all(&data_dir);
        run
    }

    /// What makes the run itself invalid (not a missed criterion): errors
    /// at peak, answers that never came, or nothing accepted before the
    /// overload. (Nothing accepted after it is a result: a service that
    /// did not recover.)
    fn check_overload(&mut self, target: &str, repeat: usize, run: &OverloadRun) {
        let label = format!("overload, {target}, repeat {repeat}");
        if run.peak.errors > 0 {
            self.failures.push(format!(
                "{label}: {} failed requests at peak, first: {}",
                run.peak.errors,
                run.peak.first_error.as_deref().unwrap_or("?")
            ));
        }
        if run.pacer.unanswered > 0 {
            self.failures.push(format!(
                "{label}: {} requests never answered",
                run.pacer.unanswered
            ));
        }
        if run.baseline.accepted == 0 {
            self.failures.push(format!(
                "{label}: no send accepted before the overload (first failure: {})",
                run.baseline.first_failure.as_deref().unwrap_or("none")
            ));
        }
    }
}
