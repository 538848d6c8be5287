//! End to end: the dashboard, driven through the real `launch-tui` binary on a real terminal
//! (a tmux pane) against a real pve-lab: the instance shows healthy; an update started from the
//! dashboard is cancelled midway (Esc, yes: undone, the old version serves); an update runs to
//! the end under `launch-load` with no failed request; a second instance is installed through
//! the form and uninstalled with its name typed out; after `q`, and after a panic, the terminal
//! is back in cooked mode.
//!
//! Real: tmux's terminal (raw mode, the alternate screen), the launch-tui binary (the TUI, and
//! the operations it runs as its children), the lab's schema-checked API and its nspawn
//! container with systemd and nginx. Stood in: Proxmox VE (pve-lab) and the Vikunja releases
//! (the fixture app over loopback). One scenario, one lab, one install.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/load.rs"]
mod load;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::{Duration, Instant};

use app::{install, record, version_at};
use lab::{fixture_profile, Config, Lab, Releases};
use load::{assert_no_failures, Load};
use tmux::{has_word, tui_command, Tmux};

#[test]
fn dashboard_update_cancel_uninstall_through_a_real_terminal() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "");
    assert_eq!(version_at(&ip), "v1.0.0");

    let command = tui_command(&lab, &cfg, env!("CARGO_BIN_EXE_launch-tui"));
    let tmux = Tmux::start("launch-tui-e2e");
    tmux.type_text(&command);
    tmux.keys(&["Enter"]);
    let limit = Duration::from_secs(120);

    // The checks run in the background and fill the row in: the lab's instance is healthy.
    let screen = tmux.wait_for("healthy", &[], limit);
    assert!(
        screen.contains("vikunja") && screen.contains("v1.0.0"),
        "{screen}"
    );
    assert!(screen.contains(&format!("{vmid}@pve")), "{screen}");
    assert!(screen.contains("v2.0.0"), "the update is offered: {screen}");
    // The details pane lists each check.
    assert!(screen.contains("http-nginx"), "{screen}");

    // Update, then cancel it midway: Esc asks, y cancels, the engine undoes.
    // u: the update screen (the versions, `update --check`), the newest stable one chosen.
    tmux.keys(&["u"]);
    tmux.wait_for("> v2.0.0", &[], limit);
    tmux.wait_for("update available: v1.0.0 → v2.0.0", &[], limit);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Update vikunja from v1.0.0 to v2.0.0?", &[], limit);
    tmux.keys(&["y"]);
    // Midway: a step or more done, not all (the gauge says how many).
    let midway = ["(1/", "(2/", "(3/", "(4/", "(5/"];
    let t = Instant::now();
    while !midway.iter().any(|m| tmux.screen().contains(m)) {
        assert!(t.elapsed() < limit, "no step finished:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.keys(&["Escape"]);
    tmux.wait_for("Cancel the operation on vikunja?", &[], limit);
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("failed, undone", &["  done  "], limit);
    assert!(
        screen.contains("v1.0.0 still serves"),
        "the report says the undo is complete: {screen}"
    );
    assert_eq!(
        version_at(&ip),
        "v1.0.0",
        "the old version serves after the cancel"
    );
    assert_eq!(record(&cfg, "vikunja")["app_version"], "v1.0.0");

    // Back to the dashboard, and the update again, to the end, under load.
    tmux.keys(&["Escape"]);
    tmux.wait_for("HEALTH", &[], limit);
    let load = Load::start(&ip);
    tmux.keys(&["u"]);
    tmux.wait_for("> v2.0.0", &[], limit);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Update vikunja from v1.0.0 to v2.0.0?", &[], limit);
    tmux.keys(&["y"]);
    let screen = tmux.wait_for(
        "update vikunja  done",
        &["update vikunja  failed"],
        Duration::from_secs(300),
    );
    assert!(
        screen.contains("writes held"),
        "the report's figures: {screen}"
    );
    assert_no_failures("update from the TUI", &load.stop());
    assert_eq!(version_at(&ip), "v2.0.0");

    // Install a second instance through the form: the node is read, the fields are checked by
    // the answers resolver, the summary asks, then the install runs on the operation screen.
    tmux.keys(&["Escape"]);
    tmux.wait_for("HEALTH", &[], limit);
    tmux.keys(&["i"]);
    // Several apps are built in: the picker starts on the highlighted instance's app.
    tmux.wait_for("> vikunja", &[], limit);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Install vikunja — Default settings", &[], limit);
    tmux.wait_for("next free CT ID", &[], limit);
    tmux.type_text("second");
    tmux.keys(&["Tab"]);
    tmux.type_text("not a url");
    tmux.wait_for("✗ not a URL", &[], limit);
    for _ in 0.."not a url".len() {
        tmux.keys(&["BSpace"]);
    }
    tmux.type_text("http://second.lab.example");
    tmux.keys(&["Tab"]);
    tmux.type_text("admin@lab.example");
    // The MCP server needs PyPI from inside the container: not in the lab.
    tmux.keys(&["Tab", "BSpace", "BSpace", "BSpace", "BSpace"]);
    tmux.type_text("false");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Create the container with these settings?", &["✗ "], limit);
    tmux.keys(&["y"]);
    tmux.wait_for(
        "install second  done",
        &["install second  failed"],
        Duration::from_secs(300),
    );
    let second = record(&cfg, "second");
    let second_ip = second["container"]["ip"].as_str().unwrap().to_string();
    let second_vmid = second["container"]["vmid"].as_u64().unwrap() as u32;
    assert_eq!(
        second["settings"]["public_url"],
        "http://second.lab.example"
    );
    assert_eq!(version_at(&second_ip), "v2.0.0");
    tmux.keys(&["Escape"]);
    tmux.wait_for("2 instances", &[], limit);

    // Uninstall it: a wrong name starts nothing; the right one does.
    tmux.keys(&["/"]);
    tmux.type_text("second");
    tmux.keys(&["Enter", "x"]);
    tmux.wait_for("Type `second` to confirm", &[], limit);
    tmux.type_text("secon");
    tmux.keys(&["Enter"]);
    tmux.wait_for("> secon", &[], limit);
    tmux.type_text("d");
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "uninstall second  done",
        &["uninstall second  failed"],
        Duration::from_secs(180),
    );
    let vmids = lab.vmids();
    assert!(!vmids.contains(&second_vmid), "the container is gone");
    assert!(
        vmids.contains(&vmid.parse().unwrap()),
        "the other one stays"
    );
    assert!(!cfg.path().join("instances/second.yaml").exists());
    assert_eq!(version_at(&ip), "v2.0.0");
    // Back, and the filter cleared: the first instance is left.
    tmux.keys(&["Escape"]);
    tmux.wait_for("filter: /second", &[], limit);
    tmux.keys(&["Escape"]);
    tmux.wait_for("1 instance", &[], limit);

    // q: the terminal is back in cooked mode.
    tmux.keys(&["q"]);
    tmux.wait_for_shell(limit);
    tmux.type_text("stty -a; echo STTY-$((20+22))");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("STTY-42", &[], limit);
    assert!(
        has_word(&screen, "icanon"),
        "not in canonical mode: {screen}"
    );
    assert!(has_word(&screen, "echo"), "echo is off: {screen}");

    // A panic (the test hook's key) restores the terminal too.
    tmux.keys(&["clear", "Enter"]);
    tmux.type_text(&format!("LAUNCH_TEST_PANIC_KEY=% {command}"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("1 instance", &[], limit);
    tmux.keys(&["%"]);
    // The panic's message is printed on the restored screen.
    tmux.wait_for("panicked", &[], limit);
    tmux.wait_for_shell(limit);
    tmux.type_text("stty -a; echo STTY-$((40+3))");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("STTY-43", &[], limit);
    assert!(
        has_word(&screen, "icanon"),
        "not in canonical mode after a panic: {screen}"
    );
    assert!(
        has_word(&screen, "echo"),
        "echo is off after a panic: {screen}"
    );
}
