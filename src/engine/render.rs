//! Views of the engine's events: plain terminal progress (indicatif), `--json` (one event per
//! line), and the operation log file on the host. None of them decides anything.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, Level, Renderer};

/// Human progress on stderr: a bar with the percentage and the current step on a terminal, plain
/// lines otherwise (logs, CI), so the same run reads well in both.
pub struct PlainRenderer {
    bar: ProgressBar,
    total: usize,
    verbose: bool,
    interactive: bool,
}

impl PlainRenderer {
    pub fn new(verbose: bool, color: bool) -> Self {
        let interactive = std::io::stderr().is_terminal();
        let bar = if interactive {
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        let template = if color {
            "{spinner:.green} [{bar:30.cyan/blue}] {percent:>3}% {msg}"
        } else {
            "{spinner} [{bar:30}] {percent:>3}% {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        PlainRenderer {
            bar,
            total: 0,
            verbose,
            interactive,
        }
    }

    fn line(&self, s: &str) {
        if self.interactive {
            self.bar.println(s);
        } else {
            eprintln!("{s}");
        }
    }
}

impl Renderer for PlainRenderer {
    fn event(&mut self, e: &Event) {
        match e {
            Event::PlanStarted {
                operation,
                target,
                steps,
            } => {
                self.total = steps.len();
                self.bar.set_length(steps.len() as u64);
                self.bar.set_position(0);
                if self.interactive {
                    self.bar
                        .enable_steady_tick(std::time::Duration::from_millis(120));
                }
                match target {
                    Some(t) => self.line(&format!("{operation} {t}: {} steps", steps.len())),
                    None => self.line(&format!("{operation}: {} steps", steps.len())),
                }
            }
            Event::StepStarted { index, title, .. } => {
                let msg = format!("[{}/{}] {title}", index + 1, self.total);
                if !self.interactive {
                    self.line(&msg);
                }
                self.bar.set_message(msg);
            }
            Event::Progress {
                message: Some(m), ..
            } if self.verbose => self.line(&format!("      {m}")),
            Event::Progress { .. } => {}
            Event::Log { level, line, .. } => match level {
                Level::Warn => self.line(&format!("warning: {line}")),
                Level::Info if self.verbose || !self.interactive => {
                    self.line(&format!("      {line}"))
                }
                Level::Debug if self.verbose => self.line(&format!("      {line}")),
                _ => {}
            },
            Event::StepDone { index, .. } => {
                self.bar.set_position(*index as u64 + 1);
            }
            Event::StepFailed { name, error, .. } => {
                self.line(&format!("failed: {name}: {error}"));
            }
            Event::RollingBack { reason } => self.line(&format!("rolling back: {reason}")),
            Event::UndoStep {
                name, ok, error, ..
            } => {
                if *ok {
                    self.line(&format!("      undone: {name}"));
                } else {
                    self.line(&format!(
                        "      could not undo {name}: {}",
                        error.as_deref().unwrap_or("unknown error")
                    ));
                }
            }
            // Status prints its report as a whole; the checks on the way are for live views.
            Event::Check { .. } => {}
            Event::Question { prompt, .. } => self.line(&format!("question: {prompt}")),
            Event::Finished { .. } => {
                self.bar.finish_and_clear();
            }
        }
    }

    fn finish(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

/// `--json`: each event as one JSON object on its own stdout line. The command prints its result
/// object as the last line.
pub struct JsonRenderer<W: Write> {
    out: W,
}

impl<W: Write> JsonRenderer<W> {
    pub fn new(out: W) -> Self {
        JsonRenderer { out }
    }
}

impl<W: Write> Renderer for JsonRenderer<W> {
    fn event(&mut self, e: &Event) {
        if let Ok(s) = serde_json::to_string(e) {
            let _ = writeln!(self.out, "{s}");
            let _ = self.out.flush();
        }
    }
}

/// The operation's log file on the host (`/var/log/launch/NAME/OP-TIMESTAMP.log`): every event,
/// timestamped. Events never carry secrets, so neither does the log.
pub struct LogFileRenderer {
    file: File,
    path: PathBuf,
}

impl LogFileRenderer {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)?;
        Ok(LogFileRenderer {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Renderer for LogFileRenderer {
    fn event(&mut self, e: &Event) {
        let text = match e {
            Event::PlanStarted {
                operation,
                target,
                steps,
            } => format!(
                "plan {operation} {}: {}",
                target.as_deref().unwrap_or("-"),
                steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Event::StepStarted { name, title, .. } => format!("step {name}: {title}"),
            Event::Progress {
                done,
                total,
                message,
                ..
            } => format!(
                "progress {done}/{} {}",
                total.map(|t| t.to_string()).unwrap_or("?".into()),
                message.as_deref().unwrap_or("")
            ),
            Event::Log { level, line, .. } => {
                format!("{}: {line}", format!("{level:?}").to_lowercase())
            }
            Event::StepDone {
                name, elapsed_ms, ..
            } => format!("done {name} in {elapsed_ms} ms"),
            Event::StepFailed { name, error, .. } => format!("FAILED {name}: {error}"),
            Event::RollingBack { reason } => format!("rolling back: {reason}"),
            Event::UndoStep {
                name, ok, error, ..
            } => format!(
                "undo {name}: {}",
                if *ok {
                    "ok".to_string()
                } else {
                    error.clone().unwrap_or_default()
                }
            ),
            Event::Check { target, check, .. } => format!(
                "check {target} {}: {} {}",
                check.id,
                check.status.label(),
                check.message
            ),
            Event::Question { key, prompt, .. } => format!("question {key}: {prompt}"),
            Event::Finished { ok, elapsed_ms, .. } => {
                format!("finished ok={ok} in {elapsed_ms} ms")
            }
        };
        let _ = writeln!(self.file, "{} {text}", timestamp());
    }

    fn finish(&mut self) {
        let _ = self.file.sync_all();
    }
}

/// Where operation logs live: `/var/log/launch/` (`LAUNCH_LOG_DIR` overrides, for tests).
pub fn log_root() -> PathBuf {
    std::env::var_os("LAUNCH_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/log/launch"))
}

/// A new log file for one run of `operation` on `instance`.
pub fn operation_log_path(instance: &str, operation: &str) -> PathBuf {
    log_root()
        .join(instance)
        .join(format!("{operation}-{}.log", timestamp().replace(':', "")))
}

/// The views of an operation run from the command line: its log file always, and either
/// progress on stderr or JSON events on stdout (`--json`).
pub struct OperationViews {
    log: LogFileRenderer,
    screen: Box<dyn Renderer>,
}

impl OperationViews {
    pub fn open(log_path: &Path, json: bool, verbose: bool, color: bool) -> anyhow::Result<Self> {
        let log = LogFileRenderer::create(log_path)
            .map_err(|e| anyhow::anyhow!("cannot write the log {}: {e}", log_path.display()))?;
        let screen: Box<dyn Renderer> = if json {
            Box::new(JsonRenderer::new(std::io::stdout()))
        } else {
            Box::new(PlainRenderer::new(verbose, color))
        };
        Ok(OperationViews { log, screen })
    }

    pub fn log_path(&self) -> &Path {
        self.log.path()
    }

    /// For `engine::execute`.
    pub fn all(&mut self) -> [&mut dyn Renderer; 2] {
        [&mut self.log, self.screen.as_mut()]
    }
}
