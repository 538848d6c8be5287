//! The one engine every operation runs on. An operation is a `Plan` of named steps; the engine
//! runs them in order on a worker thread and emits `Event`s on a channel. When a step fails,
//! the steps already done are undone in reverse. Renderers (plain progress, `--json`, the TUI)
//! only consume events: no step prints or prompts by itself.

pub mod check;
pub mod render;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What happened, in the order it happened. Serialized as one JSON object per line by `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    PlanStarted {
        operation: String,
        target: Option<String>,
        steps: Vec<StepInfo>,
    },
    StepStarted {
        index: usize,
        name: String,
        title: String,
    },
    Progress {
        index: usize,
        done: u64,
        total: Option<u64>,
        message: Option<String>,
    },
    Log {
        index: Option<usize>,
        level: Level,
        line: String,
    },
    StepDone {
        index: usize,
        name: String,
        elapsed_ms: u64,
    },
    StepFailed {
        index: usize,
        name: String,
        error: String,
    },
    RollingBack {
        reason: String,
    },
    UndoStep {
        index: usize,
        name: String,
        ok: bool,
        error: Option<String>,
    },
    /// One check's result (status), sent as soon as that check returns; `target` is the
    /// instance it is about. The report at the end holds every check again, in a fixed order.
    Check {
        index: usize,
        target: String,
        check: check::Check,
    },
    /// A question for the person running the operation (a confirmation, "keep the container
    /// for debugging?"): the step waits for the reply on `RunHandle::answers`. Runs nobody can
    /// answer (`execute`, no terminal) never send it: the step gets `None` and takes its default.
    Question {
        index: Option<usize>,
        key: String,
        prompt: String,
        default: Option<String>,
    },
    /// The last event. `report` is the operation's typed report, serialized (what `--json`
    /// prints), for plans that make one; the typed value comes back from `join`.
    Finished {
        ok: bool,
        elapsed_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<serde_json::Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub name: String,
    pub title: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
}

/// Where a run's replies to its questions arrive (shared by the run's reporters).
type Answers = Arc<std::sync::Mutex<Receiver<String>>>;

/// Handed to a running step so it can report progress and log lines, and ask.
#[derive(Clone)]
pub struct Reporter {
    tx: Sender<Event>,
    index: Option<usize>,
    answers: Option<Answers>,
    cancel: CancelToken,
}

impl Reporter {
    /// A reporter whose events go nowhere, for calling step code outside a plan.
    pub fn discard() -> Reporter {
        let (tx, _rx) = mpsc::channel();
        Reporter {
            tx,
            index: None,
            answers: None,
            cancel: CancelToken::new(),
        }
    }

    /// Asks the person running the operation, as an `Event::Question`, and waits for the
    /// reply. `None` when nobody can answer (the run has no answer channel, the front end went
    /// away, or the run was cancelled meanwhile): the step then takes its default or refuses.
    pub fn ask(&self, key: &str, prompt: &str, default: Option<&str>) -> Option<String> {
        let answers = self.answers.as_ref()?;
        let _ = self.tx.send(Event::Question {
            index: self.index,
            key: key.to_string(),
            prompt: prompt.to_string(),
            default: default.map(str::to_string),
        });
        let rx = answers.lock().ok()?;
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(a) => return Some(a),
                Err(mpsc::RecvTimeoutError::Timeout) if !self.cancel.is_cancelled() => {}
                Err(_) => return None,
            }
        }
    }

    pub fn info(&self, line: impl Into<String>) {
        self.log(Level::Info, line);
    }

    pub fn warn(&self, line: impl Into<String>) {
        self.log(Level::Warn, line);
    }

    pub fn debug(&self, line: impl Into<String>) {
        self.log(Level::Debug, line);
    }

    pub fn log(&self, level: Level, line: impl Into<String>) {
        let _ = self.tx.send(Event::Log {
            index: self.index,
            level,
            line: line.into(),
        });
    }

    /// A check's result, the moment it is known.
    pub fn check(&self, target: &str, check: &check::Check) {
        let _ = self.tx.send(Event::Check {
            index: self.index.unwrap_or(0),
            target: target.to_string(),
            check: check.clone(),
        });
    }

    pub fn progress(&self, done: u64, total: Option<u64>, message: Option<String>) {
        if let Some(index) = self.index {
            let _ = self.tx.send(Event::Progress {
                index,
                done,
                total,
                message,
            });
        }
    }
}

/// One named step of an operation, acting on the operation's context `C`.
pub trait Step<C>: Send {
    /// Stable, machine-readable name (`create-container`), used in logs, journals and test hooks.
    fn name(&self) -> &str;
    /// What the user reads (`Creating container 105`).
    fn title(&self) -> String;
    fn run(&mut self, ctx: &mut C, rep: &Reporter) -> anyhow::Result<()>;
    /// Reverts what `run` did; called in reverse order for completed steps when a later step
    /// fails. The default does nothing (for steps that change nothing outside `ctx`).
    fn undo(&mut self, _ctx: &mut C, _rep: &Reporter) -> anyhow::Result<()> {
        Ok(())
    }
}

/// A step made from closures, for steps that need no state of their own.
pub struct FnStep<C> {
    name: String,
    title: String,
    #[allow(clippy::type_complexity)]
    run: Box<dyn FnMut(&mut C, &Reporter) -> anyhow::Result<()> + Send>,
    #[allow(clippy::type_complexity)]
    undo: Option<Box<dyn FnMut(&mut C, &Reporter) -> anyhow::Result<()> + Send>>,
}

impl<C> FnStep<C> {
    pub fn new(
        name: impl Into<String>,
        title: impl Into<String>,
        run: impl FnMut(&mut C, &Reporter) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        FnStep {
            name: name.into(),
            title: title.into(),
            run: Box::new(run),
            undo: None,
        }
    }

    pub fn with_undo(
        mut self,
        undo: impl FnMut(&mut C, &Reporter) -> anyhow::Result<()> + Send + 'static,
    ) -> Self {
        self.undo = Some(Box::new(undo));
        self
    }
}

impl<C> Step<C> for FnStep<C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn title(&self) -> String {
        self.title.clone()
    }
    fn run(&mut self, ctx: &mut C, rep: &Reporter) -> anyhow::Result<()> {
        (self.run)(ctx, rep)
    }
    fn undo(&mut self, ctx: &mut C, rep: &Reporter) -> anyhow::Result<()> {
        match &mut self.undo {
            Some(u) => u(ctx, rep),
            None => Ok(()),
        }
    }
}

/// Turns a plan's context into its report once every step is done (the `Finished` event's).
pub type ReportFn<C> = Box<dyn Fn(&C) -> Option<serde_json::Value> + Send>;

/// An operation: a name, what it acts on, and its steps in order.
pub struct Plan<C> {
    pub operation: String,
    pub target: Option<String>,
    pub steps: Vec<Box<dyn Step<C>>>,
    pub report: Option<ReportFn<C>>,
}

impl<C> Plan<C> {
    pub fn new(operation: impl Into<String>, target: Option<String>) -> Self {
        Plan {
            operation: operation.into(),
            target,
            steps: Vec::new(),
            report: None,
        }
    }

    /// The report `Finished` carries when every step succeeded.
    pub fn with_report(
        mut self,
        report: impl Fn(&C) -> Option<serde_json::Value> + Send + 'static,
    ) -> Self {
        self.report = Some(Box::new(report));
        self
    }

    pub fn step(mut self, s: impl Step<C> + 'static) -> Self {
        self.steps.push(Box::new(s));
        self
    }
}

/// Why a plan stopped.
#[derive(Debug)]
pub struct StepError {
    pub step: String,
    pub title: String,
    pub error: anyhow::Error,
    /// Steps whose undo failed: what may be left behind.
    pub undo_failures: Vec<(String, String)>,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "step `{}` ({}) failed: {:#}",
            self.step, self.title, self.error
        )?;
        for (step, err) in &self.undo_failures {
            write!(f, "\n  undoing `{step}` also failed: {err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StepError {}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    // Only an atomic store: the one thing a signal handler may safely do here.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes Ctrl+C (SIGINT) and SIGTERM stop a running plan between steps and undo what was done,
/// instead of killing the process half-way. The step running at that moment sees its child
/// processes interrupted too and fails, which starts the same undo.
pub fn handle_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Test hook for crash safety: `LAUNCH_TEST_KILL_AFTER=STEP` kills this process with SIGKILL
/// right after that step's work, before anything else is recorded: a power cut at the worst
/// moment. The end-to-end tests use it to prove the next command finishes or undoes the work.
fn kill_hook(step: &str) {
    if std::env::var("LAUNCH_TEST_KILL_AFTER").is_ok_and(|s| s == step) {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Runs a plan on the calling thread, sending events to `tx`. `keep_on_failure` skips the undo
/// of completed steps (the user asked to keep a failed install for debugging).
pub fn run_plan<C>(
    plan: &mut Plan<C>,
    ctx: &mut C,
    tx: &Sender<Event>,
    keep_on_failure: bool,
) -> Result<(), StepError> {
    run_plan_cancellable(plan, ctx, tx, keep_on_failure, &CancelToken::new())
}

/// Asks one run to stop: checked between steps, like Ctrl+C, and the steps done are undone.
/// One token per run, so cancelling one operation leaves the others (and the process) alone.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Test hook: `LAUNCH_TEST_PANIC_IN=STEP` panics inside that step, to prove a panic still
/// undoes the steps done before it (and a terminal front end still restores the terminal).
fn panic_hook(step: &str) {
    if std::env::var("LAUNCH_TEST_PANIC_IN").is_ok_and(|s| s == step) {
        panic!("test hook: LAUNCH_TEST_PANIC_IN={step}");
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// `run_plan` that also stops when `cancel` is set. A step that panics counts as a failed
/// step: the steps done before it are undone all the same.
pub fn run_plan_cancellable<C>(
    plan: &mut Plan<C>,
    ctx: &mut C,
    tx: &Sender<Event>,
    keep_on_failure: bool,
    cancel: &CancelToken,
) -> Result<(), StepError> {
    run_plan_answered(plan, ctx, tx, keep_on_failure, cancel, None)
}

/// `run_plan_cancellable` whose steps can ask: replies arrive on `answers`.
fn run_plan_answered<C>(
    plan: &mut Plan<C>,
    ctx: &mut C,
    tx: &Sender<Event>,
    keep_on_failure: bool,
    cancel: &CancelToken,
    answers: Option<Answers>,
) -> Result<(), StepError> {
    let started = Instant::now();
    let send = |e: Event| {
        let _ = tx.send(e);
    };
    send(Event::PlanStarted {
        operation: plan.operation.clone(),
        target: plan.target.clone(),
        steps: plan
            .steps
            .iter()
            .map(|s| StepInfo {
                name: s.name().to_string(),
                title: s.title(),
            })
            .collect(),
    });
    let mut failure = None;
    let mut done = 0;
    for (index, step) in plan.steps.iter_mut().enumerate() {
        let name = step.name().to_string();
        if interrupted() || cancel.is_cancelled() {
            let why = if cancel.is_cancelled() {
                "cancelled"
            } else {
                "interrupted (Ctrl+C)"
            };
            send(Event::StepFailed {
                index,
                name: name.clone(),
                error: why.into(),
            });
            failure = Some(StepError {
                step: name,
                title: step.title(),
                error: anyhow::anyhow!("{why} before this step"),
                undo_failures: Vec::new(),
            });
            break;
        }
        send(Event::StepStarted {
            index,
            name: name.clone(),
            title: step.title(),
        });
        let rep = Reporter {
            tx: tx.clone(),
            index: Some(index),
            answers: answers.clone(),
            cancel: cancel.clone(),
        };
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            panic_hook(&name);
            step.run(ctx, &rep)
        }))
        .unwrap_or_else(|p| {
            Err(anyhow::anyhow!(
                "internal error (panic): {}",
                panic_text(&*p)
            ))
        });
        match result {
            Ok(()) => {
                kill_hook(&name);
                send(Event::StepDone {
                    index,
                    name,
                    elapsed_ms: t.elapsed().as_millis() as u64,
                });
                done = index + 1;
            }
            Err(error) => {
                send(Event::StepFailed {
                    index,
                    name: name.clone(),
                    error: format!("{error:#}"),
                });
                failure = Some(StepError {
                    step: name,
                    title: step.title(),
                    error,
                    undo_failures: Vec::new(),
                });
                break;
            }
        }
    }
    if let Some(mut err) = failure {
        if !keep_on_failure {
            send(Event::RollingBack {
                reason: format!("step `{}` failed", err.step),
            });
            for index in (0..done).rev() {
                let step = &mut plan.steps[index];
                let rep = Reporter {
                    tx: tx.clone(),
                    index: Some(index),
                    answers: answers.clone(),
                    cancel: cancel.clone(),
                };
                let name = step.name().to_string();
                let result = catch_unwind(AssertUnwindSafe(|| step.undo(ctx, &rep)))
                    .unwrap_or_else(|p| {
                        Err(anyhow::anyhow!(
                            "internal error (panic): {}",
                            panic_text(&*p)
                        ))
                    });
                send(Event::UndoStep {
                    index,
                    name: name.clone(),
                    ok: result.is_ok(),
                    error: result.as_ref().err().map(|e| format!("{e:#}")),
                });
                if let Err(e) = result {
                    err.undo_failures.push((name, format!("{e:#}")));
                }
            }
        }
        send(Event::Finished {
            ok: false,
            elapsed_ms: started.elapsed().as_millis() as u64,
            report: None,
        });
        return Err(err);
    }
    let report = plan.report.as_ref().and_then(|r| r(ctx));
    send(Event::Finished {
        ok: true,
        elapsed_ms: started.elapsed().as_millis() as u64,
        report,
    });
    Ok(())
}

/// A plan running on its own thread: its events, its cancel token, where replies to its
/// questions go, and its end (the context back, with the result).
pub struct RunHandle<C> {
    pub events: Receiver<Event>,
    pub cancel: CancelToken,
    /// One reply per `Event::Question`, in order.
    pub answers: Sender<String>,
    pub join: JoinHandle<(C, Result<(), StepError>)>,
}

/// Starts `plan` on a worker thread and returns at once; the caller reads `events` (the last
/// one is `Finished`) and may `cancel` the run at any time.
pub fn spawn<C: Send + 'static>(
    mut plan: Plan<C>,
    mut ctx: C,
    keep_on_failure: bool,
) -> RunHandle<C> {
    let (tx, events) = mpsc::channel();
    let (answers, replies) = mpsc::channel();
    let replies = Arc::new(std::sync::Mutex::new(replies));
    let cancel = CancelToken::new();
    let token = cancel.clone();
    let join = std::thread::spawn(move || {
        let r = run_plan_answered(
            &mut plan,
            &mut ctx,
            &tx,
            keep_on_failure,
            &token,
            Some(replies),
        );
        (ctx, r)
    });
    RunHandle {
        events,
        cancel,
        answers,
        join,
    }
}

/// Something that shows events to a person or a program.
pub trait Renderer {
    fn event(&mut self, e: &Event);
    /// Called once after the last event.
    fn finish(&mut self) {}
}

/// Runs `plan` on a worker thread while `renderers` consume its events on this thread.
pub fn execute<C: Send>(
    mut plan: Plan<C>,
    ctx: &mut C,
    renderers: &mut [&mut dyn Renderer],
    keep_on_failure: bool,
) -> Result<(), StepError> {
    let (tx, rx): (Sender<Event>, Receiver<Event>) = mpsc::channel();
    std::thread::scope(|s| {
        let worker = s.spawn(move || run_plan(&mut plan, ctx, &tx, keep_on_failure));
        for e in rx.iter() {
            for r in renderers.iter_mut() {
                r.event(&e);
            }
        }
        for r in renderers.iter_mut() {
            r.finish();
        }
        match worker.join() {
            Ok(result) => result,
            Err(_) => Err(StepError {
                step: "engine".into(),
                title: "engine".into(),
                error: anyhow::anyhow!("an internal error stopped the operation"),
                undo_failures: Vec::new(),
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<Event>);
    impl Renderer for Collect {
        fn event(&mut self, e: &Event) {
            self.0.push(e.clone());
        }
    }

    fn names(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::PlanStarted { .. } => "plan".into(),
                Event::StepStarted { name, .. } => format!("start:{name}"),
                Event::StepDone { name, .. } => format!("done:{name}"),
                Event::StepFailed { name, .. } => format!("failed:{name}"),
                Event::RollingBack { .. } => "rollback".into(),
                Event::UndoStep { name, .. } => format!("undo:{name}"),
                Event::Finished { ok, .. } => format!("finished:{ok}"),
                Event::Log { line, .. } => format!("log:{line}"),
                Event::Progress { .. } => "progress".into(),
                Event::Check { target, check, .. } => format!("check:{target}:{}", check.id),
                Event::Question { key, .. } => format!("question:{key}"),
            })
            .collect()
    }

    fn plan() -> Plan<Vec<String>> {
        Plan::new("test", None)
            .step(
                FnStep::new("a", "A", |c: &mut Vec<String>, r| {
                    r.info("hello");
                    c.push("a".into());
                    Ok(())
                })
                .with_undo(|c, _| {
                    c.push("undo-a".into());
                    Ok(())
                }),
            )
            .step(FnStep::new("b", "B", |c: &mut Vec<String>, _| {
                if c.contains(&"fail".to_string()) {
                    anyhow::bail!("boom")
                }
                Ok(())
            }))
    }

    #[test]
    fn success_emits_ordered_events() {
        let mut ctx = vec![];
        let mut col = Collect(vec![]);
        execute(plan(), &mut ctx, &mut [&mut col], false).unwrap();
        assert_eq!(
            names(&col.0),
            [
                "plan",
                "start:a",
                "log:hello",
                "done:a",
                "start:b",
                "done:b",
                "finished:true"
            ]
        );
    }

    #[test]
    fn failure_undoes_completed_steps_in_reverse() {
        let mut ctx = vec!["fail".to_string()];
        let mut col = Collect(vec![]);
        let err = execute(plan(), &mut ctx, &mut [&mut col], false).unwrap_err();
        assert_eq!(err.step, "b");
        assert!(err.to_string().contains("boom"));
        assert_eq!(ctx.last().unwrap(), "undo-a");
        assert_eq!(
            names(&col.0)[5..],
            ["failed:b", "rollback", "undo:a", "finished:false"]
        );
    }

    #[test]
    fn a_panicking_step_is_undone_like_a_failed_one() {
        let plan = plan().step(FnStep::new("c", "C", |_: &mut Vec<String>, _| {
            panic!("step c exploded")
        }));
        let h = spawn(plan, vec![], false);
        let events: Vec<Event> = h.events.iter().collect();
        let (ctx, r) = h.join.join().unwrap();
        let err = r.unwrap_err();
        assert_eq!(err.step, "c");
        assert!(err.to_string().contains("step c exploded"), "{err}");
        assert_eq!(ctx.last().unwrap(), "undo-a");
        assert_eq!(
            names(&events)[7..],
            ["failed:c", "rollback", "undo:b", "undo:a", "finished:false"]
        );
    }

    #[test]
    fn the_cancel_token_stops_one_run_between_steps_and_undoes() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let plan = plan().step(FnStep::new(
            "wait",
            "Wait",
            move |_: &mut Vec<String>, _| {
                let _ = go_rx.lock().unwrap().recv();
                Ok(())
            },
        ));
        let plan = plan.step(FnStep::new("never", "Never", |c: &mut Vec<String>, _| {
            c.push("never".into());
            Ok(())
        }));
        let h = spawn(plan, vec![], false);
        // Cancel while `wait` runs: the next step must not start.
        for e in h.events.iter() {
            if matches!(&e, Event::StepStarted { name, .. } if name == "wait") {
                h.cancel.cancel();
                go_tx.send(()).unwrap();
                break;
            }
        }
        let rest: Vec<Event> = h.events.iter().collect();
        let (ctx, r) = h.join.join().unwrap();
        assert!(r.unwrap_err().to_string().contains("cancelled"));
        assert!(!ctx.contains(&"never".to_string()));
        assert_eq!(ctx.last().unwrap(), "undo-a");
        assert!(names(&rest).contains(&"failed:never".to_string()));
    }

    #[test]
    fn a_step_asks_as_an_event_and_gets_the_reply() {
        let plan = Plan::new("test", None).step(FnStep::new(
            "ask",
            "Ask",
            |c: &mut Vec<String>, r: &Reporter| {
                let keep = r.ask("keep", "Keep the container?", Some("no"));
                c.push(keep.unwrap_or_else(|| "nobody answered".into()));
                Ok(())
            },
        ));
        let h = spawn(plan, vec![], false);
        let mut seen = vec![];
        for e in h.events.iter() {
            if let Event::Question { key, default, .. } = &e {
                assert_eq!(default.as_deref(), Some("no"));
                h.answers.send(format!("yes to {key}")).unwrap();
            }
            seen.push(e);
        }
        let (ctx, r) = h.join.join().unwrap();
        r.unwrap();
        assert_eq!(ctx, ["yes to keep"]);
        assert_eq!(names(&seen)[..3], ["plan", "start:ask", "question:keep"]);
    }

    #[test]
    fn a_run_nobody_can_answer_asks_nothing_and_the_step_takes_its_default() {
        let plan = Plan::new("test", None).step(FnStep::new(
            "ask",
            "Ask",
            |c: &mut Vec<String>, r: &Reporter| {
                c.push(
                    r.ask("keep", "Keep?", None)
                        .unwrap_or_else(|| "default".into()),
                );
                Ok(())
            },
        ));
        let mut ctx = vec![];
        let mut col = Collect(vec![]);
        execute(plan, &mut ctx, &mut [&mut col], false).unwrap();
        assert_eq!(ctx, ["default"]);
        assert!(!names(&col.0).contains(&"question:keep".to_string()));
    }

    #[test]
    fn events_read_back_from_json() {
        let e = Event::StepDone {
            index: 2,
            name: "switch".into(),
            elapsed_ms: 7,
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }

    #[test]
    fn keep_on_failure_skips_undo() {
        let mut ctx = vec!["fail".to_string()];
        let mut col = Collect(vec![]);
        execute(plan(), &mut ctx, &mut [&mut col], true).unwrap_err();
        assert!(!ctx.contains(&"undo-a".to_string()));
    }
}
