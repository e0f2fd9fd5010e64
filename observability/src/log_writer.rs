//! [`BufferedStdout`]: log lines written to standard output off the calling
//! thread, in batches, so that logging one line per request costs a copy
//! into memory, not a `write` system call each.
//!
//! - INFO, DEBUG and TRACE lines are appended to a bounded in-memory buffer.
//!   A writer thread, woken by the first line after it went idle, waits a
//!   few milliseconds for more lines ([`LINGER`]), then writes them all with
//!   one `write`. Under load that is a few hundred writes a second, however
//!   many lines; idle, the thread sleeps and costs nothing.
//! - **Full buffer**: while [`CAPACITY`] bytes wait to be written (standard
//!   output blocked: a full pipe, a stuck disk), further INFO-and-below
//!   lines are dropped, not waited for, so that a slow log never slows the
//!   service down. They are counted, and the writer logs the count at WARN
//!   once it can write again.
//! - WARN and ERROR lines are never dropped nor delayed: they are written
//!   at once by the calling thread, after whatever is buffered (order is
//!   kept), as are lines logged after [`flush`].
//! - [`flush`] writes what is buffered before the process exits (each
//!   service's `main` calls it through `traces::flush`).

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes of lines waiting to be written before new INFO-and-below lines are
/// dropped (about 15,000 access-log lines; at most twice this is held while
/// one batch is being written).
pub const CAPACITY: usize = 4 * 1024 * 1024;

/// How long the writer waits for more lines after the first of a batch.
pub const LINGER: Duration = Duration::from_millis(5);

/// The process's one buffered standard output for log lines, started with
/// its first line.
static STDOUT: OnceLock<Arc<Shared>> = OnceLock::new();

fn stdout() -> Arc<Shared> {
    Arc::clone(STDOUT.get_or_init(|| Shared::start(Box::new(io::stdout()))))
}

/// A `MakeWriter` for the fmt layer: each line goes to the process's
/// buffered standard output.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferedStdout;

impl<'a> MakeWriter<'a> for BufferedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: stdout(),
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: stdout(),
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

/// Writes what the log buffer holds now (before the process exits).
pub fn flush() {
    if let Some(shared) = STDOUT.get() {
        shared.flush_now(&[]);
    }
}

/// The writer of one line (the fmt layer writes each line whole).
pub struct LineWriter {
    shared: Arc<Shared>,
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if self.urgent {
            self.shared.flush_now(line);
        } else {
            self.shared.push(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing, so that batches and urgent lines go out in the
    /// order they were logged.
    output: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    dropped: u64,
    /// The writer thread is waiting for a first line.
    idle: bool,
    /// Set once the writer thread could not start: write in the caller.
    unbuffered: bool,
}

impl Shared {
    fn start(output: Box<dyn Write + Send>) -> Arc<Self> {
        let shared = Arc::new(Self {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            output: Mutex::new(output),
        });
        let writer = Arc::clone(&shared);
        let started = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || writer.run());
        if started.is_err() {
            lock(&shared.pending).unbuffered = true;
        }
        shared
    }

    fn push(&self, line: &[u8]) {
        let mut pending = lock(&self.pending);
        if pending.unbuffered {
            drop(pending);
            self.flush_now(line);
            return;
        }
        if pending.lines.len() + line.len() > CAPACITY {
            pending.dropped += 1;
            return;
        }
        pending.lines.extend_from_slice(line);
        if pending.idle {
            pending.idle = false;
            self.wake.notify_one();
        }
    }

    /// Writes what is buffered, then `line`, in the calling thread.
    fn flush_now(&self, line: &[u8]) {
        let mut output = lock(&self.output);
        let lines = std::mem::take(&mut lock(&self.pending).lines);
        // A log that cannot be written has nowhere to report it.
        let _ = output
            .write_all(&lines)
            .and_then(|()| output.write_all(line))
            .and_then(|()| output.flush());
    }

    fn run(&self) {
        let mut batch = Vec::new();
        loop {
            {
                let mut pending = lock(&self.pending);
                while pending.lines.is_empty() {
                    pending.idle = true;
                    pending = self
                        .wake
                        .wait(pending)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            std::thread::sleep(LINGER);
            let dropped = {
                let mut output = lock(&self.output);
                let dropped = {
                    let mut pending = lock(&self.pending);
                    std::mem::swap(&mut pending.lines, &mut batch);
                    std::mem::take(&mut pending.dropped)
                };
                let _ = output.write_all(&batch).and_then(|()| output.flush());
                dropped
            };
            batch.clear();
            if batch.capacity() > CAPACITY {
                batch = Vec::new();
            }
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "log lines dropped: standard output did not keep up"
                );
            }
        }
    }
}

/// A poisoned lock only means a thread panicked while logging; the buffer
/// is still bytes.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read back, or block.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(captured: &Captured) -> String {
        String::from_utf8(lock(&captured.0).clone()).expect("UTF-8")
    }

    fn writer(shared: &Arc<Shared>, urgent: bool) -> LineWriter {
        LineWriter {
            shared: Arc::clone(shared),
            urgent,
        }
    }

    #[test]
    fn buffered_lines_are_written_by_the_thread_in_order() {
        let captured = Captured::default();
        let shared = Shared::start(Box::new(captured.clone()));
        for n in 0..100 {
            writeln!(writer(&shared, false), "line {n}").expect("buffered");
        }
        let expected: String = (0..100).map(|n| format!("line {n}\n")).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while text(&captured) != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "not written: {:?}",
                text(&captured)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn an_urgent_line_goes_out_at_once_after_the_buffered_ones() {
        let captured = Captured::default();
        let shared = Shared::start(Box::new(captured.clone()));
        writeln!(writer(&shared, false), "info").expect("buffered");
        // Written before `write` returns, whether the thread wrote the
        // buffered line already or this call writes it first.
        writeln!(writer(&shared, true), "error").expect("written");
        assert_eq!(text(&captured), "info\nerror\n");
    }

    #[test]
    fn a_full_buffer_drops_lines_and_counts_them() {
        let captured = Captured::default();
        let shared = Shared::start(Box::new(captured.clone()));
        // The writer thread is blocked on the output while this runs.
        let output = lock(&shared.output);
        let line = vec![b'x'; 1024];
        let lines = CAPACITY / line.len() + 10;
        for _ in 0..lines {
            writer(&shared, false)
                .write_all(&line)
                .expect("never fails");
        }
        let pending = lock(&shared.pending);
        assert!(pending.lines.len() <= CAPACITY);
        assert!(pending.dropped >= 10, "dropped {}", pending.dropped);
        drop(pending);
        drop(output);
    }
}
