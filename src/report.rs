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

/// Colour unless `--no-color` or `NO_COLOR` (any value, see no-color.org) says otherwise; the
/// callers add whether the output is a terminal at all.
pub fn color_wanted(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none()
}

/// What a successful command hands back: text for people, data for `--json`.
pub struct Outcome {
    pub text: String,
    pub data: Value,
}

impl Outcome {
    pub fn new(text: impl Into<String>, data: Value) -> Self {
        Outcome {
            text: text.into(),
            data,
        }
    }
}
