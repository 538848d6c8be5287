//! End to end: the whole lifecycle of third-party apps that nobody here wrote, each a built-in
//! format-2 profile and nothing else (no line of engine code knows them): install → writes →
//! update between two real upstream versions under load, with 0 failed requests → status →
//! backup → more writes → uninstall --keep-data → restore --to-new, then every write that was
//! ever acknowledged is read back from the new container.
//!
//! Real: the apps, downloaded inside the container from their real registries by the profile's
//! installer (Radicale 3.8.3 and 3.9.0 from PyPI by pip; TiddlyWiki 5.3.6 and 5.3.8 from the
//! npm registry by `npm ci` of the profile's lockfiles), Debian containers booted by pve-lab
//! with real systemd and nginx, HTTP over the lab's bridge, launch-tui and launch-load as
//! processes. Stood in: Proxmox VE (pve-lab, every request checked against the official schema).
//! The apps' requests come from a launch-load scenario (tests/fixtures/scenarios/).

#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use lab::{launch, text, Config, Lab};
use load::{assert_no_failures, Load};

/// One app's case: its profile, two real versions, its answers and how to drive it.
struct AppCase {
    profile: &'static str,
    instance: &'static str,
    old: &'static str,
    new: &'static str,
    /// Answers beyond name and version (YAML lines).
    answers: &'static str,
    /// The launch-load scenario under tests/fixtures/scenarios/.
    scenario: &'static str,
    /// The secret of the instance record that is the scenario's password.
    password_secret: &'static str,
    /// A shell script run in the container that prints the version of the running app, as
    /// the app's own package says (not the record).
    running_version: &'static str,
}

const RADICALE: AppCase = AppCase {
    profile: "radicale",
    instance: "radicale-e2e",
    old: "3.8.3",
    new: "3.9.0",
    answers: "public_url: http://dav.lab.example\nadmin_user: admin\n",
    scenario: "radicale.json",
    password_secret: "admin_password",
    running_version: r#"pid=$(pgrep -n -u radicale) && exe=$(tr '\0' '\n' < /proc/$pid/cmdline | grep '/venv/bin/radicale$' | head -n 1) && "$(dirname "$exe")/python3" -c 'import radicale; print(radicale.VERSION)'"#,
};

const TIDDLYWIKI: AppCase = AppCase {
    profile: "tiddlywiki",
    instance: "tiddlywiki-e2e",
    old: "5.3.6",
    new: "5.3.8",
    answers: "public_url: http://wiki.lab.example\nadmin_user: admin\n",
    scenario: "tiddlywiki.json",
    password_secret: "admin_password",
    // node runs `.../node_modules/.bin/tiddlywiki`; the version is its package's.
    running_version: r#"pid=$(pgrep -n -u tiddlywiki) && bin=$(tr '\0' '\n' < /proc/$pid/cmdline | grep '/node_modules/.bin/tiddlywiki$' | head -n 1) && node -p 'require(process.argv[1]).version' "$(dirname "$(dirname "$bin")")/tiddlywiki/package.json""#,
};

/// The cases share the lab's names and subnet: one at a time.
static ONE_LAB: Mutex<()> = Mutex::new(());

#[test]
fn radicale_lifecycle() {
    lifecycle(&RADICALE);
}

#[test]
fn tiddlywiki_lifecycle() {
    lifecycle(&TIDDLYWIKI);
}

struct Instance {
    ip: String,
    vmid: String,
    password: String,
}

fn record(cfg: &Config, name: &str) -> serde_yaml_ng::Value {
    let path = cfg.path().join(format!("instances/{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap()
}

fn instance(cfg: &Config, case: &AppCase) -> Instance {
    let rec = record(cfg, case.instance);
    Instance {
        ip: rec["container"]["ip"].as_str().unwrap().to_string(),
        vmid: rec["container"]["vmid"].as_u64().unwrap().to_string(),
        password: rec["secrets"][case.password_secret]
            .as_str()
            .unwrap_or_else(|| panic!("no secret {} in the record", case.password_secret))
            .to_string(),
    }
}

fn scenario(case: &AppCase) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(case.scenario)
}

fn running_version(lab: &Lab, at: &Instance, case: &AppCase) -> String {
    lab.pct_ok(&["exec", &at.vmid, "--", "sh", "-c", case.running_version])
        .trim()
        .to_string()
}

/// A bounded run of the scenario (no update going on): every request must succeed; the
/// acknowledged writes are listed in `written`.
fn writes(at: &Instance, case: &AppCase, first_worker: usize, written: &Path) {
    let auth = ("LAUNCH_LOAD_PASSWORD", at.password.as_str());
    load::bounded_writes(
        &at.ip,
        &scenario(case),
        auth,
        first_worker,
        120,
        20,
        written,
    );
}

/// Reads back, from `at`, every write each file lists; returns how many were checked.
fn verify(at: &Instance, case: &AppCase, files: &[&Path]) -> usize {
    let auth = ("LAUNCH_LOAD_PASSWORD", at.password.as_str());
    load::verify_writes(&at.ip, &scenario(case), auth, files) as usize
}

fn healthy(lab: &Lab, cfg: &Config, name: &str) {
    lab::healthy(lab, cfg, name);
}

fn lifecycle(case: &AppCase) {
    let _one = ONE_LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::start();
    // No override profiles: the built-in profile as shipped.
    let cfg = Config {
        dir: tempfile::tempdir().unwrap(),
    };
    let work = tempfile::tempdir().unwrap();
    let file = |n: &str| work.path().join(n);

    // 1. Install the older version.
    let answers = file("answers.yaml");
    std::fs::write(
        &answers,
        format!(
            "name: {}\nversion: {}\n{}",
            case.instance, case.old, case.answers
        ),
    )
    .unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            case.profile,
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    eprintln!("install:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "install: {}", text(&out));
    let first = instance(&cfg, case);
    assert_eq!(running_version(&lab, &first, case), case.old);
    // The generated password is in no output.
    assert!(!text(&out).contains(&first.password), "the password leaked");

    // 2. Writes, then the update under load: no request fails, none is lost.
    writes(&first, case, 0, &file("before-update"));
    let load = Load::start_with_env(
        &first.ip,
        &[
            "--scenario",
            scenario(case).to_str().unwrap(),
            "--first-worker",
            "10",
            "--written",
            file("during-update").to_str().unwrap(),
        ],
        &[("LAUNCH_LOAD_PASSWORD", &first.password)],
    );
    // A 5 s watch after the switch (the profile's is longer): the switch is what this proves;
    // the watch itself is tested in e2e_update.
    let out = launch(
        &lab,
        &cfg,
        &[
            "update",
            case.instance,
            "--version",
            case.new,
            "--yes",
            "--watch",
            "5",
        ],
    );
    let summary = load.stop();
    eprintln!("update:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "update: {}", text(&out));
    assert_no_failures("update under load", &summary);
    assert_eq!(running_version(&lab, &first, case), case.new);
    assert_eq!(record(&cfg, case.instance)["app_version"], case.new);
    let during = std::fs::read_to_string(file("during-update")).unwrap();
    assert!(
        during.lines().count() > 10,
        "writes went on during the update: {summary}"
    );
    healthy(&lab, &cfg, case.instance);

    // 3. Backup, more writes, then uninstall keeping the data and restore into a new container.
    let out = launch(&lab, &cfg, &["backup", case.instance]);
    assert_eq!(out.status.code(), Some(0), "backup: {}", text(&out));
    writes(&first, case, 20, &file("after-backup"));
    let out = launch(
        &lab,
        &cfg,
        &["uninstall", case.instance, "--keep-data", "--yes"],
    );
    eprintln!("uninstall --keep-data:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "uninstall: {}", text(&out));
    assert!(!lab.vmids().contains(&first.vmid.parse().unwrap()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let kept = std::fs::read_dir(cfg.path().join("state/backups").join(case.instance))
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .find(|p| p.ends_with(".tar.zst") && stdout.contains(p.as_str()))
        .unwrap_or_else(|| panic!("the kept archive is named: {stdout}"));
    let out = launch(
        &lab,
        &cfg,
        &[
            "restore",
            case.instance,
            &kept,
            "--to-new",
            case.instance,
            "--yes",
        ],
    );
    eprintln!("restore --to-new:\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "restore: {}", text(&out));
    // A new container (the lab may give it the freed VMID again).
    let second = instance(&cfg, case);
    assert_eq!(
        second.password, first.password,
        "the record took the archive's secrets"
    );
    assert_eq!(running_version(&lab, &second, case), case.new);
    healthy(&lab, &cfg, case.instance);
    let checked = verify(
        &second,
        case,
        &[
            &file("before-update"),
            &file("during-update"),
            &file("after-backup"),
        ],
    );
    eprintln!(
        "{}: {} requests during the update, 0 failed; {checked} acknowledged writes read back after restore --to-new, 0 missing",
        case.profile, summary["sent"]
    );
}
