//! The lab's API contract, against the real daemon over HTTPS: schema rejections with PVE's
//! status, reason phrase and body; semantic errors; tokens, tickets, CSRF and privileges;
//! certificate pinning; the access log; the pvesh shim; injected HTTP faults.
//! Needs root (it brings up the `plaba` lab network); CI runs as root.

mod lab_harness;

use std::time::{Duration, Instant};

use lab_harness::{stderr, stdout, Lab, Resp, TEMPLATE};
use pve_lab::{read_access_log, Verdict};
use serde_json::Value;

fn assert_param_error(r: &Resp, key: &str, msg: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.reason, "Parameter verification failed.", "{r:?}");
    assert_eq!(r.body["data"], Value::Null, "{r:?}");
    assert_eq!(
        r.body["message"], "Parameter verification failed.\n",
        "{r:?}"
    );
    let got = r.body["errors"][key].as_str().unwrap_or("");
    assert!(
        got.contains(msg),
        "errors.{key}: expected '{msg}' in '{got}' ({r:?})"
    );
}

fn assert_server_error(r: &Resp, msg: &str) {
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.reason, msg, "{r:?}");
    assert_eq!(r.body["message"], format!("{msg}\n"), "{r:?}");
}

#[test]
fn schema_rejections_have_pves_shape_and_are_logged() {
    let lab = Lab::start(0);
    let tpl = format!("local:vztmpl/{TEMPLATE}");
    let create = |extra: &[(&str, &str)]| {
        let mut p = vec![("vmid", "150"), ("ostemplate", tpl.as_str())];
        p.extend_from_slice(extra);
        lab.call("POST", "/nodes/pve/lxc", &p)
    };

    let r = create(&[("bogus", "1")]);
    assert_param_error(
        &r,
        "bogus",
        "property is not defined in schema and the schema does not allow additional properties",
    );
    let r = create(&[("ostype", "windows")]);
    assert_param_error(
        &r,
        "ostype",
        "value 'windows' does not have a value in the enumeration",
    );
    let r = create(&[("start", "true")]);
    assert_param_error(&r, "start", "type check ('boolean') failed - got 'true'");
    let r = create(&[("hostname", "bad_name!")]);
    assert_param_error(&r, "hostname", "invalid format");
    let r = create(&[("net0", "name=eth0,ip=10.0.0.300/24")]);
    assert_param_error(&r, "net0", "net0.ip: invalid format");
    let r = lab.call("POST", "/nodes/pve/lxc", &[("vmid", "150")]);
    assert_param_error(
        &r,
        "ostemplate",
        "property is missing and it is not optional",
    );
    let r = create(&[("memory", "8")]);
    assert_param_error(&r, "memory", "value must have a minimum value of 16");
    let r = lab.call(
        "GET",
        "/nodes/pve/lxc/101/status/current",
        &[("vmid", "102")],
    );
    assert_param_error(
        &r,
        "vmid",
        "duplicate parameter (already defined in URI) with conflicting values!",
    );

    let r = lab.call("GET", "/nodes/pve/frobnicate", &[]);
    assert_eq!(r.status, 501, "{r:?}");
    assert_eq!(
        r.reason,
        "Method 'GET /nodes/pve/frobnicate' not implemented"
    );
    assert_eq!(r.body["data"], Value::Null);

    // A valid request passes the schema and reaches the handler (which then finds no template).
    let r = lab.call("GET", "/cluster/nextid", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"], "100");

    let log = read_access_log(lab.path());
    let api: Vec<_> = log.iter().filter(|e| !e.path.starts_with("/lab")).collect();
    // The harness's readiness probe, 10 requests above.
    let rejected: Vec<_> = api
        .iter()
        .filter(|e| e.verdict == Verdict::Rejected)
        .collect();
    assert_eq!(rejected.len(), 9, "{rejected:#?}");
    assert!(rejected.iter().all(|e| e.stage == "schema"));
    let bool_entry = rejected
        .iter()
        .find(|e| e.errors.as_ref().is_some_and(|m| m.contains_key("start")))
        .expect("the start=true rejection is logged");
    assert_eq!(bool_entry.status, 400);
    assert_eq!(bool_entry.params["start"], "true");
    assert_eq!(bool_entry.auth_id.as_deref(), Some("root@pam!launch"));
    let ok: Vec<_> = api.iter().filter(|e| e.verdict == Verdict::Ok).collect();
    assert!(ok
        .iter()
        .any(|e| e.path == "/cluster/nextid" && e.status == 200));
    // Secrets never reach the log file.
    let raw = std::fs::read_to_string(lab.path().join("access.jsonl")).unwrap();
    assert!(!raw.contains(lab.token.rsplit('=').next().unwrap()));
}

#[test]
fn authentication_tickets_csrf_and_privileges() {
    let lab = Lab::start(300);

    let r = lab.try_call("GET", "/version", &[], None).unwrap();
    assert_eq!((r.status, r.reason.as_str()), (401, "No ticket"), "{r:?}");
    assert!(r.raw.is_empty(), "401 has an empty body: {r:?}");
    assert!(
        r.elapsed >= Duration::from_millis(300),
        "PVE-style delay: {:?}",
        r.elapsed
    );

    let wrong = format!("{}x", lab.token);
    let r = lab.try_call("GET", "/version", &[], Some(&wrong)).unwrap();
    assert_eq!(
        (r.status, r.reason.as_str()),
        (401, "Authentication failed!"),
        "{r:?}"
    );
    assert!(r.elapsed >= Duration::from_millis(300));

    // The space form of the header works too.
    let r = lab
        .http
        .get(lab.url("/version"))
        .header("Authorization", format!("PVEAPIToken {}", lab.token))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    // A token with only audit rights: reads work, creating is refused naming the privilege.
    let out = lab.cmd(&["token", "add", "audit", "--privs", "VM.Audit,Sys.Audit"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = std::fs::read_to_string(lab.path().join("token-audit")).unwrap();
    let audit = line.trim().to_string();
    assert!(audit.starts_with("root@pam!audit="));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(lab.path().join("token-audit"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let r = lab
        .try_call("GET", "/nodes/pve/status", &[], Some(&audit))
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let tpl = format!("local:vztmpl/{TEMPLATE}");
    let r = lab
        .try_call(
            "POST",
            "/nodes/pve/lxc",
            &[("vmid", "101"), ("ostemplate", &tpl)],
            Some(&audit),
        )
        .unwrap();
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.reason, "Permission check failed (/vms/101, VM.Allocate)");
    let r = lab
        .try_call("DELETE", "/nodes/pve/lxc/101", &[], Some(&audit))
        .unwrap();
    assert_eq!(r.reason, "Permission check failed (/vms/101, VM.Allocate)");
    let r = lab
        .try_call(
            "POST",
            "/nodes/pve/aplinfo",
            &[("storage", "local"), ("template", TEMPLATE)],
            Some(&audit),
        )
        .unwrap();
    assert_eq!(
        r.reason,
        "Permission check failed (/storage/local, Datastore.AllocateTemplate)"
    );
    // Lab admin endpoints are for the root token only.
    let r = lab
        .http
        .post(format!("https://127.0.0.1:{}/lab/fault/clear", lab.port))
        .header("Authorization", format!("PVEAPIToken={audit}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    // Tickets: wrong password, then a real login; GET needs only the cookie, POST the CSRF token.
    let pw = std::fs::read_to_string(lab.path().join("root-password")).unwrap();
    let r = lab
        .try_call(
            "POST",
            "/access/ticket",
            &[("username", "root@pam"), ("password", "wrong-pass")],
            None,
        )
        .unwrap();
    assert_eq!(
        (r.status, r.reason.as_str()),
        (401, "Authentication failed!"),
        "{r:?}"
    );
    let r = lab
        .try_call(
            "POST",
            "/access/ticket",
            &[("username", "root@pam"), ("password", pw.trim())],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let ticket = r.body["data"]["ticket"].as_str().unwrap().to_string();
    let csrf = r.body["data"]["CSRFPreventionToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ticket.starts_with("PVE:root@pam:"));
    assert_eq!(r.body["data"]["username"], "root@pam");
    let cookie = format!("PVEAuthCookie={}", ticket.replace(':', "%3A"));
    let r = lab
        .http
        .get(lab.url("/nodes"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let post = |csrf: Option<&str>| {
        let mut req = lab
            .http
            .post(lab.url("/nodes/pve/aplinfo"))
            .header("Cookie", &cookie)
            .form(&[("storage", "local"), ("template", "no-such.tar.zst")]);
        if let Some(c) = csrf {
            req = req.header("CSRFPreventionToken", c);
        }
        Lab::read_resp(req.send().unwrap(), Instant::now())
    };
    let r = post(None);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (401, "Permission denied - invalid csrf token"),
        "{r:?}"
    );
    let r = post(Some("0:bogus"));
    assert_eq!(r.status, 401, "{r:?}");
    // With the CSRF token the request passes authentication and meets PVE's own check.
    let r = post(Some(&csrf));
    assert_param_error(&r, "template", "no such template");

    let log = read_access_log(lab.path());
    let auth_rejects = log.iter().filter(|e| e.stage == "auth").count();
    assert_eq!(auth_rejects, 5, "{log:#?}");
    let perm = log.iter().filter(|e| e.stage == "permission").count();
    assert_eq!(perm, 4, "{log:#?}");
    let login = log
        .iter()
        .find(|e| e.path == "/access/ticket" && e.status == 200)
        .unwrap();
    assert_eq!(login.params["password"], "<redacted>");
    let raw = std::fs::read_to_string(lab.path().join("access.jsonl")).unwrap();
    assert!(
        !raw.contains(pw.trim()),
        "the root password leaked into the access log"
    );
}

#[test]
fn certificate_is_pinned_by_its_fingerprint() {
    let lab = Lab::start(0);
    let fp = std::fs::read_to_string(lab.path().join("fingerprint")).unwrap();
    let fp = fp.trim();
    assert_eq!(fp.len(), 95, "PVE style AB:CD:... of 32 bytes: {fp}");
    assert!(fp
        .chars()
        .all(|c| c == ':' || c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    // The pinned client (the harness's) works; a different pin and the system roots both fail.
    assert_eq!(lab.call("GET", "/version", &[]).status, 200);
    let mut other: Vec<char> = fp.chars().collect();
    other[0] = if other[0] == 'A' { 'B' } else { 'A' };
    let other: String = other.into_iter().collect();
    let wrong = pve_lab::tls::pinned_client(&other, Duration::from_secs(10)).unwrap();
    let err = wrong.get(lab.url("/version")).send().unwrap_err();
    assert!(format!("{err:?}").contains("fingerprint"), "{err:?}");
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(
        plain.get(lab.url("/version")).send().is_err(),
        "a self-signed node must not pass the system roots"
    );
    // ca.pem signs the node certificate, for clients that trust the CA instead.
    let ca = std::fs::read(lab.path().join("ca.pem")).unwrap();
    let trusting = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = trusting
        .get(lab.url("/version"))
        .header("Authorization", format!("PVEAPIToken={}", lab.token))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn container_semantic_errors_match_pve() {
    let lab = Lab::start(0);
    let long = Duration::from_secs(900);
    lab.task_ok(
        "POST",
        "/nodes/pve/aplinfo",
        &[("storage", "local"), ("template", TEMPLATE)],
        long,
    );
    let r = lab.call(
        "POST",
        "/nodes/pve/aplinfo",
        &[("storage", "local"), ("template", "nope_1.0_amd64.tar.zst")],
    );
    assert_param_error(&r, "template", "no such template");
    let content = lab.ok(
        "GET",
        "/nodes/pve/storage/local/content",
        &[("content", "vztmpl")],
    );
    assert_eq!(
        content[0]["volid"],
        format!("local:vztmpl/{TEMPLATE}"),
        "{content}"
    );

    let tpl = format!("local:vztmpl/{TEMPLATE}");
    let r = lab.call(
        "POST",
        "/nodes/pve/lxc",
        &[("vmid", "201"), ("ostemplate", &tpl), ("rootfs", "local:4")],
    );
    assert_server_error(&r, "storage 'local' does not support container directories");
    let r = lab.call(
        "POST",
        "/nodes/pve/lxc",
        &[
            ("vmid", "201"),
            ("ostemplate", &tpl),
            ("rootfs", "nowhere:4"),
        ],
    );
    assert_server_error(&r, "storage 'nowhere' does not exist");

    let started = Instant::now();
    let st = lab.task_ok(
        "POST",
        "/nodes/pve/lxc",
        &[
            ("vmid", "201"),
            ("ostemplate", &tpl),
            ("rootfs", "local-lvm:2"),
            ("hostname", "api-test"),
            ("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
            ("unprivileged", "1"),
            ("start", "1"),
        ],
        Duration::from_secs(300),
    );
    eprintln!(
        "create+start of CT 201: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(st["type"], "vzcreate");
    let status = lab.ok("GET", "/nodes/pve/lxc/201/status/current", &[]);
    assert_eq!(status["status"], "running", "{status}");

    let r = lab.call(
        "POST",
        "/nodes/pve/lxc",
        &[("vmid", "201"), ("ostemplate", &tpl)],
    );
    assert_server_error(&r, "CT 201 already exists on node 'pve'");
    let r = lab.call("DELETE", "/nodes/pve/lxc/201", &[]);
    assert_server_error(&r, "unable to destroy CT 201 - container is running");
    let r = lab.call("POST", "/nodes/pve/lxc/201/status/start", &[]);
    assert_server_error(&r, "CT 201 already running");
    let r = lab.call("GET", "/nodes/pve/lxc/999/config", &[]);
    assert_server_error(
        &r,
        "Configuration file 'nodes/pve/lxc/999.conf' does not exist",
    );
    let r = lab.call("POST", "/nodes/pve/lxc/201/snapshot/nosuch/rollback", &[]);
    assert_server_error(&r, "snapshot 'nosuch' does not exist");
    let r = lab.call("GET", "/cluster/nextid", &[("vmid", "201")]);
    assert_param_error(&r, "vmid", "VM 201 already exists");
    assert_eq!(lab.ok("GET", "/cluster/nextid", &[]), "100");

    // Config: digest, read-only option, delete, typed values.
    let cfg = lab.ok("GET", "/nodes/pve/lxc/201/config", &[]);
    assert_eq!(cfg["unprivileged"], 1);
    assert_eq!(cfg["hostname"], "api-test");
    assert!(
        cfg["net0"].as_str().unwrap().contains("hwaddr=BC:24:11:"),
        "{cfg}"
    );
    assert_eq!(cfg["rootfs"], "local-lvm:vm-201-disk-0,size=2G");
    let digest = cfg["digest"].as_str().unwrap().to_string();
    let r = lab.call(
        "PUT",
        "/nodes/pve/lxc/201/config",
        &[("memory", "256"), ("digest", &"0".repeat(40))],
    );
    assert_server_error(
        &r,
        "detected modified configuration - file changed by other user? Try again.",
    );
    let r = lab.call("PUT", "/nodes/pve/lxc/201/config", &[("unprivileged", "0")]);
    assert_server_error(&r, "unable to modify read-only option: 'unprivileged'");
    lab.ok(
        "PUT",
        "/nodes/pve/lxc/201/config",
        &[
            ("memory", "256"),
            ("tags", "lab;api"),
            ("description", "two\nlines"),
            ("digest", &digest),
        ],
    );
    lab.ok("PUT", "/nodes/pve/lxc/201/config", &[("delete", "tags")]);
    let cfg = lab.ok("GET", "/nodes/pve/lxc/201/config", &[]);
    assert_eq!(cfg["memory"], 256);
    assert_eq!(cfg["description"], "two\nlines");
    assert!(cfg.get("tags").is_none(), "{cfg}");
    let conf = std::fs::read_to_string(lab.path().join("lxc/201.conf")).unwrap();
    assert!(conf.starts_with("#two\n#lines\n"), "{conf}");

    // Resize grows only.
    let r = lab.call(
        "PUT",
        "/nodes/pve/lxc/201/resize",
        &[("disk", "rootfs"), ("size", "1G")],
    );
    assert_server_error(&r, "unable to shrink disk size");
    lab.task_ok(
        "PUT",
        "/nodes/pve/lxc/201/resize",
        &[("disk", "rootfs"), ("size", "+1G")],
        Duration::from_secs(60),
    );
    let cfg = lab.ok("GET", "/nodes/pve/lxc/201/config", &[]);
    assert_eq!(cfg["rootfs"], "local-lvm:vm-201-disk-0,size=3G");
    // The current size is refused too, as pve-container's resize_vm does.
    let r = lab.call(
        "PUT",
        "/nodes/pve/lxc/201/resize",
        &[("disk", "rootfs"), ("size", "3G")],
    );
    assert_server_error(&r, "disk is already at specified size");

    let list = lab.ok("GET", "/nodes/pve/lxc", &[]);
    assert_eq!(list[0]["vmid"], 201);
    let rows = lab.ok("GET", "/cluster/resources", &[("type", "vm")]);
    assert_eq!(rows[0]["id"], "lxc/201", "{rows}");
    // ip=dhcp: the CT asks the lab's DHCP server after boot, so the address comes a moment
    // after the start task (as on PVE); it is the CT's reservation.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (ifaces, eth0) = loop {
        let ifaces = lab.ok("GET", "/nodes/pve/lxc/201/interfaces", &[]);
        let eth0 = ifaces
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == "eth0")
            .expect("eth0")
            .clone();
        if !eth0["inet"].is_null() || std::time::Instant::now() > deadline {
            break (ifaces, eth0);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(eth0["inet"], "10.77.2.101/24", "{ifaces}");

    lab.task_ok(
        "DELETE",
        "/nodes/pve/lxc/201",
        &[("force", "1"), ("purge", "1")],
        Duration::from_secs(120),
    );
    let r = lab.call("GET", "/nodes/pve/lxc/201/status/current", &[]);
    assert_server_error(
        &r,
        "Configuration file 'nodes/pve/lxc/201.conf' does not exist",
    );
    let tasks = lab.ok("GET", "/nodes/pve/tasks", &[("vmid", "201")]);
    let types: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["type"].as_str())
        .collect();
    assert!(
        types.contains(&"vzcreate") && types.contains(&"vzdestroy"),
        "{types:?}"
    );
}

#[test]
fn pvesh_shim_round_trip_and_errors() {
    let lab = Lab::start(0);
    let out = lab.tool("pvesh", &["get", "/version", "--output-format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["version"], "8.4.1");

    let out = lab.tool(
        "pvesh",
        &[
            "create",
            "/nodes/pve/aplinfo",
            "--storage",
            "local",
            "--template",
            TEMPLATE,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // A worker runs in the foreground, as pvesh does on the CLI: its log, then the UPID, and
    // the task has ended by the time pvesh exits.
    let printed = stdout(&out);
    let upid = printed.trim().lines().last().unwrap().to_string();
    assert!(
        upid.starts_with("UPID:pve:") && upid.contains(":download:"),
        "{printed}"
    );
    assert!(
        printed.trim_end().lines().count() > 1,
        "no task log: {printed}"
    );
    assert!(!printed.contains("TASK OK"), "{printed}");
    let out = lab.tool(
        "pvesh",
        &[
            "get",
            &format!("/nodes/pve/tasks/{upid}/status"),
            "--output-format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["status"], "stopped");
    assert_eq!(v["exitstatus"], "OK");

    // A failed task: its error's message on stderr, the UPID on stdout, and still exit 0.
    let out = lab.cmd(&[
        "fault",
        "fail-task",
        "--type",
        "download",
        "--exitstatus",
        "download failed: lab fault",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lab.tool(
        "pvesh",
        &[
            "create",
            "/nodes/pve/aplinfo",
            "--storage",
            "local",
            "--template",
            TEMPLATE,
            "--output-format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "download failed: lab fault\n",
        "{}",
        stdout(&out)
    );
    let last = stdout(&out).trim().lines().last().unwrap().to_string();
    let upid: String = serde_json::from_str(&last).unwrap();
    assert!(upid.starts_with("UPID:pve:"), "{last}");

    let out = lab.tool("pvesh", &["create", "/nodes/pve/lxc", "--vmid", "150"]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        stderr(&out),
        "400 Parameter verification failed.\nostemplate: property is missing and it is not optional\n\npvesh create <api_path> [OPTIONS] [FORMAT_OPTIONS]\n"
    );
    let out = lab.tool("pvesh", &["get", "/nodes/pve/lxc/999/config"]);
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(
        stderr(&out),
        "Configuration file 'nodes/pve/lxc/999.conf' does not exist\n"
    );
    let out = lab.tool("pvesh", &["get", "/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "No 'get' handler defined for '/nope'\n");
    let out = lab.tool("pvesh", &["frob", "/version"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("USAGE: pvesh"));
    // Every pvesh call went through the validated API and is in the log.
    let log = read_access_log(lab.path());
    assert!(log
        .iter()
        .any(|e| e.path == "/nodes/pve/lxc" && e.verdict == Verdict::Rejected));
}

#[test]
fn injected_http_and_task_faults() {
    let lab = Lab::start(0);
    let out = lab.cmd(&["fault", "http", "--status", "596", "--count", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for _ in 0..2 {
        let r = lab.call("GET", "/version", &[]);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (596, "Connection timed out"),
            "{r:?}"
        );
    }
    assert_eq!(lab.call("GET", "/version", &[]).status, 200);

    let out = lab.cmd(&[
        "fault",
        "http",
        "--status",
        "500",
        "--count",
        "1",
        "--path-prefix",
        "/nodes",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lab.call("GET", "/version", &[]).status, 200);
    assert_eq!(lab.call("GET", "/nodes", &[]).status, 500);
    assert_eq!(lab.call("GET", "/nodes", &[]).status, 200);

    let out = lab.cmd(&[
        "fault",
        "fail-task",
        "--type",
        "download",
        "--exitstatus",
        "download failed: lab fault",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let upid = lab.ok(
        "POST",
        "/nodes/pve/aplinfo",
        &[("storage", "local"), ("template", TEMPLATE)],
    );
    let st = lab.wait_task(upid.as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(st["exitstatus"], "download failed: lab fault");
    assert!(lab
        .task_log(upid.as_str().unwrap())
        .ends_with("TASK ERROR: download failed: lab fault"));

    let out = lab.cmd(&["fault", "http", "--status", "200"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("status '200' is not an error status"),
        "{}",
        stderr(&out)
    );
    let out = lab.cmd(&["fault", "list"]);
    assert_eq!(stdout(&out).trim(), "[]");

    let log = read_access_log(lab.path());
    let faulted: Vec<_> = log
        .iter()
        .filter(|e| e.fault.as_deref() == Some("http 596"))
        .collect();
    assert_eq!(faulted.len(), 2, "{log:#?}");
    assert!(faulted
        .iter()
        .all(|e| e.status == 596 && e.verdict == Verdict::Ok));
    assert!(log
        .iter()
        .any(|e| e.path == "/lab/fault/http" && e.status == 200));
}

#[test]
fn pve8_0_mode_has_a_pct_without_keep_env() {
    let lab = Lab::start_with(0, &["--pve", "8.0"]);
    let v = lab.ok("GET", "/version", &[]);
    assert_eq!(v["version"], "8.0.4", "{v}");
    let out = lab.tool("pct", &["exec", "150", "--keep-env", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).starts_with("Unknown option: keep-env\n"),
        "{}",
        stderr(&out)
    );
    // Without the option pct goes on (here to PVE's error for a CT that does not exist).
    let out = lab.tool("pct", &["exec", "150", "--", "true"]);
    assert!(
        stderr(&out).contains("150.conf' does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn path_scoped_acls_pools_and_propagate_flags() {
    let lab = Lab::start(0);
    let out = lab.cmd(&["token", "pool", "apps", "--vms", "101"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lab.cmd(&[
        "token",
        "add",
        "scoped",
        "--acl",
        "/pool/apps=VM.Audit",
        "--acl-here",
        "/storage/local=Datastore.Audit",
        "--acl",
        "/sdn/zones/localnetwork/vmbr0=SDN.Use",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = std::fs::read_to_string(lab.path().join("token-scoped")).unwrap();
    let get = |path: Option<&str>| -> Value {
        let fp = std::fs::read_to_string(lab.path().join("fingerprint")).unwrap();
        let mut req = pve_lab::tls::pinned_client(fp.trim(), Duration::from_secs(30))
            .unwrap()
            .get(lab.url("/access/permissions"))
            .header("Authorization", format!("PVEAPIToken={}", token.trim()));
        if let Some(p) = path {
            req = req.query(&[("path", p)]);
        }
        let r: Value = req.send().unwrap().json().unwrap();
        r["data"].clone()
    };
    let all = get(None);
    assert_eq!(all["/vms/101"], serde_json::json!({"VM.Audit": 0}), "{all}");
    assert_eq!(
        all["/storage/local"],
        serde_json::json!({"Datastore.Audit": 0}),
        "{all}"
    );
    assert_eq!(
        all["/sdn/zones/localnetwork/vmbr0"],
        serde_json::json!({"SDN.Use": 1}),
        "{all}"
    );
    assert!(all.get("/").is_none(), "nothing on /: {all}");
    let vlan = get(Some("/sdn/zones/localnetwork/vmbr0/20"));
    assert_eq!(
        vlan,
        serde_json::json!({"/sdn/zones/localnetwork/vmbr0/20": {"SDN.Use": 1}})
    );
    let other = get(Some("/vms/102"));
    assert_eq!(other, serde_json::json!({"/vms/102": {}}));
}

#[test]
fn pve9_mode_uses_the_pve9_schema_and_version() {
    let lab = Lab::start_with(0, &["--pve", "9"]);
    let v = lab.ok("GET", "/version", &[]);
    assert_eq!(v["release"], "9.1", "{v}");
    let st = lab.ok("GET", "/nodes/pve/status", &[]);
    assert!(
        st["pveversion"]
            .as_str()
            .unwrap()
            .starts_with("pve-manager/9.1."),
        "{st}"
    );
    // `entrypoint` exists only in the 9.1 schema: it passes validation here (and fails later,
    // in the handler, on the missing template), where PVE 8 refuses the parameter itself.
    let tpl = format!("local:vztmpl/{TEMPLATE}");
    let r = lab.call(
        "POST",
        "/nodes/pve/lxc",
        &[
            ("vmid", "150"),
            ("ostemplate", &tpl),
            ("entrypoint", "/sbin/init"),
            ("bogus", "1"),
        ],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["errors"].get("entrypoint").is_none(), "{r:?}");
    assert!(r.body["errors"].get("bogus").is_some(), "{r:?}");
}

#[test]
fn background_up_status_and_down_are_idempotent() {
    lab_harness::require_root();
    let _serial = lab_harness::serial();
    let state = tempfile::Builder::new()
        .prefix("pve-lab-up-")
        .tempdir()
        .unwrap();
    let port = lab_harness::free_port().to_string();
    let run = |args: &[&str]| {
        std::process::Command::new(lab_harness::bin())
            .arg("--state")
            .arg(state.path())
            .args(args)
            .output()
            .unwrap()
    };
    let net = [
        "--prefix",
        lab_harness::PREFIX,
        "--subnet",
        lab_harness::SUBNET,
    ];
    let mut up_args = vec![
        "up",
        "--yes",
        "--port",
        port.as_str(),
        "--auth-fail-delay-ms",
        "0",
    ];
    up_args.extend_from_slice(&net);
    let out = run(&up_args);
    let guard = Down(&run);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    let token_file = state.path().join("token");
    assert!(
        text.contains(&format!("--host https://127.0.0.1:{port}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("--token-file {}", token_file.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("export PATH={}/bin:$PATH", state.path().display())),
        "{text}"
    );
    let fp = std::fs::read_to_string(state.path().join("fingerprint")).unwrap();
    assert!(
        text.contains(&format!("--fingerprint {}", fp.trim())),
        "{text}"
    );
    let out = run(&["status"]);
    assert!(stdout(&out).contains("daemon: running"), "{}", stdout(&out));
    assert!(stdout(&out).contains("API answering"), "{}", stdout(&out));
    let out = run(&up_args);
    assert!(out.status.success());
    assert!(stdout(&out).contains("already running"), "{}", stdout(&out));
    let log = std::fs::read_to_string(state.path().join("pve-lab.log")).unwrap();
    assert!(log.contains("API on https://127.0.0.1:"), "{log}");
    for _ in 0..2 {
        let out = run(&["down"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("pve-lab is down"), "{}", stdout(&out));
    }
    let out = run(&["status"]);
    assert!(
        stdout(&out).contains("daemon: not running"),
        "{}",
        stdout(&out)
    );
    drop(guard);
}

/// Runs `down` when a test using a background lab fails halfway.
struct Down<'a, F: Fn(&[&str]) -> std::process::Output>(&'a F);

impl<F: Fn(&[&str]) -> std::process::Output> Drop for Down<'_, F> {
    fn drop(&mut self) {
        let _ = (self.0)(&["down"]);
    }
}
