//! `launch-load`: a bounded load loop for the update tests and benchmarks: against a
//! Vikunja-shaped app by default, or any app whose requests a `--scenario` file describes. Workers mix reads (`GET /api/v1/info`, reading back a task they created) and
//! writes (`PUT /api/v1/tasks`), until a stop file appears, a time limit or a request count.
//! It prints one JSON summary: requests sent, failed (by kind), held (503 with Retry-After on a
//! write: the documented write hold), the longest latency and the longest outage.
//!
//! By default every request opens its own connection. `--keep-alive` gives each worker one
//! persistent connection, as browsers and API clients keep: Debian 12's nginx closes idle
//! keep-alive connections of old workers at a reload, and a client that reuses one at that
//! instant sees a reset (nginx 1.27.4's `keepalive_min_timeout` is the fix); this mode counts
//! those transport errors apart from answers, by status class.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

mod scenario;
use scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "launch-load",
    about = "Bounded HTTP load for Launch's update tests"
)]
struct Args {
    /// The app's base URL through nginx, e.g. http://10.77.3.2
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Stop after this many seconds at the latest
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Stop after this many requests at the latest
    #[arg(long, default_value_t = 200_000)]
    max_requests: u64,
    /// Every Nth request of a worker is a write
    #[arg(long, default_value_t = 4)]
    write_every: u64,
    /// Pause between a worker's requests (ms)
    #[arg(long, default_value_t = 5)]
    pause_ms: u64,
    /// Per-request timeout (s)
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Stop when this file exists
    #[arg(long)]
    stop_file: Option<PathBuf>,
    /// One persistent (keep-alive) connection per worker instead of one per request
    #[arg(long)]
    keep_alive: bool,
    /// A write that takes longer than this (ms) counts as one that waited
    #[arg(long, default_value_t = 1000)]
    waited_ms: u64,
    /// Drive any app: its requests described in a JSON file (see scenario.rs); without it,
    /// Vikunja's API
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// With --scenario: number the workers from here (a second run's items differ from the
    /// first's)
    #[arg(long, default_value_t = 0)]
    first_worker: usize,
    /// With --scenario: at the end, write every acknowledged write's item (`WORKER N` a line)
    /// to this file
    #[arg(long)]
    written: Option<PathBuf>,
    /// With --scenario: no load; read back every item this file lists (from --written) with
    /// the scenario's `read_back` and report the ones missing (exit 1 if any)
    #[arg(long)]
    verify: Option<PathBuf>,
}

#[derive(Default, Serialize)]
struct Summary {
    sent: u64,
    ok: u64,
    failed: u64,
    held: u64,
    failures: BTreeMap<String, u64>,
    first_failures: Vec<String>,
    max_latency_ms: u64,
    longest_outage_ms: u64,
    duration_ms: u64,
    created_ids: Vec<i64>,
    keep_alive: bool,
    /// Answers by status class (`2xx`, `5xx`, ...) and `transport` for no answer at all.
    by_class: BTreeMap<String, u64>,
    transport_errors: u64,
    /// Writes answered 2xx after more than `--waited-ms`, and the longest write.
    writes_waited: u64,
    max_write_ms: u64,
}

struct Shared {
    summary: Mutex<Summary>,
    /// Acknowledged writes of --scenario workers: (worker, item).
    written: Mutex<Vec<(usize, u64)>>,
    outage_since: Mutex<Option<Instant>>,
    stop: AtomicBool,
}

impl Shared {
    fn record(&self, latency: Duration, result: Outcome, class: String, write: Option<u64>) {
        let now = Instant::now();
        let mut s = self.summary.lock().unwrap();
        s.sent += 1;
        if class == "transport" {
            s.transport_errors += 1;
        }
        *s.by_class.entry(class).or_default() += 1;
        let ms = latency.as_millis() as u64;
        if let Some(waited) = write {
            s.max_write_ms = s.max_write_ms.max(ms);
            if ms > waited && matches!(result, Outcome::Ok(_)) {
                s.writes_waited += 1;
            }
        }
        s.max_latency_ms = s.max_latency_ms.max(latency.as_millis() as u64);
        let mut outage = self.outage_since.lock().unwrap();
        match result {
            Outcome::Ok(id) => {
                s.ok += 1;
                if let Some(id) = id {
                    s.created_ids.push(id);
                }
                if let Some(since) = outage.take() {
                    let ms = now.duration_since(since).as_millis() as u64;
                    s.longest_outage_ms = s.longest_outage_ms.max(ms);
                }
            }
            Outcome::Held => s.held += 1,
            Outcome::Failed(kind, detail) => {
                s.failed += 1;
                *s.failures.entry(kind).or_default() += 1;
                if s.first_failures.len() < 10 {
                    s.first_failures.push(detail);
                }
                outage.get_or_insert(now - latency);
            }
        }
    }
}

enum Outcome {
    Ok(Option<i64>),
    Held,
    Failed(String, String),
}

fn classify_err(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

fn client(a: &Args) -> reqwest::Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(a.timeout))
        .pool_max_idle_per_host(if a.keep_alive { 1 } else { 0 })
        .no_proxy()
        .build()
}

/// One request of a scenario, with its outcome and status class.
fn scenario_request(
    http: &reqwest::blocking::Client,
    a: &Args,
    sc: &Scenario,
    auth: Option<&scenario::Credentials>,
    req: &scenario::Request,
    worker: usize,
    n: u64,
) -> (Outcome, String) {
    let path = req.path_for(worker, n);
    let what = format!("{} {path}", req.method);
    let sent = req
        .build(http, &a.url, auth, worker, n)
        .map_err(|e| e.to_string())
        .and_then(|r| r.send().map_err(|e| e.to_string()));
    let _ = sc;
    match sent {
        Ok(r) => {
            let status = r.status().as_u16();
            let class = format!("{}xx", status / 100);
            let held = status == 503 && r.headers().contains_key("retry-after");
            let _ = r.bytes();
            let outcome = if req.expect.contains(&status) {
                Outcome::Ok(None)
            } else if held && req.method != "GET" {
                Outcome::Held
            } else {
                Outcome::Failed(
                    format!("{} {status}", req.method),
                    format!("{what} answered {status}"),
                )
            };
            (outcome, class)
        }
        Err(e) => (
            Outcome::Failed(format!("{} transport", req.method), format!("{what}: {e}")),
            "transport".into(),
        ),
    }
}

/// A worker of `--scenario`: writes every `--write-every` requests, otherwise reads one of the
/// scenario's reads or reads back the last item it wrote.
fn scenario_worker(n: usize, a: &Args, sc: &Scenario, shared: &Shared, started: Instant) {
    let http = &match client(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("launch-load: cannot make an HTTP client: {e}");
            shared.stop.store(true, Ordering::SeqCst);
            return;
        }
    };
    let auth = match sc.credentials() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("launch-load: {e}");
            shared.stop.store(true, Ordering::SeqCst);
            return;
        }
    };
    for req in &sc.setup {
        let (outcome, _) = scenario_request(http, a, sc, auth.as_ref(), req, n, 0);
        if let Outcome::Failed(_, detail) = outcome {
            eprintln!("launch-load: setup: {detail}");
        }
    }
    let mut last_written: Option<u64> = None;
    let mut j: u64 = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        j += 1;
        let t = Instant::now();
        let is_write = j.is_multiple_of(a.write_every.max(1));
        let (req, item) = if is_write {
            (&sc.write, j)
        } else {
            match (&sc.read_back, last_written) {
                (Some(rb), Some(w)) if j % 2 == 1 => (rb, w),
                _ => (&sc.reads[(j as usize) % sc.reads.len()], j),
            }
        };
        let (outcome, class) = scenario_request(http, a, sc, auth.as_ref(), req, n, item);
        if is_write && matches!(outcome, Outcome::Ok(_)) {
            last_written = Some(j);
            shared.written.lock().unwrap().push((n, j));
        }
        shared.record(t.elapsed(), outcome, class, is_write.then_some(a.waited_ms));
        let total = shared.summary.lock().unwrap().sent;
        if total >= a.max_requests
            || started.elapsed() >= Duration::from_secs(a.duration)
            || a.stop_file.as_ref().is_some_and(|f| f.exists())
        {
            shared.stop.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(a.pause_ms));
    }
}

fn worker(n: usize, a: &Args, shared: &Shared, started: Instant) {
    // Each worker its own client: with --keep-alive, its own persistent connection.
    let http = &match client(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("launch-load: cannot make an HTTP client: {e}");
            shared.stop.store(true, Ordering::SeqCst);
            return;
        }
    };
    let mut mine: Vec<i64> = Vec::new();
    let mut j: u64 = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        j += 1;
        let t = Instant::now();
        let is_write = j.is_multiple_of(a.write_every.max(1));
        let mut class = String::from("transport");
        let mut note = |status: u16| class = format!("{}xx", status / 100);
        let result = if is_write {
            let body = format!("{{\"title\":\"load-{n}-{j}\"}}");
            match http
                .put(format!("{}/api/v1/tasks", a.url))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .inspect(|r| note(r.status().as_u16()))
            {
                Ok(r) if r.status().as_u16() == 201 => {
                    let id = r
                        .json::<serde_json::Value>()
                        .ok()
                        .and_then(|v| v["id"].as_i64());
                    if let Some(id) = id {
                        mine.push(id);
                    }
                    Outcome::Ok(id)
                }
                Ok(r) if r.status().as_u16() == 503 && r.headers().contains_key("retry-after") => {
                    Outcome::Held
                }
                Ok(r) => Outcome::Failed(
                    format!("PUT {}", r.status().as_u16()),
                    format!("PUT /api/v1/tasks answered {}", r.status()),
                ),
                Err(e) => Outcome::Failed(
                    format!("PUT {}", classify_err(&e)),
                    format!("PUT /api/v1/tasks: {e}"),
                ),
            }
        } else {
            let path = match mine.last() {
                Some(id) if j % 2 == 1 => format!("/api/v1/tasks/{id}"),
                _ => "/api/v1/info".to_string(),
            };
            match http
                .get(format!("{}{path}", a.url))
                .send()
                .inspect(|r| note(r.status().as_u16()))
            {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes();
                    Outcome::Ok(None)
                }
                // A task this worker created and read back before is gone: data was lost.
                Ok(r) => Outcome::Failed(
                    format!("GET {}", r.status().as_u16()),
                    format!("GET {path} answered {}", r.status()),
                ),
                Err(e) => Outcome::Failed(
                    format!("GET {}", classify_err(&e)),
                    format!("GET {path}: {e}"),
                ),
            }
        };
        shared.record(t.elapsed(), result, class, is_write.then_some(a.waited_ms));
        let total = shared.summary.lock().unwrap().sent;
        if total >= a.max_requests
            || started.elapsed() >= Duration::from_secs(a.duration)
            || a.stop_file.as_ref().is_some_and(|f| f.exists())
        {
            shared.stop.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(a.pause_ms));
    }
}

/// What `--verify` found.
#[derive(Default, Serialize)]
struct Verified {
    checked: u64,
    missing: u64,
    first_missing: Vec<String>,
}

/// `--verify FILE`: reads back every item FILE lists, one request at a time.
fn verify(a: &Args, sc: &Scenario, file: &std::path::Path) -> anyhow::Result<Verified> {
    let rb = sc
        .read_back
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("--verify needs a scenario with `read_back`"))?;
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let http = client(a)?;
    let auth = sc.credentials()?;
    let mut v = Verified::default();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(worker)), Some(Ok(n)), None) = (parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("{} line {}: expected `WORKER N`", file.display(), i + 1);
        };
        let (outcome, _) = scenario_request(&http, a, sc, auth.as_ref(), rb, worker as usize, n);
        v.checked += 1;
        if let Outcome::Failed(_, detail) = outcome {
            v.missing += 1;
            if v.first_missing.len() < 10 {
                v.first_missing.push(detail);
            }
        }
    }
    Ok(v)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    client(&a)?;
    let scenario = a.scenario.as_deref().map(Scenario::load).transpose()?;
    if let Some(sc) = &scenario {
        sc.credentials()?;
    }
    if (a.verify.is_some() || a.written.is_some() || a.first_worker > 0) && scenario.is_none() {
        anyhow::bail!("--verify, --written and --first-worker need --scenario");
    }
    if let (Some(file), Some(sc)) = (&a.verify, &scenario) {
        let v = verify(&a, sc, file)?;
        eprintln!(
            "launch-load --verify: {} items read back, {} missing",
            v.checked, v.missing
        );
        println!("{}", serde_json::to_string(&v)?);
        if v.missing > 0 {
            std::process::exit(1);
        }
        return Ok(());
    }
    let shared = Arc::new(Shared {
        written: Mutex::new(Vec::new()),
        summary: Mutex::new(Summary::default()),
        outage_since: Mutex::new(None),
        stop: AtomicBool::new(false),
    });
    let started = Instant::now();
    std::thread::scope(|s| {
        for n in a.first_worker..a.first_worker + a.concurrency.max(1) {
            let (a, shared, scenario) = (&a, &shared, &scenario);
            s.spawn(move || match scenario {
                Some(sc) => scenario_worker(n, a, sc, shared, started),
                None => worker(n, a, shared, started),
            });
        }
    });
    let mut summary = std::mem::take(&mut *shared.summary.lock().unwrap());
    if let Some(since) = shared.outage_since.lock().unwrap().take() {
        // Still failing at the end: the outage lasted until now.
        summary.longest_outage_ms = summary
            .longest_outage_ms
            .max(since.elapsed().as_millis() as u64);
    }
    summary.duration_ms = started.elapsed().as_millis() as u64;
    summary.created_ids.sort_unstable();
    summary.keep_alive = a.keep_alive;
    if let Some(file) = &a.written {
        let mut items = std::mem::take(&mut *shared.written.lock().unwrap());
        items.sort_unstable();
        let text: String = items.iter().map(|(w, n)| format!("{w} {n}\n")).collect();
        std::fs::write(file, text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    }
    eprintln!(
        "launch-load ({}): {} requests in {:.1} s: {} ok, {} failed ({} without an answer), {} held (503 + Retry-After on writes), {} writes waited over {} ms (longest write {} ms); max latency {} ms; longest outage {} ms",
        if a.keep_alive { "keep-alive" } else { "a connection per request" },
        summary.sent,
        summary.duration_ms as f64 / 1000.0,
        summary.ok,
        summary.failed,
        summary.transport_errors,
        summary.held,
        summary.writes_waited,
        a.waited_ms,
        summary.max_write_ms,
        summary.max_latency_ms,
        summary.longest_outage_ms
    );
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
