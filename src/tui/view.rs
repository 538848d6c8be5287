//! Drawing: a pure function of the `App` onto a frame (`&App`, never `&mut`), so the same code
//! draws to the terminal and to the snapshot tests' `TestBackend`.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Cell, Clear, Gauge, Paragraph, Row as TableRow, Table, TableState, Wrap,
};
use ratatui::Frame;

use super::app::{App, Dialog, Screen};
use super::form::{Field, InstallForm, Mode};
use super::manage::{BackupsView, ReconfigureForm, UpdateView};
use super::model::{human_elapsed, Health, OpState, Row, StepState};
use crate::engine::Level;
use crate::status::Level as CheckLevel;

/// Styles with colour, or (NO_COLOR, --no-color) the same emphasis with modifiers only.
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
    fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

pub fn draw(f: &mut Frame, app: &App) {
    let t = Theme { color: app.color };
    let [body, bar] = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(1)])
        .areas(f.area());
    match &app.screen {
        Screen::Dashboard => dashboard(f, body, app, &t),
        Screen::Details => match app.selected_row() {
            Some(r) => details(f, body, app, r, &t, true),
            None => dashboard(f, body, app, &t),
        },
        Screen::Operation(name) => match app.ops.get(name) {
            Some(op) => operation(f, body, app, op, &t),
            None => dashboard(f, body, app, &t),
        },
        Screen::Logs => logs(f, body, app, &t),
        Screen::Install => match &app.form {
            Some(form) => install_form(f, body, form, &t),
            None => dashboard(f, body, app, &t),
        },
        Screen::Update => match &app.update {
            Some(u) => update_screen(f, body, u, &t),
            None => dashboard(f, body, app, &t),
        },
        Screen::Reconfigure => match &app.reconfigure {
            Some(form) => reconfigure_form(f, body, form, &t),
            None => f.render_widget(
                Paragraph::new(Line::styled(
                    format!(
                        "reading the settings of {}…",
                        app.reconfigure_for.as_deref().unwrap_or("?")
                    ),
                    t.dim(),
                ))
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(" Reconfigure "),
                ),
                body,
            ),
        },
        Screen::Backups => match &app.backups {
            Some(b) => backups_screen(f, body, app, b, &t),
            None => dashboard(f, body, app, &t),
        },
    }
    key_bar(f, bar, app, &t);
    if let Some(d) = &app.dialog {
        dialog(f, app, d, &t);
    }
}

fn keys_of(app: &App) -> Vec<(&'static str, &'static str)> {
    if app.dialog.is_some() {
        return match app.dialog {
            Some(Dialog::TypeName { .. }) => {
                vec![
                    ("Enter", "confirm"),
                    ("Tab", "keep data"),
                    ("Esc", "cancel"),
                ]
            }
            Some(Dialog::NewName { .. }) => {
                vec![("Enter", "restore"), ("Esc", "cancel")]
            }
            Some(Dialog::Confirm { .. })
            | Some(Dialog::ConfirmRun { .. })
            | Some(Dialog::Cancel { .. }) => {
                vec![("y", "yes"), ("any other key", "no")]
            }
            Some(Dialog::ChooseProfile { .. }) => {
                vec![("↑↓", "choose"), ("Enter", "install"), ("Esc", "cancel")]
            }
            _ => vec![("any key", "close")],
        };
    }
    if app.filtering {
        return vec![("type", "filter"), ("Enter", "keep"), ("Esc", "clear")];
    }
    match &app.screen {
        Screen::Dashboard | Screen::Details => {
            let mut k = vec![("↑↓", "move"), ("Enter", "details")];
            if !app.read_only {
                k.extend([
                    ("i", "install"),
                    ("u", "update"),
                    ("r", "rollback"),
                    ("b", "backup"),
                    ("c", "reconfigure"),
                    ("x", "uninstall"),
                ]);
            }
            k.push(("B", "backups"));
            k.extend([
                ("l", "logs"),
                ("o", "operation"),
                ("/", "filter"),
                ("s", "refresh"),
                ("?", "help"),
                ("q", "quit"),
            ]);
            if app.screen == Screen::Details {
                k.insert(0, ("Esc", "back"));
            }
            k
        }
        Screen::Operation(name) => {
            let running = app.ops.get(name).is_some_and(|o| o.running());
            if running {
                vec![("Esc", "cancel (undo)"), ("l", "log file"), ("?", "help")]
            } else {
                vec![("Esc", "back"), ("l", "log file"), ("q", "quit")]
            }
        }
        Screen::Install => match app.form.as_ref().map(|f| f.summary.is_some()) {
            Some(true) => vec![("y", "install"), ("any other key", "back to the form")],
            _ => vec![
                ("Tab ↑↓", "field"),
                ("Enter", "check & summary"),
                ("F2", "Default/Advanced"),
                ("Esc", "cancel"),
            ],
        },
        Screen::Update => vec![
            ("↑↓", "version"),
            ("Enter", "update to it"),
            ("Esc", "back"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Reconfigure => match app.reconfigure.as_ref().map(|f| f.summary.is_some()) {
            Some(true) => vec![("y", "apply"), ("any other key", "back to the form")],
            _ => vec![
                ("Tab ↑↓", "field"),
                ("Enter", "check & summary"),
                ("Esc", "cancel"),
            ],
        },
        Screen::Backups => {
            let mut k = vec![("↑↓", "archive"), ("v", "verify")];
            if !app.read_only {
                k.extend([("Enter/r", "restore"), ("n", "restore to new")]);
            }
            k.extend([
                ("s", "refresh"),
                ("Esc", "back"),
                ("?", "help"),
                ("q", "quit"),
            ]);
            k
        }
        Screen::Logs => vec![
            ("↑↓", "scroll"),
            ("End", "bottom"),
            ("f", "follow"),
            ("Esc", "back"),
            ("q", "quit"),
        ],
    }
}

/// The keys that work here, as many as fit; `?` (all of them) and `q` always do.
fn key_bar(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let keys = keys_of(app);
    let width = |k: &str, what: &str| k.chars().count() + what.chars().count() + 3;
    let tail: Vec<_> = keys
        .iter()
        .filter(|(k, _)| *k == "?" || *k == "q")
        .copied()
        .collect();
    let mut room = area.width as usize
        - tail
            .iter()
            .map(|(k, w)| width(k, w))
            .sum::<usize>()
            .min(area.width as usize);
    if app.read_only {
        room = room.saturating_sub(12);
    }
    let mut shown: Vec<(&str, &str)> = Vec::new();
    for (k, what) in keys.iter().filter(|(k, _)| *k != "?" && *k != "q") {
        let w = width(k, what);
        if w > room {
            break;
        }
        room -= w;
        shown.push((k, what));
    }
    shown.extend(tail);
    let mut spans = Vec::new();
    for (i, (k, what)) in shown.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(k, t.key()));
        spans.push(Span::raw(format!(" {what}")));
    }
    if app.read_only {
        spans.push(Span::styled("  [read-only]", t.warn()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn health_cell<'a>(r: &Row, t: &Theme) -> Span<'a> {
    match r.health() {
        Health::Checking if r.arriving.is_empty() => Span::styled("… checking", t.dim()),
        Health::Checking => Span::styled(format!("… checking {}", r.arriving.len()), t.dim()),
        Health::Healthy => Span::styled("● healthy", t.ok()),
        // Warnings leave an instance healthy (as `status` says); the count shows there are some.
        Health::Warning => Span::styled(format!("● healthy ▲{}", r.warnings()), t.warn()),
        Health::Unhealthy => Span::styled(format!("✗ {} failed", r.failed()), t.bad()),
    }
}

fn operation_cell(app: &App, r: &Row) -> String {
    if let Some(op) = app.ops.get(&r.name).filter(|o| o.running()) {
        let (done, total) = op.progress();
        return format!("{} {done}/{total}", op.operation);
    }
    // Someone else's operation (another process or host): who it is, the details pane says.
    match &r.lock {
        Some(h) => h.operation.clone(),
        None => String::new(),
    }
}

fn dashboard(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let visible = app.visible();
    let table_h = (visible.len() as u16 + 3).clamp(5, area.height.saturating_sub(8).max(5));
    let [head, table_area, detail_area] = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(table_h),
            Constraint::Min(0),
        ])
        .areas(area);
    let mut title = vec![
        Span::styled("launch-tui", t.title()),
        Span::raw(format!(
            "  {} instance{}",
            app.rows.len(),
            if app.rows.len() == 1 { "" } else { "s" }
        )),
    ];
    let checking = app.rows.iter().filter(|r| r.checks.is_none()).count();
    if checking > 0 && app.loaded {
        title.push(Span::styled(format!("  checking {checking}…"), t.dim()));
    }
    if app.filtering || !app.filter.is_empty() {
        title.push(Span::raw(format!(
            "  filter: /{}{}",
            app.filter,
            if app.filtering { "▏" } else { "" }
        )));
    }
    f.render_widget(Paragraph::new(Line::from(title)), head);

    let block = Block::default().borders(Borders::ALL).title(" Instances ");
    if !app.loaded {
        let p = Paragraph::new(
            app.load_error
                .as_deref()
                .unwrap_or("reading the instances…"),
        )
        .block(block);
        f.render_widget(p, table_area);
        return;
    }
    if app.rows.is_empty() {
        let p = Paragraph::new(vec![
            Line::raw("No instances yet."),
            Line::raw("Install one with `launch-tui install APP` (press q to leave)."),
        ])
        .block(block);
        f.render_widget(p, table_area);
        return;
    }
    // Narrow terminals (80 columns) leave the URL to the details pane.
    let wide = table_area.width >= 100;
    let mut head = vec!["NAME", "APP", "VERSION", "CT"];
    if wide {
        head.push("URL");
    }
    head.extend(["HEALTH", "BACKUP", "OPERATION"]);
    let header = TableRow::new(head).style(t.title());
    let rows: Vec<TableRow> = visible
        .iter()
        .map(|r| {
            let version = match &r.update {
                Some(to) => Line::from(vec![
                    Span::raw(r.version.clone()),
                    Span::styled(format!(" ↑{to}"), t.warn()),
                ]),
                None => Line::raw(r.version.clone()),
            };
            let mut cells = vec![
                Cell::from(r.name.clone()),
                Cell::from(r.app.clone()),
                Cell::from(version),
                Cell::from(format!("{}@{}", r.vmid, r.node)),
            ];
            if wide {
                cells.push(Cell::from(r.url.clone()));
            }
            cells.extend([
                Cell::from(health_cell(r, t)),
                Cell::from(r.backup_age.clone()),
                Cell::from(operation_cell(app, r)),
            ]);
            TableRow::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(if wide { 14 } else { 11 }),
        Constraint::Length(9),
        Constraint::Length(14),
        Constraint::Length(8),
    ];
    if wide {
        widths.push(Constraint::Min(10));
    }
    widths.extend([
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(12),
    ]);
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(app.selected));
    f.render_stateful_widget(table, table_area, &mut state);
    if let Some(r) = app.selected_row() {
        details(f, detail_area, app, r, t, false);
    } else {
        f.render_widget(
            Paragraph::new(format!("nothing matches /{}", app.filter))
                .block(Block::default().borders(Borders::ALL)),
            detail_area,
        );
    }
}

fn check_lines<'a>(r: &Row, t: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    // Each check as it returns; the line below says the others are still running.
    for c in r.known() {
        let (mark, style) = match c.status {
            CheckLevel::Ok => ("OK  ", t.ok()),
            CheckLevel::Warn => ("WARN", t.warn()),
            CheckLevel::Fail => ("FAIL", t.bad()),
        };
        lines.push(Line::from(vec![
            Span::styled(mark, style),
            Span::raw(format!(" {:<10} {}", c.id, c.message)),
        ]));
        if let Some(fix) = &c.fix {
            lines.push(Line::from(vec![
                Span::styled("     fix: ", t.dim()),
                Span::styled(fix.clone(), t.key()),
            ]));
        }
    }
    if r.checks.is_none() {
        lines.push(Line::styled("checks running…", t.dim()));
    }
    lines
}

fn details(f: &mut Frame, area: Rect, app: &App, r: &Row, t: &Theme, full: bool) {
    let mut lines = vec![Line::from(vec![
        Span::styled(r.name.clone(), t.title()),
        Span::raw(format!(
            "  {} {}  CT {} on {}  {}",
            r.app, r.version, r.vmid, r.node, r.url
        )),
    ])];
    if let Some(to) = &r.update {
        lines.push(Line::styled(
            format!("update available: {} → {to} (u)", r.version),
            t.warn(),
        ));
    }
    if let Some(h) = &r.lock {
        lines.push(Line::styled(
            format!(
                "busy: `{}` by pid {} on {} since {}",
                h.operation, h.pid, h.host, h.since
            ),
            t.warn(),
        ));
    }
    lines.extend(check_lines(r, t));
    if full || !r.history.is_empty() {
        lines.push(Line::styled("last operations", t.title()));
        if r.history.is_empty() {
            lines.push(Line::styled("  none yet", t.dim()));
        }
        for h in &r.history {
            lines.push(Line::raw(format!(
                "  {:<20} {:<11} {}",
                h.when, h.operation, h.result
            )));
        }
    }
    let _ = app;
    let p = Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", r.name)),
        )
        .wrap(Wrap { trim: false });
    f.render_widget(p, area);
}

fn step_mark(s: StepState, t: &Theme) -> Span<'static> {
    match s {
        StepState::Pending => Span::styled("·", t.dim()),
        StepState::Running => Span::styled("▸", t.key()),
        StepState::Done => Span::styled("✓", t.ok()),
        StepState::Failed => Span::styled("✗", t.bad()),
        StepState::Undone => Span::styled("↺", t.warn()),
        StepState::UndoFailed => Span::styled("!", t.bad()),
    }
}

fn operation(f: &mut Frame, area: Rect, app: &App, op: &OpState, t: &Theme) {
    let elapsed = op
        .elapsed
        .unwrap_or_else(|| app.now.saturating_duration_since(op.started));
    let state = match &op.result {
        None if op.rolling_back => Span::styled("undoing", t.warn()),
        None if op.cancel_requested => Span::styled("cancelling", t.warn()),
        None => Span::styled("running", t.key()),
        Some(r) if r.ok => Span::styled("done", t.ok()),
        Some(_) if op.rolling_back => Span::styled("failed, undone", t.bad()),
        Some(_) => Span::styled("failed", t.bad()),
    };
    let steps_h = (op.steps.len() as u16 + 2).min(area.height / 2).max(3);
    let result_h = match &op.result {
        Some(r) => (r.figures.len() as u16 + r.error.iter().count() as u16 * 3 + 2)
            .min(area.height / 3)
            .max(4),
        None => 0,
    };
    let [head, gauge, steps_area, log_area, result_area] = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(steps_h),
            Constraint::Min(3),
            Constraint::Length(result_h),
        ])
        .areas(area);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{} {}", op.operation, op.instance), t.title()),
            Span::raw("  "),
            state,
            Span::raw(format!("  {}", human_elapsed(elapsed))),
        ])),
        head,
    );
    let (done, total) = op.progress();
    let ratio = if total == 0 {
        0.0
    } else {
        done as f64 / total as f64
    };
    let g = Gauge::default()
        .ratio(ratio)
        .label(format!(
            "{}% ({done}/{total} steps)",
            (ratio * 100.0).round()
        ))
        .gauge_style(if app.color {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default()
        });
    f.render_widget(g, gauge);
    let step_lines: Vec<Line> = op
        .steps
        .iter()
        .map(|s| {
            let mut l = vec![step_mark(s.state, t), Span::raw(format!(" {}", s.title))];
            if let Some(ms) = s.elapsed_ms {
                l.push(Span::styled(
                    format!("  {:.1}s", ms as f64 / 1000.0),
                    t.dim(),
                ));
            }
            Line::from(l)
        })
        .collect();
    // Keep the running step in view when the plan is longer than the box.
    let inner = steps_h.saturating_sub(2) as usize;
    let current = op
        .steps
        .iter()
        .rposition(|s| s.state != StepState::Pending)
        .unwrap_or(0);
    let skip = (current + 1).saturating_sub(inner);
    f.render_widget(
        Paragraph::new(step_lines)
            .scroll((skip as u16, 0))
            .block(Block::default().borders(Borders::ALL).title(" Steps ")),
        steps_area,
    );
    let rows = log_area.height.saturating_sub(2) as usize;
    let start = op.log.len().saturating_sub(rows);
    let log_lines: Vec<Line> = op
        .log
        .iter()
        .skip(start)
        .map(|(lvl, line)| match lvl {
            Level::Warn => Line::styled(format!("warning: {line}"), t.warn()),
            Level::Debug => Line::styled(line.clone(), t.dim()),
            Level::Info => Line::raw(line.clone()),
        })
        .collect();
    f.render_widget(
        Paragraph::new(log_lines).block(Block::default().borders(Borders::ALL).title(format!(
            " Log{} ",
            if op.warnings.is_empty() {
                String::new()
            } else {
                format!(" ({} warnings)", op.warnings.len())
            }
        ))),
        log_area,
    );
    if let Some(r) = &op.result {
        let mut lines = Vec::new();
        if let Some(e) = &r.error {
            lines.push(Line::styled(e.clone(), t.bad()));
        }
        for (k, v) in &r.figures {
            lines.push(Line::raw(format!("{k:<14} {v}")));
        }
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::default().borders(Borders::ALL).title(" Result ")),
            result_area,
        );
    }
}

fn install_form(f: &mut Frame, area: Rect, form: &InstallForm, t: &Theme) {
    let title = format!(
        " Install {} — {} settings ",
        form.profile.name,
        match form.mode {
            Mode::Default => "Default",
            Mode::Advanced => "Advanced",
        }
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, t.title()));
    if let Some(summary) = &form.summary {
        let mut lines: Vec<Line> = summary.lines().map(|l| Line::raw(l.to_string())).collect();
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::raw("Create the container with these settings?  "),
            Span::styled("y", t.key()),
            Span::raw(" install   "),
            Span::styled("any other key", t.key()),
            Span::raw(" back to the form"),
        ]));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        );
        return;
    }
    let mut lines = vec![match &form.facts {
        None => Line::styled("reading the node (free IDs, storages)…", t.dim()),
        Some(Err(e)) => Line::styled(format!("cannot read the node: {e}"), t.bad()),
        Some(Ok(facts)) => Line::styled(
            format!(
                "node {}: next free CT ID {}, {} MiB RAM free",
                facts.node, facts.next_id, facts.free_memory_mib
            ),
            t.dim(),
        ),
    }];
    lines.push(Line::raw(""));
    let label_w = form
        .fields
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(10)
        .min(28);
    let mut focus_line = 0;
    for (i, field) in form.fields.iter().enumerate() {
        let focused = i == form.focus;
        if focused {
            focus_line = lines.len();
        }
        let value = if field.secret {
            "•".repeat(field.value.chars().count())
        } else {
            field.value.clone()
        };
        let label: String = field.label.chars().take(label_w).collect();
        let mut spans = vec![
            Span::styled(
                format!("{}{label:<label_w$} ", if focused { "> " } else { "  " }),
                if focused { t.title() } else { Style::default() },
            ),
            Span::styled(
                value,
                if focused {
                    t.selected()
                } else {
                    Style::default()
                },
            ),
        ];
        if focused {
            spans.push(Span::raw("▏"));
        }
        lines.push(Line::from(spans));
        if let Some(e) = form.errors.get(&field.key) {
            lines.push(Line::styled(format!("    ✗ {e}"), t.bad()));
        } else if focused {
            if let Some(h) = &field.help {
                lines.push(Line::styled(format!("    {h}"), t.dim()));
            }
        }
    }
    for e in &form.other_errors {
        lines.push(Line::styled(format!("✗ {e}"), t.bad()));
    }
    // Keep the focused field in view on a small terminal.
    let rows = area.height.saturating_sub(2) as usize;
    let scroll = (focus_line + 3).saturating_sub(rows);
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .block(block),
        area,
    );
}

fn logs(f: &mut Frame, area: Rect, app: &App, t: &Theme) {
    let v = &app.logs;
    let rows = area.height.saturating_sub(2) as usize;
    let end = v.lines.len().saturating_sub(v.scroll);
    let start = end.saturating_sub(rows);
    let lines: Vec<Line> = v.lines[start..end]
        .iter()
        .map(|l| Line::raw(l.clone()))
        .collect();
    let title = format!(
        " {}{} ",
        v.title,
        if v.follow { " (following)" } else { "" }
    );
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(title, t.title())),
        ),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

const HELP: &[(&str, &str)] = &[
    ("↑ ↓ j k", "move between instances"),
    ("Enter", "details: every check with its fix"),
    ("i", "install an app (a form, checked as you type)"),
    ("u", "update: the versions, --check, then choose"),
    ("r", "roll back to the previous release"),
    ("b", "take a verified backup"),
    (
        "B",
        "backups: verify one, restore, restore to a new instance",
    ),
    ("c", "reconfigure: the settings as a form, drift shown"),
    ("x", "uninstall (type the name to confirm)"),
    ("l", "operation logs (f: follow)"),
    ("o", "the operation screen of the instance"),
    ("s", "check every instance again"),
    ("/", "filter by name, app, version, node, URL"),
    ("Esc", "back; on a running operation: cancel, undo"),
    ("?", "this help"),
    ("q", "quit"),
];

fn dialog(f: &mut Frame, app: &App, d: &Dialog, t: &Theme) {
    let area = f.area();
    let width = area.width.saturating_sub(8).min(70);
    let (title, lines): (String, Vec<Line>) = match d {
        Dialog::Help => (
            " Help ".into(),
            HELP.iter()
                .filter(|(k, _)| !(app.read_only && ["i", "u", "r", "b", "c", "x"].contains(k)))
                .map(|(k, what)| {
                    Line::from(vec![
                        Span::styled(format!("{k:<9}"), t.key()),
                        Span::raw(*what),
                    ])
                })
                .collect(),
        ),
        Dialog::Notice(text) => (" Note ".into(), vec![Line::raw(text.clone())]),
        Dialog::ChooseProfile { names, selected } => (
            " Install which app? ".into(),
            names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    if i == *selected {
                        Line::styled(format!("> {n}"), t.selected())
                    } else {
                        Line::raw(format!("  {n}"))
                    }
                })
                .collect(),
        ),
        Dialog::Confirm { question, .. } => (
            " Confirm ".into(),
            vec![
                Line::raw(question.clone()),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", t.key()),
                    Span::raw(" yes   "),
                    Span::styled("any other key", t.key()),
                    Span::raw(" no"),
                ]),
            ],
        ),
        Dialog::ConfirmRun { question, .. } => (
            " Confirm ".into(),
            vec![
                Line::raw(question.clone()),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", t.key()),
                    Span::raw(" yes   "),
                    Span::styled("any other key", t.key()),
                    Span::raw(" no"),
                ]),
            ],
        ),
        Dialog::NewName {
            instance,
            archive,
            typed,
            error,
        } => {
            let file = archive.rsplit('/').next().unwrap_or(archive);
            let mut lines = vec![
                Line::raw(format!(
                    "Restore {file} of {instance} into a new instance (a new container); {instance} stays as it is."
                )),
                Line::raw("Name of the new instance:"),
                Line::from(vec![Span::raw("> "), Span::raw(typed.clone()), Span::raw("▏")]),
            ];
            if let Some(e) = error {
                lines.push(Line::styled(format!("✗ {e}"), t.bad()));
            }
            (" Restore to a new instance ".into(), lines)
        }
        Dialog::Cancel { instance } => (
            " Cancel? ".into(),
            vec![
                Line::raw(format!(
                    "Cancel the operation on {instance}? It stops after the current step and everything it changed is undone."
                )),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", t.key()),
                    Span::raw(" cancel it   "),
                    Span::styled("any other key", t.key()),
                    Span::raw(" keep going"),
                ]),
            ],
        ),
        Dialog::TypeName {
            instance,
            typed,
            keep_data,
        } => {
            let wrong = !typed.is_empty() && !instance.starts_with(typed.as_str());
            (
                " Uninstall ".into(),
                vec![
                    Line::styled(
                        format!("This destroys the container of `{instance}` and everything in it."),
                        t.bad(),
                    ),
                    Line::raw(format!("Type `{instance}` to confirm:")),
                    Line::from(vec![
                        Span::raw("> "),
                        Span::styled(
                            typed.clone(),
                            if wrong { t.bad() } else { Style::default() },
                        ),
                        Span::raw("▏"),
                    ]),
                    Line::raw(format!(
                        "[{}] keep data: take a final backup first (Tab)",
                        if *keep_data { "x" } else { " " }
                    )),
                ],
            )
        }
    };
    let h = match d {
        Dialog::Help => lines.len() as u16 + 2,
        _ => {
            let inner = width.saturating_sub(2).max(1) as usize;
            let wrapped: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
            wrapped as u16 + 2
        }
    };
    let r = centered(area, width, h);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        r,
    );
}

fn update_screen(f: &mut Frame, area: Rect, u: &UpdateView, t: &Theme) {
    let mut lines = vec![Line::from(vec![
        Span::styled(u.instance.clone(), t.title()),
        Span::raw(format!("  runs {}", u.current)),
    ])];
    match &u.check {
        None => lines.push(Line::styled("checking (update --check)…", t.dim())),
        Some(Err(e)) => lines.push(Line::styled(format!("update --check: {e}"), t.bad())),
        Some(Ok(_)) => lines.extend(u.check_lines().into_iter().map(Line::raw)),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Available versions", t.title()));
    match &u.versions {
        None => lines.push(Line::styled("reading the profile…", t.dim())),
        Some(Err(e)) => lines.push(Line::styled(
            format!("cannot read the profile: {e}"),
            t.bad(),
        )),
        Some(Ok(list)) => {
            let key = |v: &str| crate::update::version_key(v);
            for (i, c) in list.iter().enumerate() {
                let mut notes = Vec::new();
                if c.version == u.current {
                    notes.push("current".to_string());
                } else if key(&c.version) < key(&u.current) {
                    notes.push("older".to_string());
                }
                if c.unstable {
                    notes.push("unstable".to_string());
                }
                if let Some(commit) = &c.commit {
                    notes.push(format!(
                        "commit {}",
                        commit.chars().take(10).collect::<String>()
                    ));
                }
                if !c.requires.is_empty() {
                    notes.push(format!("needs {}", c.requires.join(", ")));
                }
                let text = format!(
                    "{}{:<14} {}",
                    if i == u.selected { "> " } else { "  " },
                    c.version,
                    notes.join(", ")
                );
                lines.push(if i == u.selected {
                    Line::styled(text, t.selected())
                } else {
                    Line::raw(text)
                });
            }
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "The update runs blue-green: a safety backup first, the new release beside the old one, writes held for the switch, undone if anything fails.",
        t.dim(),
    ));
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" Update {} ", u.instance), t.title())),
        ),
        area,
    );
}

/// The fields of a form with their inline errors; returns the line of the focused field.
fn field_lines<'a>(
    fields: &[Field],
    focus: usize,
    errors: &std::collections::BTreeMap<String, String>,
    changed: &dyn Fn(&Field) -> bool,
    lines: &mut Vec<Line<'a>>,
    t: &Theme,
) -> usize {
    let label_w = fields
        .iter()
        .map(|f| f.label.chars().count())
        .max()
        .unwrap_or(10)
        .min(28);
    let mut focus_line = 0;
    for (i, field) in fields.iter().enumerate() {
        let focused = i == focus;
        if focused {
            focus_line = lines.len();
        }
        let label: String = field.label.chars().take(label_w).collect();
        let mark = if changed(field) { "*" } else { " " };
        let mut spans = vec![
            Span::styled(
                format!(
                    "{}{mark}{label:<label_w$} ",
                    if focused { ">" } else { " " }
                ),
                if focused { t.title() } else { Style::default() },
            ),
            Span::styled(
                field.value.clone(),
                if focused {
                    t.selected()
                } else {
                    Style::default()
                },
            ),
        ];
        if focused {
            spans.push(Span::raw("▏"));
        }
        lines.push(Line::from(spans));
        if let Some(e) = errors.get(&field.key) {
            lines.push(Line::styled(format!("    ✗ {e}"), t.bad()));
        } else if focused {
            if let Some(h) = &field.help {
                lines.push(Line::styled(format!("    {h}"), t.dim()));
            }
        }
    }
    focus_line
}

fn reconfigure_form(f: &mut Frame, area: Rect, form: &ReconfigureForm, t: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(
            " Reconfigure {} ({} {}, CT {}) ",
            form.instance.name,
            form.profile.name,
            form.instance.app_version,
            form.instance.container.vmid
        ),
        t.title(),
    ));
    if let Some(summary) = &form.summary {
        let mut lines = vec![Line::styled("These changes will be made:", t.title())];
        lines.extend(summary.iter().map(|l| Line::raw(format!("  {l}"))));
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "The files are rendered again and checked (nginx -t), the app restarts with a health check; anything failing puts the previous settings back.",
        ));
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::raw("Apply them?  "),
            Span::styled("y", t.key()),
            Span::raw(" apply   "),
            Span::styled("any other key", t.key()),
            Span::raw(" back to the form"),
        ]));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        );
        return;
    }
    let mut lines = Vec::new();
    match &form.drift {
        None => lines.push(Line::styled(
            "checking the container's files for drift…",
            t.dim(),
        )),
        Some(Err(e)) => lines.push(Line::styled(format!("drift: cannot check: {e}"), t.warn())),
        Some(Ok(d)) if d.is_empty() => lines.push(Line::styled(
            "no drift: the container's files are what the record renders",
            t.ok(),
        )),
        Some(Ok(d)) => {
            for d in d {
                lines.push(Line::styled(
                    format!("drift: {d}; reconfigure writes the record's version"),
                    t.warn(),
                ));
            }
        }
    }
    lines.push(Line::raw(""));
    let changed = |fl: &Field| {
        let v = fl.value.trim();
        !v.is_empty() && form.original.get(&fl.key).map(|o| o.trim()) != Some(v)
    };
    let focus_line = field_lines(
        &form.fields,
        form.focus,
        &form.errors,
        &changed,
        &mut lines,
        t,
    );
    for e in &form.other_errors {
        lines.push(Line::styled(format!("✗ {e}"), t.bad()));
    }
    let n = form.changes().len();
    lines.push(Line::styled(
        format!(
            "{n} change{} (*); your own certificate and a database move: `launch-tui reconfigure {} --set ...`",
            if n == 1 { "" } else { "s" },
            form.instance.name
        ),
        t.dim(),
    ));
    let rows = area.height.saturating_sub(2) as usize;
    let scroll = (focus_line + 3).saturating_sub(rows);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll as u16, 0))
            .block(block),
        area,
    );
}

fn backups_screen(f: &mut Frame, area: Rect, app: &App, b: &BackupsView, t: &Theme) {
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" Backups of {} ", b.instance),
        t.title(),
    ));
    let entries = match &b.list {
        None => {
            f.render_widget(
                Paragraph::new(Line::styled("reading the backups…", t.dim())).block(block),
                area,
            );
            return;
        }
        Some(Err(e)) => {
            f.render_widget(
                Paragraph::new(Line::styled(
                    format!("cannot list the backups: {e}"),
                    t.bad(),
                ))
                .wrap(Wrap { trim: false })
                .block(block),
                area,
            );
            return;
        }
        Some(Ok(v)) if v.is_empty() => {
            f.render_widget(
                Paragraph::new(vec![
                    Line::raw(format!("No backups of {} yet.", b.instance)),
                    Line::raw(if app.read_only {
                        "Take one with `launch-tui backup NAME`.".to_string()
                    } else {
                        "Take one from the dashboard with b.".to_string()
                    }),
                ])
                .block(block),
                area,
            );
            return;
        }
        Some(Ok(v)) => v,
    };
    let [table_area, info_area] = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(
                (entries.len() as u16 + 3).min(area.height.saturating_sub(6).max(4)),
            ),
            Constraint::Min(0),
        ])
        .areas(area);
    let wide = area.width >= 100;
    let mut head = vec!["CREATED (UTC)", "VERSION", "SIZE", "STATE"];
    if wide {
        head.push("REASON");
    }
    let rows: Vec<TableRow> = entries
        .iter()
        .map(|e| {
            let state = if e.verified() {
                Span::styled(format!("✓ {}", e.state), t.ok())
            } else {
                Span::styled(format!("✗ {}", e.state), t.warn())
            };
            let mut cells = vec![
                Cell::from(e.created.clone()),
                Cell::from(e.version.clone()),
                Cell::from(format!("{:.1} MiB", e.size as f64 / (1 << 20) as f64)),
                Cell::from(state),
            ];
            if wide {
                cells.push(Cell::from(e.reason.clone()));
            }
            TableRow::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(19),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Min(20),
    ];
    if wide {
        widths.push(Constraint::Length(24));
    }
    let table = Table::new(rows, widths)
        .header(TableRow::new(head).style(t.title()))
        .block(block)
        .row_highlight_style(t.selected());
    let mut state = TableState::default().with_selected(Some(b.selected));
    f.render_stateful_widget(table, table_area, &mut state);
    if let Some(e) = b.chosen() {
        let mut lines = vec![
            Line::raw(e.archive.clone()),
            Line::raw(format!("taken by: {}", e.reason)),
        ];
        if !e.verified() {
            lines.push(Line::styled(
                "not verified as it is now: v checks every entry's hash and size before you restore from it",
                t.warn(),
            ));
        }
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::default().borders(Borders::ALL).title(" Archive ")),
            info_area,
        );
    }
}
