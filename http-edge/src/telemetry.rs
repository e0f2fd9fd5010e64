//! Logging through `tracing`, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG`
/// is unset or unparsable.
///
/// A second call is a no-op rather than an error, so that every test may call
/// it.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // `try_init` fails only when a subscriber is already installed, which is fine.
    let _already_installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour codes only help a person at a terminal; in a log file or a
        // collector they are noise.
        .with_ansi(std::io::stdout().is_terminal())
        .try_init();
}
