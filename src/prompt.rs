//! Every question Launch asks goes through `Prompter`, so an interactive run (inquire), an
//! unattended run (answers from a file and `LAUNCH_*` variables) and a test all answer the very
//! same questions, validated by the very same functions.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// Checks an answer; `Err` holds the message shown before asking again.
pub type Validator<'a> = &'a dyn Fn(&str) -> std::result::Result<(), String>;

pub struct Question<'a> {
    /// The answers-file key (`public_url`).
    pub key: &'a str,
    pub prompt: &'a str,
    pub help: Option<&'a str>,
    pub default: Option<String>,
    pub secret: bool,
    pub validate: Option<Validator<'a>>,
}

impl<'a> Question<'a> {
    pub fn new(key: &'a str, prompt: &'a str) -> Self {
        Question {
            key,
            prompt,
            help: None,
            default: None,
            secret: false,
            validate: None,
        }
    }
}

pub trait Prompter {
    fn text(&mut self, q: &Question) -> Result<String>;
    fn select(&mut self, q: &Question, options: &[String]) -> Result<String>;
    fn confirm(&mut self, key: &str, prompt: &str, default: bool) -> Result<bool>;
    /// Shows a line to the person answering (a summary, a note). Prompters with nobody to
    /// show it to drop it.
    fn show(&mut self, text: &str) -> Result<()> {
        let _ = text;
        Ok(())
    }
}

/// Asks a person at the terminal (inquire), re-prompting until the validator accepts.
pub struct TerminalPrompter;

impl Prompter for TerminalPrompter {
    fn text(&mut self, q: &Question) -> Result<String> {
        loop {
            let answer = if q.secret {
                let mut p = inquire::Password::new(q.prompt)
                    .without_confirmation()
                    .with_display_mode(inquire::PasswordDisplayMode::Masked);
                if let Some(h) = q.help {
                    p = p.with_help_message(h);
                }
                p.prompt()?
            } else {
                let mut t = inquire::Text::new(q.prompt);
                if let Some(d) = &q.default {
                    t = t.with_default(d);
                }
                if let Some(h) = q.help {
                    t = t.with_help_message(h);
                }
                t.prompt()?
            };
            match q.validate.map(|v| v(&answer)) {
                Some(Err(msg)) => eprintln!("  {msg}"),
                _ => return Ok(answer),
            }
        }
    }

    fn select(&mut self, q: &Question, options: &[String]) -> Result<String> {
        let start = q
            .default
            .as_ref()
            .and_then(|d| options.iter().position(|o| o == d))
            .unwrap_or(0);
        let mut s = inquire::Select::new(q.prompt, options.to_vec()).with_starting_cursor(start);
        if let Some(h) = q.help {
            s = s.with_help_message(h);
        }
        Ok(s.prompt()?)
    }

    fn confirm(&mut self, _key: &str, prompt: &str, default: bool) -> Result<bool> {
        Ok(inquire::Confirm::new(prompt)
            .with_default(default)
            .prompt()?)
    }

    /// On the terminal's stderr, beside inquire's prompts (stdout stays for results).
    fn show(&mut self, text: &str) -> Result<()> {
        use std::io::Write;
        writeln!(std::io::stderr(), "{text}")?;
        Ok(())
    }
}

/// Answers from data: an answers file, `LAUNCH_*` variables, or a test. A question without an
/// answer takes its default; with neither it is an error naming the key. Invalid answers are
/// collected, not fatal, so the caller can report every problem at once.
pub struct AnswersPrompter {
    answers: BTreeMap<String, String>,
    pub problems: Vec<crate::error::InvalidValue>,
}

impl AnswersPrompter {
    pub fn new(answers: BTreeMap<String, String>) -> Self {
        AnswersPrompter {
            answers,
            problems: Vec::new(),
        }
    }

    fn answer_for(&self, q: &Question) -> Option<String> {
        self.answers
            .get(q.key)
            .cloned()
            .or_else(|| q.default.clone())
    }
}

impl Prompter for AnswersPrompter {
    fn text(&mut self, q: &Question) -> Result<String> {
        let Some(a) = self.answer_for(q) else {
            self.problems.push(crate::error::InvalidValue {
                field: q.key.to_string(),
                value: String::new(),
                problem: "no answer given and there is no default".into(),
                help: format!("add `{}: ...` to the answers file", q.key),
            });
            return Ok(String::new());
        };
        if let Some(Err(msg)) = q.validate.map(|v| v(&a)) {
            self.problems.push(crate::error::InvalidValue {
                field: q.key.to_string(),
                value: if q.secret {
                    "(secret)".into()
                } else {
                    a.clone()
                },
                problem: msg,
                help: q.help.unwrap_or("see the profile's questions").to_string(),
            });
        }
        Ok(a)
    }

    fn select(&mut self, q: &Question, options: &[String]) -> Result<String> {
        let a = self.answer_for(q).unwrap_or_default();
        if !options.contains(&a) {
            self.problems.push(crate::error::InvalidValue {
                field: q.key.to_string(),
                value: a.clone(),
                problem: "not one of the choices".into(),
                help: format!("use one of: {}", options.join(", ")),
            });
        }
        Ok(a)
    }

    fn confirm(&mut self, key: &str, _prompt: &str, default: bool) -> Result<bool> {
        match self.answers.get(key).map(|s| s.as_str()) {
            None => Ok(default),
            Some("yes" | "true" | "1" | "y") => Ok(true),
            Some("no" | "false" | "0" | "n") => Ok(false),
            Some(other) => {
                self.problems.push(crate::error::InvalidValue {
                    field: key.to_string(),
                    value: other.to_string(),
                    problem: "not a yes/no answer".into(),
                    help: "use true or false".into(),
                });
                Ok(default)
            }
        }
    }
}

/// For runs that must not ask anything (no terminal): every question is an error.
pub struct NoPrompter;

impl Prompter for NoPrompter {
    fn text(&mut self, q: &Question) -> Result<String> {
        bail!(
            "`{}` needs an answer but there is no terminal to ask on\n  help: pass it in an answers file (--answers FILE) or run on a terminal",
            q.key
        )
    }
    fn select(&mut self, q: &Question, _options: &[String]) -> Result<String> {
        self.text(q)
    }
    fn confirm(&mut self, key: &str, _prompt: &str, _default: bool) -> Result<bool> {
        bail!("`{key}` needs confirmation but there is no terminal to ask on\n  help: pass --yes to confirm")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_collect_every_problem() {
        let mut p = AnswersPrompter::new(
            [("port".to_string(), "abc".to_string())]
                .into_iter()
                .collect(),
        );
        let numeric = |s: &str| {
            s.parse::<u16>()
                .map(|_| ())
                .map_err(|_| "not a port number".to_string())
        };
        let mut q = Question::new("port", "Port");
        q.validate = Some(&numeric);
        p.text(&q).unwrap();
        p.text(&Question::new("domain", "Domain")).unwrap();
        let mut with_default = Question::new("tz", "Timezone");
        with_default.default = Some("UTC".into());
        assert_eq!(p.text(&with_default).unwrap(), "UTC");
        assert_eq!(p.problems.len(), 2);
        assert_eq!(p.problems[0].field, "port");
        assert_eq!(p.problems[1].field, "domain");
    }
}
