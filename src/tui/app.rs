//! The TUI's state and its one way to change: a key becomes an `Action` (by the screen or
//! dialog on top), `update` applies it and hands back `Effect`s for the loop to start (a run,
//! a status refresh, reading a log). Nothing here waits on I/O, so every key redraws at once.

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::form::{InstallForm, Mode};
use super::model::{LogsView, OpState, Row};
use crate::engine::Event;
use crate::profile::Profile;

/// The operations the dashboard starts, each a run of the real command with `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Update,
    Rollback,
    Backup,
    Uninstall,
}

impl OpKind {
    pub fn verb(self) -> &'static str {
        match self {
            OpKind::Update => "update",
            OpKind::Rollback => "rollback",
            OpKind::Backup => "backup",
            OpKind::Uninstall => "uninstall",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Details,
    Operation(String),
    Logs,
    Install,
}

/// A question on top of the screen; the keys go to it until it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dialog {
    Help,
    /// y/N before an update, rollback or backup.
    Confirm {
        op: OpKind,
        instance: String,
        question: String,
    },
    /// Uninstall: the name typed out, and whether to keep a final backup.
    TypeName {
        instance: String,
        typed: String,
        keep_data: bool,
    },
    /// Esc on a running operation: cancel it (its steps are undone)?
    Cancel {
        instance: String,
    },
    /// A short message (why an action is not possible now).
    Notice(String),
    /// Which app to install, when there is more than one profile.
    ChooseProfile {
        names: Vec<String>,
        selected: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    Up,
    Down,
    Top,
    Bottom,
    OpenDetails,
    Back,
    StartFilter,
    FilterInput(char),
    FilterBackspace,
    FilterDone,
    FilterClear,
    ShowHelp,
    CloseDialog,
    Ask(OpKind),
    Confirmed,
    TypeChar(char),
    TypeBackspace,
    ToggleKeepData,
    ShowOperation,
    AskCancel,
    Logs,
    ToggleFollow,
    Refresh,
    /// `i`: the install form (after the profiles are read).
    Install,
    FormNext,
    FormPrev,
    FormChar(char),
    FormBackspace,
    FormMode,
    FormSubmit,
    FormBack,
}

/// What the loop does for an action: never on the UI thread's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Start {
        op: OpKind,
        instance: String,
        keep_data: bool,
    },
    Cancel(String),
    RefreshStatus,
    ReadLog {
        instance: String,
    },
    /// Read the profiles (for the form's choice).
    LoadProfiles,
    /// Read the node's facts (free IDs, storages) for the form's checks.
    LoadFacts,
    Install {
        profile: String,
        instance: String,
        answers: BTreeMap<String, String>,
    },
}

pub struct App {
    pub rows: Vec<Row>,
    /// False until the instance records have been read the first time.
    pub loaded: bool,
    pub load_error: Option<String>,
    pub selected: usize,
    pub filter: String,
    pub filtering: bool,
    pub screen: Screen,
    pub dialog: Option<Dialog>,
    pub ops: BTreeMap<String, OpState>,
    pub logs: LogsView,
    pub profiles: Vec<Profile>,
    pub form: Option<InstallForm>,
    pub read_only: bool,
    pub color: bool,
    /// The clock the screens show elapsed times against (set by the loop's tick).
    pub now: Instant,
    pub quit: bool,
}

impl App {
    pub fn new(read_only: bool, color: bool, now: Instant) -> Self {
        App {
            rows: Vec::new(),
            loaded: false,
            load_error: None,
            selected: 0,
            filter: String::new(),
            filtering: false,
            screen: Screen::Dashboard,
            dialog: None,
            ops: BTreeMap::new(),
            logs: LogsView::default(),
            profiles: Vec::new(),
            form: None,
            read_only,
            color,
            now,
            quit: false,
        }
    }

    /// The rows the filter lets through, in order.
    pub fn visible(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.matches(&self.filter))
            .collect()
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.visible().get(self.selected).copied()
    }

    fn selected_name(&self) -> Option<String> {
        self.selected_row().map(|r| r.name.clone())
    }

    /// New instance records: keeps what the checks and locks already said about each.
    pub fn set_rows(&mut self, mut rows: Vec<Row>) {
        for r in &mut rows {
            if let Some(old) = self.rows.iter().find(|o| o.name == r.name) {
                if r.checks.is_none() {
                    r.checks = old.checks.clone();
                }
                if r.lock.is_none() {
                    r.lock = old.lock.clone();
                }
            }
        }
        self.rows = rows;
        self.loaded = true;
        self.clamp();
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    pub fn set_checks(&mut self, name: &str, checks: Vec<crate::status::Check>) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.name == name) {
            r.checks = Some(checks);
        }
    }

    pub fn set_locks(&mut self, locks: &BTreeMap<String, crate::oplock::Holder>) {
        for r in &mut self.rows {
            r.lock = locks.get(&r.name).cloned();
        }
    }

    pub fn op_event(&mut self, instance: &str, e: &Event) {
        if let Some(op) = self.ops.get_mut(instance) {
            op.apply(e);
        }
    }

    /// The keys of whatever is on top: a dialog, the filter line, or the screen.
    pub fn handle_key(&self, key: KeyEvent) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        if let Some(d) = &self.dialog {
            return match d {
                Dialog::Help | Dialog::Notice(_) => Some(Action::CloseDialog),
                Dialog::ChooseProfile { .. } => match key.code {
                    KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                    KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                    KeyCode::Enter => Some(Action::Confirmed),
                    KeyCode::Esc => Some(Action::CloseDialog),
                    _ => None,
                },
                Dialog::Confirm { .. } | Dialog::Cancel { .. } => match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirmed),
                    _ => Some(Action::CloseDialog),
                },
                Dialog::TypeName { .. } => match key.code {
                    KeyCode::Esc => Some(Action::CloseDialog),
                    KeyCode::Enter => Some(Action::Confirmed),
                    KeyCode::Tab => Some(Action::ToggleKeepData),
                    KeyCode::Backspace => Some(Action::TypeBackspace),
                    KeyCode::Char(c) => Some(Action::TypeChar(c)),
                    _ => None,
                },
            };
        }
        if self.filtering {
            return match key.code {
                KeyCode::Esc => Some(Action::FilterClear),
                KeyCode::Enter => Some(Action::FilterDone),
                KeyCode::Backspace => Some(Action::FilterBackspace),
                KeyCode::Char(c) => Some(Action::FilterInput(c)),
                KeyCode::Down => Some(Action::Down),
                KeyCode::Up => Some(Action::Up),
                _ => None,
            };
        }
        if self.screen == Screen::Install {
            return self.form_key(key);
        }
        let common = match key.code {
            KeyCode::Char('?') => Some(Action::ShowHelp),
            KeyCode::Char('q') => Some(Action::Quit),
            _ => None,
        };
        if common.is_some() {
            return common;
        }
        match &self.screen {
            Screen::Dashboard | Screen::Details => match key.code {
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                KeyCode::Home | KeyCode::Char('g') => Some(Action::Top),
                KeyCode::End | KeyCode::Char('G') => Some(Action::Bottom),
                KeyCode::Enter => Some(Action::OpenDetails),
                KeyCode::Esc if self.screen == Screen::Details => Some(Action::Back),
                KeyCode::Esc if !self.filter.is_empty() => Some(Action::FilterClear),
                KeyCode::Char('/') => Some(Action::StartFilter),
                KeyCode::Char('s') => Some(Action::Refresh),
                KeyCode::Char('l') => Some(Action::Logs),
                KeyCode::Char('o') => Some(Action::ShowOperation),
                KeyCode::Char('u') if !self.read_only => Some(Action::Ask(OpKind::Update)),
                KeyCode::Char('r') if !self.read_only => Some(Action::Ask(OpKind::Rollback)),
                KeyCode::Char('b') if !self.read_only => Some(Action::Ask(OpKind::Backup)),
                KeyCode::Char('x') | KeyCode::Delete if !self.read_only => {
                    Some(Action::Ask(OpKind::Uninstall))
                }
                KeyCode::Char('i') if !self.read_only => Some(Action::Install),
                _ => None,
            },
            Screen::Operation(_) => match key.code {
                KeyCode::Esc => Some(Action::AskCancel),
                KeyCode::Char('l') => Some(Action::Logs),
                _ => None,
            },
            Screen::Install => None,
            Screen::Logs => match key.code {
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                KeyCode::PageUp => Some(Action::Top),
                KeyCode::End | KeyCode::Char('G') => Some(Action::Bottom),
                KeyCode::Char('f') => Some(Action::ToggleFollow),
                _ => None,
            },
        }
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let mut effects = Vec::new();
        match action {
            Action::Quit => {
                let running: Vec<&str> = self
                    .ops
                    .values()
                    .filter(|o| o.running())
                    .map(|o| o.instance.as_str())
                    .collect();
                if running.is_empty() {
                    self.quit = true;
                } else {
                    self.dialog = Some(Dialog::Notice(format!(
                        "An operation is still running on {}: wait for it to finish, or cancel it with Esc on its screen (o).",
                        running.join(", ")
                    )));
                }
            }
            Action::Up | Action::Down
                if matches!(self.dialog, Some(Dialog::ChooseProfile { .. })) =>
            {
                if let Some(Dialog::ChooseProfile { names, selected }) = &mut self.dialog {
                    *selected = if action == Action::Up {
                        selected.saturating_sub(1)
                    } else {
                        (*selected + 1).min(names.len().saturating_sub(1))
                    };
                }
            }
            Action::Up => match self.screen {
                Screen::Logs => {
                    self.logs.follow = false;
                    self.logs.scroll =
                        (self.logs.scroll + 1).min(self.logs.lines.len().saturating_sub(1));
                }
                _ => self.selected = self.selected.saturating_sub(1),
            },
            Action::Down => match self.screen {
                Screen::Logs => self.logs.scroll = self.logs.scroll.saturating_sub(1),
                _ => {
                    let n = self.visible().len();
                    if self.selected + 1 < n {
                        self.selected += 1;
                    }
                }
            },
            Action::Top => match self.screen {
                Screen::Logs => {
                    self.logs.follow = false;
                    self.logs.scroll = self.logs.lines.len().saturating_sub(1);
                }
                _ => self.selected = 0,
            },
            Action::Bottom => match self.screen {
                Screen::Logs => self.logs.scroll = 0,
                _ => self.selected = self.visible().len().saturating_sub(1),
            },
            Action::OpenDetails => {
                if self.selected_row().is_some() {
                    self.screen = Screen::Details;
                }
            }
            Action::Back => self.screen = Screen::Dashboard,
            Action::StartFilter => self.filtering = true,
            Action::FilterInput(c) => {
                self.filter.push(c);
                self.selected = 0;
            }
            Action::FilterBackspace => {
                self.filter.pop();
                self.clamp();
            }
            Action::FilterDone => self.filtering = false,
            Action::FilterClear => {
                self.filtering = false;
                self.filter.clear();
                self.clamp();
            }
            Action::ShowHelp => self.dialog = Some(Dialog::Help),
            Action::CloseDialog => self.dialog = None,
            Action::Ask(op) => self.ask(op),
            Action::TypeChar(c) => {
                if let Some(Dialog::TypeName { typed, .. }) = &mut self.dialog {
                    typed.push(c);
                }
            }
            Action::TypeBackspace => {
                if let Some(Dialog::TypeName { typed, .. }) = &mut self.dialog {
                    typed.pop();
                }
            }
            Action::ToggleKeepData => {
                if let Some(Dialog::TypeName { keep_data, .. }) = &mut self.dialog {
                    *keep_data = !*keep_data;
                }
            }
            Action::Confirmed => match self.dialog.take() {
                Some(Dialog::Confirm { op, instance, .. }) => {
                    effects.push(self.start(op, &instance, false));
                }
                Some(Dialog::TypeName {
                    instance,
                    typed,
                    keep_data,
                }) => {
                    if typed == instance {
                        effects.push(self.start(OpKind::Uninstall, &instance, keep_data));
                    } else {
                        // Wrong name: the dialog stays, so the user sees what differs.
                        self.dialog = Some(Dialog::TypeName {
                            instance,
                            typed,
                            keep_data,
                        });
                    }
                }
                Some(Dialog::ChooseProfile { names, selected }) => {
                    if let Some(n) = names.get(selected) {
                        effects.extend(self.open_form(n));
                    }
                }
                Some(Dialog::Cancel { instance }) => {
                    if let Some(op) = self.ops.get_mut(&instance) {
                        op.cancel_requested = true;
                    }
                    effects.push(Effect::Cancel(instance));
                }
                other => self.dialog = other,
            },
            Action::ShowOperation => {
                if let Some(name) = self.selected_name() {
                    if self.ops.contains_key(&name) {
                        self.screen = Screen::Operation(name);
                    } else {
                        self.dialog = Some(Dialog::Notice(format!(
                            "No operation started here on {name}. Start one with u, r, b or x."
                        )));
                    }
                }
            }
            Action::AskCancel => {
                if let Screen::Operation(name) = &self.screen {
                    let name = name.clone();
                    match self.ops.get(&name) {
                        Some(op) if op.running() && !op.cancel_requested => {
                            self.dialog = Some(Dialog::Cancel { instance: name })
                        }
                        Some(op) if op.running() => {}
                        _ => {
                            self.screen = Screen::Dashboard;
                            effects.push(Effect::RefreshStatus);
                        }
                    }
                }
            }
            Action::Logs => {
                let name = match &self.screen {
                    Screen::Operation(n) => Some(n.clone()),
                    _ => self.selected_name(),
                };
                if let Some(instance) = name {
                    self.logs = LogsView {
                        instance: instance.clone(),
                        title: format!("logs of {instance}"),
                        lines: vec!["reading…".into()],
                        scroll: 0,
                        follow: true,
                    };
                    self.screen = Screen::Logs;
                    effects.push(Effect::ReadLog { instance });
                }
            }
            Action::ToggleFollow => {
                self.logs.follow = !self.logs.follow;
                if self.logs.follow {
                    self.logs.scroll = 0;
                }
            }
            Action::Refresh => {
                for r in &mut self.rows {
                    r.checks = None;
                }
                effects.push(Effect::RefreshStatus);
            }
            Action::Install => {
                if self.profiles.is_empty() {
                    effects.push(Effect::LoadProfiles);
                } else {
                    effects.extend(self.choose_profile());
                }
            }
            Action::FormNext => self.with_form(InstallForm::next),
            Action::FormPrev => self.with_form(InstallForm::prev),
            Action::FormChar(c) => self.with_form(|f| f.type_char(c)),
            Action::FormBackspace => self.with_form(InstallForm::backspace),
            Action::FormMode => self.with_form(InstallForm::toggle_mode),
            Action::FormBack => match self.form.as_mut() {
                Some(f) if f.summary.is_some() => f.summary = None,
                _ => {
                    self.form = None;
                    self.screen = Screen::Dashboard;
                }
            },
            Action::FormSubmit => {
                let Some(f) = self.form.as_mut() else {
                    return effects;
                };
                if f.summary.is_some() {
                    let instance = f.instance_name();
                    let profile = f.profile.name.to_string();
                    let answers = f.answers();
                    self.form = None;
                    self.ops.insert(
                        instance.clone(),
                        OpState::new(&instance, "install", self.now),
                    );
                    self.screen = Screen::Operation(instance.clone());
                    effects.push(Effect::Install {
                        profile,
                        instance,
                        answers,
                    });
                } else {
                    f.submit();
                }
            }
        }
        effects
    }

    /// The profiles arrived: open the form (or ask which app, when there are several).
    pub fn set_profiles(&mut self, profiles: Vec<Profile>) -> Vec<Effect> {
        self.profiles = profiles;
        self.choose_profile()
    }

    fn choose_profile(&mut self) -> Vec<Effect> {
        match self.profiles.len() {
            0 => {
                self.dialog = Some(Dialog::Notice("No app profiles found.".into()));
                Vec::new()
            }
            1 => {
                let n = self.profiles[0].name.to_string();
                self.open_form(&n)
            }
            _ => {
                self.dialog = Some(Dialog::ChooseProfile {
                    names: self.profiles.iter().map(|p| p.name.to_string()).collect(),
                    selected: 0,
                });
                Vec::new()
            }
        }
    }

    fn open_form(&mut self, name: &str) -> Vec<Effect> {
        let Some(p) = self.profiles.iter().find(|p| p.name.as_str() == name) else {
            return Vec::new();
        };
        self.form = Some(InstallForm::new(p.clone(), Mode::Default));
        self.screen = Screen::Install;
        vec![Effect::LoadFacts]
    }

    fn with_form(&mut self, f: impl FnOnce(&mut InstallForm)) {
        if let Some(form) = self.form.as_mut() {
            f(form);
        }
    }

    fn form_key(&self, key: KeyEvent) -> Option<Action> {
        let summary = self.form.as_ref().is_some_and(|f| f.summary.is_some());
        if summary {
            return match key.code {
                KeyCode::Char('y') | KeyCode::Enter => Some(Action::FormSubmit),
                _ => Some(Action::FormBack),
            };
        }
        match key.code {
            KeyCode::Esc => Some(Action::FormBack),
            KeyCode::Tab | KeyCode::Down => Some(Action::FormNext),
            KeyCode::BackTab | KeyCode::Up => Some(Action::FormPrev),
            KeyCode::Enter => Some(Action::FormSubmit),
            KeyCode::F(2) => Some(Action::FormMode),
            KeyCode::Backspace => Some(Action::FormBackspace),
            KeyCode::Char(c) => Some(Action::FormChar(c)),
            _ => None,
        }
    }

    fn ask(&mut self, op: OpKind) {
        let Some(row) = self.selected_row() else {
            return;
        };
        let name = row.name.clone();
        if let Some(o) = self.ops.get(&name).filter(|o| o.running()) {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} is busy: this TUI runs its {} (o shows it).",
                o.operation
            )));
            return;
        }
        if let Some(h) = &row.lock {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} is busy: `{}` (pid {} on {}, since {}) holds its lock.",
                h.operation, h.pid, h.host, h.since
            )));
            return;
        }
        let question = match op {
            OpKind::Update => match &row.update {
                Some(to) => format!("Update {name} from {} to {to}?", row.version),
                None => {
                    self.dialog = Some(Dialog::Notice(format!(
                        "{name} is at {}, the newest release its profile allows.",
                        row.version
                    )));
                    return;
                }
            },
            OpKind::Rollback => format!("Roll {name} back to its previous release?"),
            OpKind::Backup => format!("Take a verified backup of {name} now?"),
            OpKind::Uninstall => {
                self.dialog = Some(Dialog::TypeName {
                    instance: name,
                    typed: String::new(),
                    keep_data: false,
                });
                return;
            }
        };
        self.dialog = Some(Dialog::Confirm {
            op,
            instance: name,
            question,
        });
    }

    fn start(&mut self, op: OpKind, instance: &str, keep_data: bool) -> Effect {
        self.ops.insert(
            instance.to_string(),
            OpState::new(instance, op.verb(), self.now),
        );
        self.screen = Screen::Operation(instance.to_string());
        Effect::Start {
            op,
            instance: instance.to_string(),
            keep_data,
        }
    }
}
