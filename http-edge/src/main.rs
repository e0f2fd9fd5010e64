//! The `http-edge` binary: read the configuration, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use http_edge::{Application, Config, startup, telemetry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    telemetry::init("info");
    if config.metrics_addr.addr().is_none() {
        // EDGE_METRICS_ADDR=off: nobody can read them, so record nothing.
        http_edge::metrics::METRICS.stop_recording();
    }
    let application = Application::build(config).await?;
    application
        .run_until_stopped(startup::shutdown_signal())
        .await?;
    telemetry::flush();
    Ok(())
}
