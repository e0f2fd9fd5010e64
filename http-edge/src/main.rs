//! The `http-edge` binary: read the configuration, serve until Ctrl-C or SIGTERM.

use clap::Parser;
use http_edge::{Application, Config, startup, telemetry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::parse();
    telemetry::init("info");
    let application = Application::build(config).await?;
    application
        .run_until_stopped(startup::shutdown_signal())
        .await?;
    telemetry::flush();
    Ok(())
}
