//! What the screens show, as plain data: the instances' rows (filled in piece by piece by the
//! background workers) and each running operation as the engine's events have told it so far.
//! No I/O here, so the snapshot tests build these by hand.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::engine::{Event, Level};
use crate::oplock::Holder;
use crate::status::{Check, Level as CheckLevel};

/// One instance on the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub app: String,
    pub version: String,
    /// The newest release the profile allows, when it is newer than `version`.
    pub update: Option<String>,
    pub vmid: u32,
    pub node: String,
    pub url: String,
    /// `None` while the checks are still running.
    pub checks: Option<Vec<Check>>,
    /// While they run: the checks known so far, in the order they returned.
    pub arriving: Vec<Check>,
    /// "2h", "9d", or "none".
    pub backup_age: String,
    /// Who holds the instance's lock (this TUI, another process, another host).
    pub lock: Option<Holder>,
    /// The last operations, newest first, from the operation logs.
    pub history: Vec<PastOp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastOp {
    pub operation: String,
    pub when: String,
    pub result: String,
}

/// The health column: what the checks say in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Checking,
    Healthy,
    Warning,
    Unhealthy,
}

impl Row {
    /// The checks as far as they are known: all of them, or those returned so far.
    pub fn known(&self) -> &[Check] {
        self.checks.as_deref().unwrap_or(&self.arriving)
    }

    pub fn health(&self) -> Health {
        match &self.checks {
            // A failure is final as soon as it returns; the rest may still be running.
            None if self.arriving.iter().any(|c| c.status == CheckLevel::Fail) => Health::Unhealthy,
            None => Health::Checking,
            Some(c) if c.iter().any(|c| c.status == CheckLevel::Fail) => Health::Unhealthy,
            Some(c) if c.iter().any(|c| c.status == CheckLevel::Warn) => Health::Warning,
            Some(_) => Health::Healthy,
        }
    }

    pub fn failed(&self) -> usize {
        self.known()
            .iter()
            .filter(|c| c.status == CheckLevel::Fail)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.known()
            .iter()
            .filter(|c| c.status == CheckLevel::Warn)
            .count()
    }

    pub fn matches(&self, filter: &str) -> bool {
        let f = filter.to_lowercase();
        f.is_empty()
            || [&self.name, &self.app, &self.version, &self.node, &self.url]
                .iter()
                .any(|s| s.to_lowercase().contains(&f))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Pending,
    Running,
    Done,
    Failed,
    Undone,
    UndoFailed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepView {
    pub name: String,
    pub title: String,
    pub state: StepState,
    pub elapsed_ms: Option<u64>,
}

/// How an operation ended, from its last event and the command's result object.
#[derive(Debug, Clone, PartialEq)]
pub struct OpResult {
    pub ok: bool,
    /// The report's figures worth showing (`writes held: 40 ms`).
    pub figures: Vec<(String, String)>,
    pub error: Option<String>,
}

/// One operation as far as its events have told it.
#[derive(Debug, Clone)]
pub struct OpState {
    pub instance: String,
    pub operation: String,
    pub steps: Vec<StepView>,
    pub log: VecDeque<(Level, String)>,
    pub warnings: Vec<String>,
    pub started: Instant,
    /// Set by the `Finished` event: the run's own measure.
    pub elapsed: Option<Duration>,
    pub rolling_back: bool,
    pub cancel_requested: bool,
    pub result: Option<OpResult>,
}

const LOG_KEEP: usize = 500;

impl OpState {
    pub fn new(instance: &str, operation: &str, started: Instant) -> Self {
        OpState {
            instance: instance.into(),
            operation: operation.into(),
            steps: Vec::new(),
            log: VecDeque::new(),
            warnings: Vec::new(),
            started,
            elapsed: None,
            rolling_back: false,
            cancel_requested: false,
            result: None,
        }
    }

    pub fn running(&self) -> bool {
        self.result.is_none()
    }

    pub fn push_log(&mut self, level: Level, line: impl Into<String>) {
        if self.log.len() == LOG_KEEP {
            self.log.pop_front();
        }
        self.log.push_back((level, line.into()));
    }

    /// Steps done out of all (an undone step no longer counts).
    pub fn progress(&self) -> (usize, usize) {
        let done = self
            .steps
            .iter()
            .filter(|s| s.state == StepState::Done)
            .count();
        (done, self.steps.len())
    }

    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::PlanStarted { steps, .. } => {
                self.steps = steps
                    .iter()
                    .map(|s| StepView {
                        name: s.name.clone(),
                        title: s.title.clone(),
                        state: StepState::Pending,
                        elapsed_ms: None,
                    })
                    .collect();
            }
            Event::StepStarted { index, title, .. } => {
                if let Some(s) = self.steps.get_mut(*index) {
                    s.state = StepState::Running;
                    s.title = title.clone();
                }
            }
            Event::Progress {
                message: Some(m), ..
            } => self.push_log(Level::Debug, m.clone()),
            Event::Progress { .. } => {}
            Event::Log { level, line, .. } => {
                if *level == Level::Warn {
                    self.warnings.push(line.clone());
                }
                self.push_log(*level, line.clone());
            }
            Event::StepDone {
                index, elapsed_ms, ..
            } => {
                if let Some(s) = self.steps.get_mut(*index) {
                    s.state = StepState::Done;
                    s.elapsed_ms = Some(*elapsed_ms);
                }
            }
            Event::StepFailed {
                index, name, error, ..
            } => {
                if let Some(s) = self.steps.get_mut(*index) {
                    s.state = StepState::Failed;
                }
                self.push_log(Level::Warn, format!("{name} failed: {error}"));
            }
            Event::RollingBack { reason } => {
                self.rolling_back = true;
                self.push_log(Level::Warn, format!("undoing: {reason}"));
            }
            Event::UndoStep {
                index,
                name,
                ok,
                error,
            } => {
                if let Some(s) = self.steps.get_mut(*index) {
                    s.state = if *ok {
                        StepState::Undone
                    } else {
                        StepState::UndoFailed
                    };
                }
                match error {
                    Some(e) => self.push_log(Level::Warn, format!("could not undo {name}: {e}")),
                    None => self.push_log(Level::Info, format!("undone: {name}")),
                }
            }
            Event::Check { .. } => {}
            Event::Question { prompt, .. } => self.push_log(Level::Info, format!("asks: {prompt}")),
            Event::Finished { elapsed_ms, .. } => {
                self.elapsed = Some(Duration::from_millis(*elapsed_ms));
            }
        }
    }

    /// The command's last line: `{"result":"ok", ...report}` or `{"result":"error", "error"}`.
    pub fn finish(&mut self, result: Option<&serde_json::Value>, exit_code: Option<i32>) {
        let ok = exit_code == Some(0);
        let mut figures = Vec::new();
        let mut error = None;
        if let Some(serde_json::Value::Object(m)) = result {
            for (k, v) in m {
                let shown = match (k.as_str(), v) {
                    ("result" | "exit_code" | "instance", _) => None,
                    ("error", serde_json::Value::String(s)) => {
                        error = Some(s.clone());
                        None
                    }
                    (k, serde_json::Value::Number(n)) if k.ends_with("_ms") => Some((
                        k.trim_end_matches("_ms").replace('_', " "),
                        format!("{n} ms"),
                    )),
                    (_, serde_json::Value::String(s)) => Some((k.replace('_', " "), s.clone())),
                    (_, serde_json::Value::Number(n)) => Some((k.replace('_', " "), n.to_string())),
                    (_, serde_json::Value::Bool(b)) => Some((k.replace('_', " "), b.to_string())),
                    _ => None,
                };
                figures.extend(shown);
            }
        }
        // What the report is about first (versions, the switch's cost), paths last.
        let rank = |k: &str| match k {
            "from" | "to" => 0,
            k if k.contains("held") || k.contains("switch") => 1,
            "elapsed" | "drain" => 2,
            "log" | "path" | "archive" | "snapshot" => 4,
            _ => 3,
        };
        // By rank, then by name: the same order whether or not serde_json keeps the
        // object's order (another workspace crate's dependency may turn that on).
        figures.sort_by(|(a, _), (b, _)| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
        if !ok && error.is_none() {
            error = Some(match exit_code {
                Some(c) => format!("the operation ended with exit code {c}"),
                None => "the operation was killed".into(),
            });
        }
        self.result = Some(OpResult { ok, figures, error });
    }
}

/// The logs screen: one file's lines, scrolled from the bottom when following.
#[derive(Debug, Clone, Default)]
pub struct LogsView {
    pub instance: String,
    pub title: String,
    pub lines: Vec<String>,
    /// Lines scrolled up from the end.
    pub scroll: usize,
    pub follow: bool,
}

pub fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub fn human_elapsed(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}
