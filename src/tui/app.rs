//! The TUI's state and its one way to change: a key becomes an `Action` (by the screen or
//! dialog on top), `update` applies it and hands back `Effect`s for the loop to start (a run,
//! a status refresh, reading a log). Nothing here waits on I/O, so every key redraws at once.

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::form::{InstallForm, Mode};
use super::manage::{BackupsView, ReconfigureForm, UpdateView};
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
    /// Before an update: the versions, `--check`'s answer, the choice.
    Update,
    /// The current settings as a form, the drift, then the changes to confirm.
    Reconfigure,
    /// The instance's archives with their verification state.
    Backups,
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
    /// y/N before a run with its own arguments (an update to a chosen version, a restore).
    ConfirmRun {
        instance: String,
        operation: String,
        args: Vec<String>,
        question: String,
    },
    /// Restore to a new instance: its name, checked as typed.
    NewName {
        instance: String,
        archive: String,
        typed: String,
        error: Option<String>,
    },
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
    /// `c`: the reconfigure form of the selected instance.
    Reconfigure,
    /// `B`: the backups screen of the selected instance.
    Backups,
    /// On the backups screen: re-check the chosen archive.
    Verify,
    /// On the backups screen: restore the chosen archive (asks first).
    AskRestore,
    /// On the backups screen: restore the chosen archive into a new instance (asks its name).
    AskRestoreNew,
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
    /// A run of the real command with these arguments (after the global ones), as argv.
    Run {
        instance: String,
        operation: String,
        args: Vec<String>,
    },
    /// The profile's releases and `update NAME --check --json`.
    LoadUpdate {
        instance: String,
    },
    /// The record and profile for the form, and `reconfigure NAME --json` for the drift.
    LoadReconfigure {
        instance: String,
    },
    /// `backups NAME --json`.
    LoadBackups {
        instance: String,
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
    pub update: Option<UpdateView>,
    pub reconfigure: Option<ReconfigureForm>,
    /// The instance whose reconfigure form is being read.
    pub reconfigure_for: Option<String>,
    pub backups: Option<BackupsView>,
    /// Checks that arrived before the records were read (a connection refused at once beats
    /// the reading of the records): given to their rows when those arrive.
    pub early_checks: BTreeMap<String, Vec<crate::status::Check>>,
    /// Where Esc goes from a finished operation (the backups screen it was started from).
    pub op_back: BTreeMap<String, Screen>,
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
            update: None,
            reconfigure: None,
            reconfigure_for: None,
            backups: None,
            op_back: BTreeMap::new(),
            early_checks: BTreeMap::new(),
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
            if let Some(c) = self.early_checks.remove(&r.name) {
                r.checks.get_or_insert(c);
            }
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
        match self.rows.iter_mut().find(|r| r.name == name) {
            Some(r) => r.checks = Some(checks),
            None => {
                self.early_checks.insert(name.to_string(), checks);
            }
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
                Dialog::NewName { .. } => match key.code {
                    KeyCode::Esc => Some(Action::CloseDialog),
                    KeyCode::Enter => Some(Action::Confirmed),
                    KeyCode::Backspace => Some(Action::TypeBackspace),
                    KeyCode::Char(c) => Some(Action::TypeChar(c)),
                    _ => None,
                },
                Dialog::Confirm { .. } | Dialog::ConfirmRun { .. } | Dialog::Cancel { .. } => {
                    match key.code {
                        KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirmed),
                        _ => Some(Action::CloseDialog),
                    }
                }
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
        if matches!(self.screen, Screen::Install | Screen::Reconfigure) {
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
                KeyCode::Char('c') if !self.read_only => Some(Action::Reconfigure),
                KeyCode::Char('B') => Some(Action::Backups),
                _ => None,
            },
            Screen::Update => match key.code {
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                KeyCode::Enter | KeyCode::Char('u') => Some(Action::Confirmed),
                _ => None,
            },
            Screen::Backups => match key.code {
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
                KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
                KeyCode::Char('v') => Some(Action::Verify),
                KeyCode::Char('s') => Some(Action::Backups),
                KeyCode::Enter | KeyCode::Char('r') if !self.read_only => Some(Action::AskRestore),
                KeyCode::Char('n') if !self.read_only => Some(Action::AskRestoreNew),
                _ => None,
            },
            Screen::Operation(_) => match key.code {
                KeyCode::Esc => Some(Action::AskCancel),
                KeyCode::Char('l') => Some(Action::Logs),
                _ => None,
            },
            Screen::Install | Screen::Reconfigure => None,
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
            Action::Up if self.screen == Screen::Update => {
                if let Some(u) = self.update.as_mut() {
                    u.up();
                }
            }
            Action::Down if self.screen == Screen::Update => {
                if let Some(u) = self.update.as_mut() {
                    u.down();
                }
            }
            Action::Up if self.screen == Screen::Backups => {
                if let Some(b) = self.backups.as_mut() {
                    b.up();
                }
            }
            Action::Down if self.screen == Screen::Backups => {
                if let Some(b) = self.backups.as_mut() {
                    b.down();
                }
            }
            Action::Confirmed if self.dialog.is_none() && self.screen == Screen::Update => {
                self.ask_update_to();
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
            Action::Back => {
                self.screen = Screen::Dashboard;
                self.update = None;
            }
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
            Action::Ask(op) => effects.extend(self.ask(op)),
            Action::TypeChar(c) => match &mut self.dialog {
                Some(Dialog::TypeName { typed, .. }) => typed.push(c),
                Some(Dialog::NewName { typed, error, .. }) => {
                    typed.push(c);
                    *error = None;
                }
                _ => {}
            },
            Action::TypeBackspace => match &mut self.dialog {
                Some(Dialog::TypeName { typed, .. }) => {
                    typed.pop();
                }
                Some(Dialog::NewName { typed, error, .. }) => {
                    typed.pop();
                    *error = None;
                }
                _ => {}
            },
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
                Some(Dialog::ConfirmRun {
                    instance,
                    operation,
                    args,
                    ..
                }) => effects.push(self.run(&instance, &operation, args)),
                Some(Dialog::NewName {
                    instance,
                    archive,
                    typed,
                    ..
                }) => match self.check_new_name(&typed) {
                    Ok(()) => {
                        let args = vec![
                            "restore".into(),
                            instance.clone(),
                            archive,
                            "--to-new".into(),
                            typed,
                        ];
                        effects.push(self.run(&instance, "restore to new", args));
                    }
                    Err(e) => {
                        self.dialog = Some(Dialog::NewName {
                            instance,
                            archive,
                            typed,
                            error: Some(e),
                        })
                    }
                },
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
                            self.screen = self.op_back.remove(&name).unwrap_or(Screen::Dashboard);
                            effects.push(Effect::RefreshStatus);
                            if self.screen == Screen::Backups {
                                effects.push(Effect::LoadBackups { instance: name });
                            }
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
            Action::FormNext
            | Action::FormPrev
            | Action::FormChar(_)
            | Action::FormBackspace
            | Action::FormSubmit
            | Action::FormBack
                if self.screen == Screen::Reconfigure =>
            {
                effects.extend(self.reconfigure_action(action));
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
            Action::Reconfigure => {
                if let Some(name) = self.idle_selected() {
                    self.reconfigure = None;
                    self.reconfigure_for = Some(name.clone());
                    self.screen = Screen::Reconfigure;
                    effects.push(Effect::LoadReconfigure { instance: name });
                }
            }
            Action::Backups => {
                let name = match (&self.screen, &self.backups) {
                    (Screen::Backups, Some(b)) => Some(b.instance.clone()),
                    _ => self.selected_name(),
                };
                if let Some(name) = name {
                    let keep = self
                        .backups
                        .as_ref()
                        .filter(|b| b.instance == name)
                        .map(|b| b.selected)
                        .unwrap_or(0);
                    let mut v = BackupsView::new(&name);
                    v.selected = keep;
                    self.backups = Some(v);
                    self.screen = Screen::Backups;
                    effects.push(Effect::LoadBackups { instance: name });
                }
            }
            Action::Verify => {
                if let Some((name, archive)) = self.chosen_archive() {
                    if self.busy_notice(&name) {
                        return effects;
                    }
                    let args = vec!["backups".into(), name.clone(), "--verify".into(), archive];
                    effects.push(self.run(&name, "verify", args));
                }
            }
            Action::AskRestore => {
                if let Some((name, archive)) = self.chosen_archive() {
                    if self.busy_notice(&name) {
                        return effects;
                    }
                    let b = self.backups.as_ref().and_then(|b| b.chosen()).cloned();
                    let what = b
                        .map(|b| format!("{} ({}, taken {})", b.file_name(), b.version, b.created))
                        .unwrap_or_else(|| archive.clone());
                    self.dialog = Some(Dialog::ConfirmRun {
                        instance: name.clone(),
                        operation: "restore".into(),
                        args: vec!["restore".into(), name.clone(), archive],
                        question: format!(
                            "Restore {name} from {what}? Its data now is replaced (a safety backup is taken first)."
                        ),
                    });
                }
            }
            Action::AskRestoreNew => {
                if let Some((name, archive)) = self.chosen_archive() {
                    self.dialog = Some(Dialog::NewName {
                        instance: name,
                        archive,
                        typed: String::new(),
                        error: None,
                    });
                }
            }
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
                let names: Vec<String> = self.profiles.iter().map(|p| p.name.to_string()).collect();
                // Start on the app of the highlighted instance: a second one of the same app
                // is the likeliest wish.
                let selected = self
                    .selected_row()
                    .and_then(|r| names.iter().position(|n| *n == r.app))
                    .unwrap_or(0);
                self.dialog = Some(Dialog::ChooseProfile { names, selected });
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
        let summary = match self.screen {
            Screen::Reconfigure => self
                .reconfigure
                .as_ref()
                .is_some_and(|f| f.summary.is_some()),
            _ => self.form.as_ref().is_some_and(|f| f.summary.is_some()),
        };
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

    fn ask(&mut self, op: OpKind) -> Vec<Effect> {
        let Some(row) = self.selected_row() else {
            return Vec::new();
        };
        let name = row.name.clone();
        if let Some(o) = self.ops.get(&name).filter(|o| o.running()) {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} is busy: this TUI runs its {} (o shows it).",
                o.operation
            )));
            return Vec::new();
        }
        if let Some(h) = &row.lock {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} is busy: `{}` (pid {} on {}, since {}) holds its lock.",
                h.operation, h.pid, h.host, h.since
            )));
            return Vec::new();
        }
        let question = match op {
            OpKind::Update => {
                self.update = Some(UpdateView::new(&name, &row.version));
                self.screen = Screen::Update;
                return vec![Effect::LoadUpdate { instance: name }];
            }
            OpKind::Rollback => format!("Roll {name} back to its previous release?"),
            OpKind::Backup => format!("Take a verified backup of {name} now?"),
            OpKind::Uninstall => {
                self.dialog = Some(Dialog::TypeName {
                    instance: name,
                    typed: String::new(),
                    keep_data: false,
                });
                return Vec::new();
            }
        };
        self.dialog = Some(Dialog::Confirm {
            op,
            instance: name,
            question,
        });
        Vec::new()
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

    /// Starts a run of the command with `args` (argv elements, never a shell line).
    fn run(&mut self, instance: &str, operation: &str, args: Vec<String>) -> Effect {
        self.ops.insert(
            instance.to_string(),
            OpState::new(instance, operation, self.now),
        );
        // Started from the backups screen (verify, restore): Esc after it goes back there.
        if self.screen == Screen::Backups {
            self.op_back.insert(instance.to_string(), Screen::Backups);
        } else {
            self.op_back.remove(instance);
        }
        self.screen = Screen::Operation(instance.to_string());
        Effect::Run {
            instance: instance.to_string(),
            operation: operation.to_string(),
            args,
        }
    }

    /// A notice when this TUI or another process runs something on `name`; true if busy.
    fn busy_notice(&mut self, name: &str) -> bool {
        if let Some(o) = self.ops.get(name).filter(|o| o.running()) {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} is busy: this TUI runs its {} (o shows it).",
                o.operation
            )));
            return true;
        }
        if let Some(h) = self
            .rows
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.lock.as_ref())
        {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} is busy: `{}` (pid {} on {}, since {}) holds its lock.",
                h.operation, h.pid, h.host, h.since
            )));
            return true;
        }
        false
    }

    /// The selected instance, when nothing runs on it (else a notice says what does).
    fn idle_selected(&mut self) -> Option<String> {
        let name = self.selected_name()?;
        (!self.busy_notice(&name)).then_some(name)
    }

    fn chosen_archive(&self) -> Option<(String, String)> {
        let b = self.backups.as_ref()?;
        Some((b.instance.clone(), b.chosen()?.archive.clone()))
    }

    /// A new instance's name: the rules of every name, and not one in use.
    fn check_new_name(&self, name: &str) -> Result<(), String> {
        crate::instance::check_instance_name(name).map_err(|e| e.to_string())?;
        if self.rows.iter().any(|r| r.name == name) {
            return Err(format!(
                "an instance named `{name}` exists already: choose another name"
            ));
        }
        Ok(())
    }

    /// Enter on the update screen: the chosen version, confirmed first.
    fn ask_update_to(&mut self) {
        let Some(u) = &self.update else {
            return;
        };
        let Some(v) = u.chosen() else {
            return;
        };
        let name = u.instance.clone();
        if v.version == u.current {
            self.dialog = Some(Dialog::Notice(format!(
                "{name} runs {} already: choose another version.",
                v.version
            )));
            return;
        }
        let mut args = vec![
            "update".to_string(),
            name.clone(),
            "--version".into(),
            v.version.clone(),
        ];
        if v.unstable {
            args.extend(["--channel".into(), "unstable".into()]);
        }
        self.dialog = Some(Dialog::ConfirmRun {
            question: format!(
                "Update {name} from {} to {}{}?",
                u.current,
                v.version,
                if v.unstable { " (unstable)" } else { "" }
            ),
            instance: name,
            operation: "update".into(),
            args,
        });
    }

    fn reconfigure_action(&mut self, action: Action) -> Vec<Effect> {
        let Some(f) = self.reconfigure.as_mut() else {
            if matches!(action, Action::FormBack) {
                self.screen = Screen::Dashboard;
                self.reconfigure_for = None;
            }
            return Vec::new();
        };
        match action {
            Action::FormNext => f.next(),
            Action::FormPrev => f.prev(),
            Action::FormChar(c) => f.type_char(c),
            Action::FormBackspace => f.backspace(),
            Action::FormBack if f.summary.is_some() => f.summary = None,
            Action::FormBack => {
                self.reconfigure = None;
                self.reconfigure_for = None;
                self.screen = Screen::Dashboard;
            }
            Action::FormSubmit if f.summary.is_some() => {
                let name = f.instance.name.clone();
                let mut args = vec!["reconfigure".to_string(), name.clone()];
                args.extend(f.set_args());
                self.reconfigure = None;
                self.reconfigure_for = None;
                return vec![self.run(&name, "reconfigure", args)];
            }
            Action::FormSubmit => {
                f.submit();
            }
            _ => {}
        }
        Vec::new()
    }

    /// The profile arrived for the update screen.
    pub fn set_update_profile(&mut self, instance: &str, p: Result<Profile, String>) {
        if let Some(u) = self.update.as_mut().filter(|u| u.instance == instance) {
            u.set_profile(p);
        }
    }

    /// `update --check`'s answer arrived.
    pub fn set_update_check(&mut self, instance: &str, c: Result<serde_json::Value, String>) {
        if let Some(u) = self.update.as_mut().filter(|u| u.instance == instance) {
            u.check = Some(c);
        }
    }

    /// The record and profile arrived: the form opens with the current settings.
    pub fn set_reconfigure(
        &mut self,
        instance: &str,
        r: Result<(crate::instance::Instance, Profile), String>,
    ) {
        if self.reconfigure_for.as_deref() != Some(instance) {
            return;
        }
        match r {
            Ok((inst, profile)) => {
                let drift = self.reconfigure.take().and_then(|f| f.drift);
                let mut f = ReconfigureForm::new(inst, profile);
                f.drift = drift;
                self.reconfigure = Some(f);
            }
            Err(e) => {
                self.reconfigure_for = None;
                self.screen = Screen::Dashboard;
                self.dialog = Some(Dialog::Notice(format!(
                    "cannot read {instance}'s settings: {e}"
                )));
            }
        }
    }

    /// `reconfigure NAME --json`'s drift arrived.
    pub fn set_drift(&mut self, instance: &str, d: Result<Vec<String>, String>) {
        if let Some(f) = self
            .reconfigure
            .as_mut()
            .filter(|f| f.instance.name == instance)
        {
            f.drift = Some(d);
        }
    }

    /// `backups NAME --json` arrived.
    pub fn set_backups(&mut self, instance: &str, v: Result<serde_json::Value, String>) {
        if let Some(b) = self.backups.as_mut().filter(|b| b.instance == instance) {
            b.set_list(v);
        }
    }
}
