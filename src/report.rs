//! What an operation hands back to whichever front end ran it, and how that front end wants it
//! shown. A neutral floor: operations and `commands/` both import it, so `commands/` depends on
//! the operations and never the other way round.

use std::io::IsTerminal;

use serde_json::Value;

/// How results are shown: human text, or a JSON object for `--json`.
pub struct Output {
    pub json: bool,
    pub color: bool,
    pub verbose: u8,
}

impl Output {
    /// `no_color` is the `--no-color` flag; colour also needs stdout to be a terminal.
    pub fn new(json: bool, no_color: bool, verbose: u8) -> Self {
        Output {
            json,
            color: color_wanted(no_color) && std::io::stdout().is_terminal(),
            verbose,
        }
    }
}

impl Output {
    /// Plain lines on stderr, whatever the command's output is: for what must stay out of
    /// an output that is a stable interface (`status --json` prints one report object).
    pub fn stderr() -> Self {
        Output {
            json: false,
            color: false,
            verbose: 0,
        }
    }

    /// A warning from an operation outside its plan's steps (a lock taken over, an insecure
    /// connection): with `--json` a `log` event on stdout like the plan's own, else a line on
    /// stderr. Either way, never mixed into the result.
    pub fn warn(&self, line: impl Into<String>) {
        self.line(crate::engine::Level::Warn, line.into());
    }

    /// A sentence the person should read before the operation goes on (what a rollback
    /// keeps and loses; a recovered operation): shown like `warn`, as information.
    pub fn note(&self, line: impl Into<String>) {
        self.line(crate::engine::Level::Info, line.into());
    }

    fn line(&self, level: crate::engine::Level, line: String) {
        if self.json {
            let e = crate::engine::Event::Log {
                index: None,
                level,
                line,
            };
            if let Ok(s) = serde_json::to_string(&e) {
                println!("{s}");
            }
            return;
        }
        // Lines may quote values from outside: no control character reaches the terminal.
        let line = crate::escape::terminal_safe(&line);
        match level {
            crate::engine::Level::Warn if line.starts_with("warning") => eprintln!("{line}"),
            crate::engine::Level::Warn => eprintln!("warning: {line}"),
            _ => eprintln!("{line}"),
        }
    }
}

/// Colour unless `--no-color` or `NO_COLOR` (any value, see no-color.org) says otherwise; the
/// callers add whether the output is a terminal at all.
pub fn color_wanted(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none()
}

/// What a successful command hands back: text for people, data for `--json`.
pub struct Outcome {
    pub text: String,
    pub data: Value,
    /// A report that must reach the user and still end the command with an error (status of
    /// an unhealthy instance): the front end shows the report, then this error.
    pub failure: Option<crate::error::LaunchError>,
}

impl Outcome {
    pub fn new(text: impl Into<String>, data: Value) -> Self {
        Outcome {
            text: text.into(),
            data,
            failure: None,
        }
    }

    /// This report, and then `e` as the command's result.
    pub fn failing(mut self, e: crate::error::LaunchError) -> Self {
        self.failure = Some(e);
        self
    }

    /// A typed report as the front ends take it: its fields serialized (what `--json` prints
    /// and the dashboard reads) and its text.
    pub fn of<R: Report>(report: &R) -> Self {
        let data = serde_json::to_value(report)
            .unwrap_or_else(|e| serde_json::json!({ "report_error": e.to_string() }));
        Outcome::new(report.text(), data)
    }
}

/// An operation's typed result: serializable (`--json`, the dashboard), and readable.
pub trait Report: serde::Serialize {
    /// The report for people, made from the same fields.
    fn text(&self) -> String;
}
