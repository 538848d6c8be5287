//! End to end: managing an instance from the dashboard, through the real `launch-tui` binary on
//! a real terminal (a tmux pane) against a real pve-lab: a backup taken with `b`; the backups
//! screen (`B`) lists it verified; the reconfigure form (`c`) shows the current settings and no
//! drift, takes a new public URL and the container serves it; a restore from the backups screen
//! brings back the data written before the backup (an attachment, whose file was removed after
//! the backup) and drops what was written after it (a task); the same backup restored into a
//! new instance (`n`, its name checked) serves the backup's data from a container of its own.
//!
//! Real: tmux's terminal, the launch-tui binary (the TUI, and the `backup`, `backups`,
//! `reconfigure` and `restore` runs it starts as its children), the lab's schema-checked API and
//! its nspawn container with systemd, nginx and the app's data. Stood in: Proxmox VE (pve-lab)
//! and the Vikunja releases (the fixture app over loopback). One scenario, one lab, one install.

#[path = "support/app.rs"]
mod app;
#[path = "support/lab.rs"]
mod lab;
#[path = "support/tmux.rs"]
mod tmux;

use std::time::Duration;

use app::{client, create_task, install, record};
use lab::{fixture_profile, http_get, http_get_bytes, http_put_bytes, Config, Lab, Releases};
use tmux::{has_word, tui_command, Tmux};

fn archives(cfg: &Config) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(cfg.path().join("state/backups/vikunja"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.ends_with(".verified"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn task_status(ip: &str, id: i64) -> u16 {
    client()
        .get(format!("http://{ip}/api/v1/tasks/{id}"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn backup_backups_reconfigure_restore_from_the_dashboard() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "");

    // Data before the backup: a task with an attachment (a file in the container).
    let before = create_task(&ip, "written before the backup");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (s, v) = http_put_bytes(
        &format!("http://{ip}/api/v1/tasks/{before}/attachments?name=notes.bin"),
        bytes.clone(),
    );
    assert_eq!(s, 201, "upload: {v}");
    let attachment = format!(
        "http://{ip}/api/v1/tasks/{before}/attachments/{}",
        v["id"].as_i64().unwrap()
    );

    let tmux = Tmux::start("launch-tui-manage");
    tmux.type_text(&tui_command(&lab, &cfg, env!("CARGO_BIN_EXE_launch-tui")));
    tmux.keys(&["Enter"]);
    let limit = Duration::from_secs(120);
    tmux.wait_for("healthy", &[], limit);

    // b: a verified backup, run on the operation screen.
    tmux.keys(&["b"]);
    tmux.wait_for("Take a verified backup of vikunja now?", &[], limit);
    tmux.keys(&["y"]);
    tmux.wait_for(
        "backup vikunja  done",
        &["backup vikunja  failed"],
        Duration::from_secs(300),
    );
    assert_eq!(archives(&cfg).len(), 1, "{:?}", archives(&cfg));
    tmux.keys(&["Escape"]);
    tmux.wait_for("HEALTH", &[], limit);

    // B: the backups screen lists it, verified (from `backups --json`).
    tmux.keys(&["B"]);
    let screen = tmux.wait_for("✓ verified", &["cannot list"], limit);
    assert!(screen.contains("Backups of vikunja"), "{screen}");
    assert!(screen.contains(&archives(&cfg)[0]), "the archive: {screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("HEALTH", &[], limit);

    // After the backup: a new task, and the attachment's file removed in the container.
    let after = create_task(&ip, "written after the backup");
    lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "sh",
        "-c",
        "rm -f /var/lib/vikunja/blue/files/*",
    ]);
    assert_ne!(http_get_bytes(&attachment).0, 200, "the file is gone");

    // c: the reconfigure form with the current settings and the drift check; a new public URL
    // (a wrong one first: refused inline), the changes summed up, then the run.
    tmux.keys(&["c"]);
    tmux.wait_for("Reconfigure vikunja", &[], limit);
    let screen = tmux.wait_for("no drift", &["drift: /"], limit);
    assert!(screen.contains("http://tasks.lab.example"), "{screen}");
    for _ in 0.."http://tasks.lab.example".len() {
        tmux.keys(&["BSpace"]);
    }
    tmux.type_text("todo.lab.example");
    tmux.keys(&["Enter"]);
    tmux.wait_for("✗ not a URL", &[], limit);
    for _ in 0.."todo.lab.example".len() {
        tmux.keys(&["BSpace"]);
    }
    tmux.type_text("http://todo.lab.example");
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "public_url: http://tasks.lab.example → http://todo.lab.example",
        // (A half-typed URL is flagged while typing; only an accepted form shows this.)
        &[],
        limit,
    );
    tmux.keys(&["y"]);
    tmux.wait_for(
        "reconfigure vikunja  done",
        &["reconfigure vikunja  failed"],
        Duration::from_secs(300),
    );
    // The container serves the change.
    let (_, info) = http_get(&format!("http://{ip}/api/v1/info"));
    assert!(
        info.contains("\"frontend_url\":\"http://todo.lab.example/\""),
        "{info}"
    );
    assert_eq!(
        record(&cfg, "vikunja")["settings"]["public_url"].as_str(),
        Some("http://todo.lab.example")
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("HEALTH", &[], limit);

    // B, Enter: restore the backup (asked first); Esc after it comes back to the list.
    tmux.keys(&["B"]);
    tmux.wait_for("✓ verified", &[], limit);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Restore vikunja from", &[], limit);
    tmux.keys(&["y"]);
    tmux.wait_for(
        "restore vikunja  done",
        &["restore vikunja  failed"],
        Duration::from_secs(300),
    );
    let (s, got) = http_get_bytes(&attachment);
    assert_eq!(s, 200, "the attachment is back");
    assert!(got == bytes, "the attachment's bytes are the backup's");
    assert_eq!(task_status(&ip, before), 200, "the task before the backup");
    assert_ne!(
        task_status(&ip, after),
        200,
        "the task written after the backup is gone"
    );
    tmux.keys(&["Escape"]);
    let screen = tmux.wait_for("Backups of vikunja", &[], limit);
    assert!(
        archives(&cfg).len() == 2,
        "the safety backup taken before the restore: {:?}\n{screen}",
        archives(&cfg)
    );

    // n: the same backup into a new instance, its name checked as typed (a taken one refused).
    tmux.keys(&["n"]);
    tmux.wait_for("Name of the new instance", &[], limit);
    tmux.type_text("vikunja");
    tmux.keys(&["Enter"]);
    tmux.wait_for("exists already", &[], limit);
    tmux.type_text("-copy");
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        "restore to new vikunja  done",
        &["restore to new vikunja  failed"],
        Duration::from_secs(300),
    );
    let copy = record(&cfg, "vikunja-copy");
    let copy_ip = copy["container"]["ip"].as_str().unwrap().to_string();
    assert_ne!(copy_ip, ip, "a container of its own");
    assert_eq!(task_status(&copy_ip, before), 200, "the backup's task");
    assert_ne!(task_status(&copy_ip, after), 200);
    tmux.keys(&["Escape"]);
    tmux.wait_for("Backups of vikunja", &[], limit);
    tmux.keys(&["Escape"]);
    tmux.wait_for("2 instances", &[], limit);

    // q: the terminal is back in cooked mode.
    tmux.keys(&["q"]);
    tmux.wait_for_shell(limit);
    tmux.type_text("stty -a; echo STTY-$((20+22))");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("STTY-42", &[], limit);
    assert!(has_word(&screen, "icanon"), "{screen}");
}
