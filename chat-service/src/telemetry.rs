//! Logging through `tracing`; `RUST_LOG` filters (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once. Safe to call again (later calls do
/// nothing), which tests rely on.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour only on a terminal: container logs and files stay plain.
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}
