//! The chat-service binary: parse configuration, start, stop on Ctrl-C or
//! SIGTERM.

use chat_service::storage::scylla::schema;
use chat_service::{Application, Config, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    telemetry::init();
    let config = Config::parse();
    if config.print_schema {
        let scylla = &config.scylla;
        print!(
            "{}",
            schema::render_script(&scylla.keyspace, &scylla.replication)
        );
        return std::process::ExitCode::SUCCESS;
    }
    if config.metrics_addr.addr().is_none() {
        // CHAT_METRICS_ADDR=off: nobody can read them, so record nothing.
        chat_service::metrics::METRICS.stop_recording();
    }
    let result = async {
        let application = Application::build(config).await?;
        application.run_until_stopped(shutdown_signal()).await
    }
    .await;
    telemetry::flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "chat-service failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
