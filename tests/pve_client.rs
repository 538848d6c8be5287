//! The PVE client against a real HTTPS server on 127.0.0.1 (fresh rcgen certificates):
//! authentication, TLS trust, task waiting, error mapping, lenient decoding and the
//! exact wire encoding of parameters.

#[path = "support/https_server.rs"]
mod https_server;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use https_server::{HttpsServer, RecordedRequest, Reply, TestPki};
use launch::pve::{
    requests, ApiToken, Auth, Client, ContentType, CreateCt, CtConfigUpdate, Features, Fingerprint,
    HttpsTransport, IpConfig, ManualClock, NetConfig, PveError, ResourceType, RootFs, Secret,
    TlsMode, Upid, TOKEN_ENV_VAR,
};
use serde_json::json;

const TOKEN: &str = "launch@pve!ci=5f3b2a9e-1c4d-4e8f-9a7b-0c1d2e3f4a5b";
const TOKEN_SECRET: &str = "5f3b2a9e-1c4d-4e8f-9a7b-0c1d2e3f4a5b";

fn token() -> ApiToken {
    TOKEN.parse().expect("test token parses")
}

fn pinned(srv: &HttpsServer) -> TlsMode {
    TlsMode::Pinned(
        srv.fingerprint()
            .parse()
            .expect("server fingerprint parses"),
    )
}

fn token_client(srv: &HttpsServer) -> Client {
    let t = HttpsTransport::new(&srv.host(), Auth::Token(token()), pinned(srv)).expect("transport");
    Client::new(Box::new(t))
}

fn version_reply() -> Reply {
    Reply::data(json!({"version": "8.4.1", "release": "8.4", "repoid": "2a5fa54a8503f96d"}))
}

fn sample_ct() -> CreateCt {
    CreateCt {
        vmid: 101,
        ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst".into(),
        hostname: "vikunja".into(),
        cores: 2,
        memory: 1024,
        swap: 512,
        rootfs: RootFs {
            storage: "local-lvm".into(),
            size_gib: 8,
        },
        net0: NetConfig {
            name: "eth0".into(),
            bridge: "vmbr0".into(),
            ip: IpConfig::Static {
                cidr: "192.168.1.50/24".into(),
                gw: Some("192.168.1.1".parse().unwrap()),
            },
            tag: Some(20),
            mtu: Some(1450),
            firewall: true,
        },
        features: Features { nesting: true },
        tags: vec!["launch".into(), "vikunja".into()],
        description: Some("Launch: vikunja\nline 2 & x=y; 100% +plus ü".into()),
        onboot: true,
        start: false,
        nameserver: vec!["1.1.1.1".into(), "9.9.9.9".into()],
        searchdomain: Some("home.arpa".into()),
        ssh_public_keys: Some(
            "ssh-ed25519 AAAAC3Nza admin@laptop\nssh-ed25519 AAAAC3Nzb ci@runner".into(),
        ),
        password: Some(Secret::new("hunter2-secret")),
        timezone: Some("Europe/Berlin".into()),
    }
}

const UPID_CREATE: &str = "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:launch@pve!ci:";

// ---------------------------------------------------------------- authentication

#[test]
fn token_header_is_sent_exactly_and_nothing_else() {
    let srv = HttpsServer::start(|r| match r.line().as_str() {
        "GET /version" => version_reply(),
        _ => Reply::pve_error(501, "Method not implemented", None),
    });
    let c = token_client(&srv);
    let v = c.version().expect("version");
    assert_eq!((v.version.as_str(), v.major()), ("8.4.1", Some(8)));
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].line(), "GET /version");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("PVEAPIToken={TOKEN}").as_str())
    );
    assert_eq!(reqs[0].header("cookie"), None);
    assert_eq!(reqs[0].header("csrfpreventiontoken"), None);
}

#[test]
fn token_secret_never_shows_in_debug_display_or_errors() {
    let t = token();
    assert_eq!(t.full_id(), "launch@pve!ci");
    assert_eq!(t.secret().expose(), TOKEN_SECRET);
    for shown in [
        format!("{t:?}"),
        format!("{t}"),
        format!("{:?}", Auth::Token(t.clone())),
        format!("{:?}", t.secret()),
    ] {
        assert!(!shown.contains(TOKEN_SECRET), "secret leaked: {shown}");
    }
    assert!(format!("{t}").contains("launch@pve!ci"));

    // Bad token strings: the error names the problem, never the secret.
    for bad in [
        "launch@pve!ci",
        &format!("launch@pve={TOKEN_SECRET}"),
        &format!("launch!ci={TOKEN_SECRET}"),
        &format!("launch@pve!c i={TOKEN_SECRET}"),
        "launch@pve!ci=",
        &format!("launch@pve!ci=abc {TOKEN_SECRET}"),
    ] {
        let e = bad.parse::<ApiToken>().expect_err(bad);
        let text = e.to_string();
        assert!(matches!(e, PveError::InvalidToken { .. }), "{bad}: {e:?}");
        assert!(
            !text.contains(TOKEN_SECRET) && !format!("{e:?}").contains(TOKEN_SECRET),
            "{text}"
        );
        assert!(
            text.contains("help: a token looks like USER@REALM!TOKENID=SECRET"),
            "{text}"
        );
    }

    // A rejected token: 401 with an empty body, as PVE answers.
    let srv = HttpsServer::start(|_| Reply::empty(401));
    let t = HttpsTransport::new(&srv.host(), Auth::Token(token()), pinned(&srv)).unwrap();
    assert!(!format!("{t:?}").contains(TOKEN_SECRET));
    let e = Client::new(Box::new(t)).version().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PveError::Unauthorized { .. }), "{e:?}");
    assert!(
        text.starts_with("authentication failed for GET /version"),
        "{text}"
    );
    assert!(
        text.contains(
            "help: check the API token (USER@REALM!TOKENID=SECRET) and that it is not expired"
        ),
        "{text}"
    );
    assert!(!text.contains(TOKEN_SECRET) && !format!("{e:?}").contains(TOKEN_SECRET));
}

#[test]
fn token_file_must_be_private_and_env_var_works() {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    writeln!(f, "  {TOKEN}  ").unwrap();
    drop(f);
    assert_eq!(ApiToken::from_file(&path).unwrap(), token());

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = ApiToken::from_file(&path).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, PveError::TokenFileMode { mode: 0o644, .. }),
        "{e:?}"
    );
    assert!(
        text.contains(&format!("help: chmod 600 {}", path.display())),
        "{text}"
    );
    assert!(text.contains("0644"), "{text}");

    let e = ApiToken::from_file(&dir.path().join("missing")).unwrap_err();
    assert!(
        e.to_string().contains("missing") && e.to_string().contains("help:"),
        "{e}"
    );

    assert_eq!(TOKEN_ENV_VAR, "LAUNCH_PVE_TOKEN");
    // A name of its own, so parallel tests never race on the real variable.
    let var = "LAUNCH_PVE_TOKEN_TEST_ONLY_7f1c";
    assert_eq!(ApiToken::from_env(var).unwrap(), None);
    std::env::set_var(var, TOKEN);
    assert_eq!(ApiToken::from_env(var).unwrap(), Some(token()));
    std::env::set_var(var, "garbage");
    assert!(ApiToken::from_env(var).is_err());
    std::env::remove_var(var);
}

const TICKET_1: &str = "PVE:root@pam:66A1B2C3::c2lnbmF0dXJlLW9uZQ==";
const TICKET_2: &str = "PVE:root@pam:66A1D000::c2lnbmF0dXJlLXR3bw==";
const PASSWORD: &str = "correct horse battery";

/// A fake pveproxy that issues two tickets and enforces cookie + CSRF like PVE does.
fn ticket_server() -> HttpsServer {
    HttpsServer::start(|r| {
        let sessions = [
            (TICKET_1, "66A1B2C3:csrf-one"),
            (TICKET_2, "66A1D000:csrf-two"),
        ];
        if r.line() == "POST /access/ticket" {
            let issue = |i: usize| {
                Reply::data(json!({"username": "root@pam", "ticket": sessions[i].0,
                    "CSRFPreventionToken": sessions[i].1, "cap": {}}))
            };
            return match (
                r.param("username").as_deref(),
                r.param("password").as_deref(),
            ) {
                (Some("root@pam"), Some(PASSWORD)) => issue(0),
                (Some("root@pam"), Some(TICKET_1)) => issue(1),
                _ => Reply::empty(401),
            };
        }
        let cookie = r.header("cookie").unwrap_or_default();
        let Some((_, csrf)) = sessions
            .iter()
            .find(|(t, _)| cookie == format!("PVEAuthCookie={t}"))
        else {
            return Reply::empty(401);
        };
        if r.method != "GET" && r.header("csrfpreventiontoken") != Some(*csrf) {
            return Reply::empty(401);
        }
        match r.line().as_str() {
            "GET /version" => version_reply(),
            "POST /nodes/pve/lxc/101/status/start" => Reply::data(json!(UPID_CREATE)),
            "PUT /nodes/pve/lxc/101/config" => Reply::data(json!(null)),
            "DELETE /nodes/pve/lxc/101" => Reply::data(json!(UPID_CREATE)),
            _ => Reply::pve_error(501, "Method not implemented", None),
        }
    })
}

#[test]
fn ticket_login_csrf_only_on_writes_and_renewal() {
    let srv = ticket_server();
    let clock = Arc::new(ManualClock::new());
    let auth = Auth::Ticket {
        username: "root@pam".into(),
        password: Secret::new(PASSWORD),
    };
    let t = HttpsTransport::new(&srv.host(), auth, pinned(&srv))
        .unwrap()
        .with_clock(clock.clone());
    assert!(!format!("{t:?}").contains(PASSWORD));
    let c = Client::new(Box::new(t));

    c.version().expect("GET after login");
    c.start_ct("pve", 101).expect("POST");
    let upd = CtConfigUpdate {
        cores: Some(4),
        ..Default::default()
    };
    c.update_ct_config("pve", 101, &upd).expect("PUT");
    c.delete_ct("pve", 101, true, false).expect("DELETE");

    let reqs = srv.requests();
    let lines: Vec<String> = reqs.iter().map(RecordedRequest::line).collect();
    assert_eq!(
        lines,
        [
            "POST /access/ticket",
            "GET /version",
            "POST /nodes/pve/lxc/101/status/start",
            "PUT /nodes/pve/lxc/101/config",
            "DELETE /nodes/pve/lxc/101"
        ]
    );
    assert_eq!(
        reqs[0].form(),
        [
            ("username".into(), "root@pam".into()),
            ("password".into(), PASSWORD.into())
        ]
    );
    assert_eq!(reqs[0].header("cookie"), None);
    assert_eq!(
        reqs[1].header("csrfpreventiontoken"),
        None,
        "no CSRF header on GET"
    );
    for r in &reqs[1..] {
        assert_eq!(
            r.header("cookie"),
            Some(format!("PVEAuthCookie={TICKET_1}").as_str())
        );
        assert_eq!(r.header("authorization"), None);
    }
    for r in &reqs[2..] {
        assert_eq!(
            r.header("csrfpreventiontoken"),
            Some("66A1B2C3:csrf-one"),
            "{}",
            r.line()
        );
    }
    assert_eq!(reqs[4].query_pairs(), [("purge".into(), "1".into())]);

    // Just under the renewal threshold: the ticket is reused.
    srv.clear();
    clock.advance(Duration::from_secs(104 * 60));
    c.version().unwrap();
    assert_eq!(
        srv.requests()
            .iter()
            .map(RecordedRequest::line)
            .collect::<Vec<_>>(),
        ["GET /version"]
    );

    // Past it: renewed by posting the current ticket as the password, then used.
    srv.clear();
    clock.advance(Duration::from_secs(2 * 60));
    c.version().unwrap();
    c.start_ct("pve", 101).unwrap();
    let reqs = srv.requests();
    assert_eq!(
        reqs.iter().map(RecordedRequest::line).collect::<Vec<_>>(),
        [
            "POST /access/ticket",
            "GET /version",
            "POST /nodes/pve/lxc/101/status/start"
        ]
    );
    assert_eq!(reqs[0].param("password").as_deref(), Some(TICKET_1));
    assert_eq!(
        reqs[1].header("cookie"),
        Some(format!("PVEAuthCookie={TICKET_2}").as_str())
    );
    assert_eq!(
        reqs[2].header("csrfpreventiontoken"),
        Some("66A1D000:csrf-two")
    );
}

#[test]
fn a_ticket_the_node_no_longer_accepts_is_replaced_once() {
    // Tickets are numbered as issued; the test revokes them to mimic PVE's key rotation.
    let state = Arc::new(std::sync::Mutex::new((0usize, Vec::<String>::new())));
    let st = state.clone();
    let srv = HttpsServer::start(move |r| {
        let mut s = st.lock().unwrap();
        if r.line() == "POST /access/ticket" {
            if r.param("password").as_deref() != Some(PASSWORD) {
                return Reply::empty(401);
            }
            s.0 += 1;
            let t = format!("PVE:root@pam:{:08X}::c2ln", s.0);
            s.1.push(t.clone());
            return Reply::data(
                json!({"ticket": t, "CSRFPreventionToken": "c", "username": "root@pam"}),
            );
        }
        let ok =
            s.1.iter()
                .any(|t| r.header("cookie") == Some(format!("PVEAuthCookie={t}").as_str()));
        if ok {
            version_reply()
        } else {
            Reply::empty(401)
        }
    });
    let auth = Auth::Ticket {
        username: "root@pam".into(),
        password: Secret::new(PASSWORD),
    };
    let c = Client::new(Box::new(
        HttpsTransport::new(&srv.host(), auth, pinned(&srv)).unwrap(),
    ));
    c.version().unwrap();
    state.lock().unwrap().1.clear();
    c.version().expect("logs in again after a 401");
    let lines: Vec<String> = srv.requests().iter().map(RecordedRequest::line).collect();
    assert_eq!(
        lines,
        [
            "POST /access/ticket",
            "GET /version",
            "GET /version",
            "POST /access/ticket",
            "GET /version"
        ]
    );
    assert_eq!(state.lock().unwrap().0, 2);

    // A node that refuses every ticket: one retry, then the 401 surfaces.
    let srv = HttpsServer::start(|r| match r.line().as_str() {
        "POST /access/ticket" => {
            Reply::data(json!({"ticket": TICKET_1, "CSRFPreventionToken": "c"}))
        }
        _ => Reply::empty(401),
    });
    let auth = Auth::Ticket {
        username: "root@pam".into(),
        password: Secret::new(PASSWORD),
    };
    let c = Client::new(Box::new(
        HttpsTransport::new(&srv.host(), auth, pinned(&srv)).unwrap(),
    ));
    let e = c.version().unwrap_err();
    assert!(matches!(e, PveError::Unauthorized { .. }), "{e:?}");
    assert_eq!(srv.requests().len(), 4, "login, call, login, call");
}

#[test]
fn wrong_password_is_a_login_error_without_the_password() {
    let srv = ticket_server();
    let auth = Auth::Ticket {
        username: "root@pam".into(),
        password: Secret::new("wrong-password-xyz"),
    };
    let c = Client::new(Box::new(
        HttpsTransport::new(&srv.host(), auth, pinned(&srv)).unwrap(),
    ));
    let e = c.version().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PveError::LoginFailed { .. }), "{e:?}");
    assert!(
        text.contains("login as root@pam failed") && text.contains("help:"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-password-xyz") && !format!("{e:?}").contains("wrong-password-xyz")
    );
    assert_eq!(srv.requests().len(), 1, "no API call after a failed login");
}

// ---------------------------------------------------------------- TLS

#[test]
fn pinned_fingerprint_accepted_in_any_spelling() {
    let srv = HttpsServer::start(|_| version_reply());
    let fp: Fingerprint = srv.fingerprint().parse().unwrap();
    assert_eq!(
        fp.to_string(),
        srv.fingerprint(),
        "displayed like PVE: upper case with colons"
    );
    let loose = srv.fingerprint().replace(':', "").to_lowercase();
    assert_eq!(loose.parse::<Fingerprint>().unwrap(), fp);
    let t = HttpsTransport::new(
        &srv.host(),
        Auth::Token(token()),
        TlsMode::Pinned(loose.parse().unwrap()),
    )
    .unwrap();
    Client::new(Box::new(t))
        .version()
        .expect("pinned certificate accepted");

    for bad in ["AB:CD", "zz", &"AB:".repeat(33)] {
        let e = bad.parse::<Fingerprint>().unwrap_err();
        assert!(e.to_string().contains("help:"), "{e}");
    }
}

#[test]
fn a_different_pin_is_refused_before_any_request() {
    let srv = HttpsServer::start(|_| version_reply());
    let wrong = Fingerprint([0x11; 32]);
    let t = HttpsTransport::new(&srv.host(), Auth::Token(token()), TlsMode::Pinned(wrong)).unwrap();
    let e = Client::new(Box::new(t)).version().unwrap_err();
    match &e {
        PveError::FingerprintMismatch {
            expected, actual, ..
        } => {
            assert_eq!(*expected, wrong);
            assert_eq!(actual.to_string(), srv.fingerprint());
        }
        other => panic!("expected FingerprintMismatch, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains(srv.fingerprint()) && text.contains("help:"),
        "{text}"
    );
    assert!(
        srv.requests().is_empty(),
        "no request may pass a refused certificate"
    );
}

#[test]
fn system_roots_refuse_the_self_signed_node_and_say_how_to_pin() {
    let srv = HttpsServer::start(|_| version_reply());
    let t = HttpsTransport::new(&srv.host(), Auth::Token(token()), TlsMode::SystemRoots).unwrap();
    let e = Client::new(Box::new(t)).version().unwrap_err();
    match &e {
        PveError::UnknownCertificate { host, fingerprint } => {
            assert_eq!(fingerprint.to_string(), srv.fingerprint());
            assert_eq!(host, &srv.host());
        }
        other => panic!("expected UnknownCertificate, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "help: if this is your node's certificate, pin it: --fingerprint {}",
            srv.fingerprint()
        )),
        "{text}"
    );
    assert!(!text.contains(TOKEN_SECRET));
    assert!(srv.requests().is_empty());
}

#[test]
fn ca_file_with_the_node_ca_is_accepted_and_another_ca_is_not() {
    let srv = HttpsServer::start(|_| version_reply());
    let dir = tempfile::tempdir().unwrap();
    let ca = srv.pki.write_ca(dir.path());
    let t = HttpsTransport::new(&srv.host(), Auth::Token(token()), TlsMode::CaFile(ca)).unwrap();
    Client::new(Box::new(t))
        .version()
        .expect("CA-signed certificate accepted");

    let other_dir = tempfile::tempdir().unwrap();
    let other_ca = TestPki::generate().write_ca(other_dir.path());
    let t =
        HttpsTransport::new(&srv.host(), Auth::Token(token()), TlsMode::CaFile(other_ca)).unwrap();
    let e = Client::new(Box::new(t)).version().unwrap_err();
    assert!(matches!(e, PveError::UnknownCertificate { .. }), "{e:?}");

    let e = HttpsTransport::new(
        &srv.host(),
        Auth::Token(token()),
        TlsMode::CaFile(dir.path().join("nope.pem")),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("nope.pem") && e.to_string().contains("help:"),
        "{e}"
    );
}

#[test]
fn insecure_mode_connects_and_carries_a_warning() {
    let srv = HttpsServer::start(|_| version_reply());
    let t = HttpsTransport::new(&srv.host(), Auth::Token(token()), TlsMode::Insecure).unwrap();
    Client::new(Box::new(t))
        .version()
        .expect("insecure connects");
    let w = TlsMode::Insecure.warning().expect("insecure has a warning");
    assert!(
        w.contains("--insecure") && w.contains("--fingerprint"),
        "{w}"
    );
    assert_eq!(TlsMode::SystemRoots.warning(), None);
    assert_eq!(pinned(&srv).warning(), None);
}

#[test]
fn connection_refused_names_the_url_and_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{port}");
    let t = HttpsTransport::new(&host, Auth::Token(token()), TlsMode::Insecure).unwrap();
    let e = Client::new(Box::new(t)).version().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PveError::Connect { .. }), "{e:?}");
    assert!(
        text.contains(&format!("https://{host}/api2/json/version")),
        "{text}"
    );
    assert!(text.contains("help:"), "{text}");
    assert!(e.is_retryable());
}

// ---------------------------------------------------------------- UPIDs

#[test]
fn upid_parses_real_examples() {
    let u: Upid = "UPID:pve1:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:tool@pve!ci:"
        .parse()
        .unwrap();
    assert_eq!(u.node, "pve1");
    assert_eq!(u.pid, 0x000A_1B2C);
    assert_eq!(u.pstart, 0x0016_E3F4);
    assert_eq!(u.starttime, 0x6650_A1B2);
    assert_eq!(u.task_type, "vzcreate");
    assert_eq!(u.id, "101");
    assert_eq!(u.user, "tool@pve!ci");
    assert_eq!(
        u.to_string(),
        "UPID:pve1:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:tool@pve!ci:"
    );

    let u: Upid = "UPID:node-2:0000C3A5:1A2B3C4D5:66A1B2C3:vzdump:101:root@pam:"
        .parse()
        .unwrap();
    assert_eq!(u.pstart, 0x1_A2B3_C4D5, "9-digit pstart");
    assert_eq!(u.node, "node-2");

    let u: Upid = "UPID:pve:00001234:00abcdef:66000000:aptupdate::root@pam:"
        .parse()
        .unwrap();
    assert_eq!(u.id, "", "node-wide tasks have an empty id");
    assert_eq!(
        u.to_string(),
        "UPID:pve:00001234:00abcdef:66000000:aptupdate::root@pam:"
    );

    let u: Upid = "UPID:pve:0002F00D:0016E3F4:6650A1B2:download:debian-12-standard_12.7-1_amd64.tar.zst:root@pam:"
        .parse()
        .unwrap();
    assert_eq!(u.id, "debian-12-standard_12.7-1_amd64.tar.zst");

    let from_json: Upid = serde_json::from_value(json!(UPID_CREATE)).unwrap();
    assert_eq!(from_json.to_string(), UPID_CREATE);
    assert_eq!(
        serde_json::to_value(&from_json).unwrap(),
        json!(UPID_CREATE)
    );
}

#[test]
fn upid_rejects_bad_ones() {
    for bad in [
        "",
        "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:root@pam",
        "UPID:pve:0A1B2C:0016E3F4:6650A1B2:vzcreate:101:root@pam:",
        "UPID:pve:000A1B2C:0016E3F4AB:6650A1B2:vzcreate:101:root@pam:",
        "UPID:-pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:root@pam:",
        "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vz/create:101:root@pam:",
        "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:1 01:root@pam:",
        "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101::",
        "upid:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:root@pam:",
        "UPID:pve:000G1B2C:0016E3F4:6650A1B2:vzcreate:101:root@pam:",
    ] {
        let e = bad.parse::<Upid>().expect_err(bad);
        let text = e.to_string();
        assert!(text.contains("help: copy the whole UPID"), "{bad}: {text}");
    }
    assert!(serde_json::from_value::<Upid>(json!("UPID:nope")).is_err());
}

// ---------------------------------------------------------------- tasks

/// Serves task status from a script (one entry per poll, the last repeats) and a fixed log.
fn task_server(statuses: Vec<serde_json::Value>, log: Vec<String>) -> HttpsServer {
    let polls = AtomicUsize::new(0);
    HttpsServer::start(move |r| {
        let path = r.api_path();
        if path.ends_with("/status") && path.starts_with("/nodes/pve/tasks/UPID:") {
            let i = polls.fetch_add(1, Ordering::SeqCst).min(statuses.len() - 1);
            return Reply::data(statuses[i].clone());
        }
        if path.ends_with("/log") {
            let start: usize = r.param("start").and_then(|s| s.parse().ok()).unwrap_or(0);
            let limit: usize = r.param("limit").and_then(|s| s.parse().ok()).unwrap_or(50);
            let lines: Vec<_> = log
                .iter()
                .enumerate()
                .skip(start)
                .take(limit)
                .map(|(i, t)| json!({"n": i + 1, "t": t}))
                .collect();
            return Reply::data(json!(lines));
        }
        Reply::pve_error(501, "Method not implemented", None)
    })
}

fn status(state: &str, exit: Option<&str>) -> serde_json::Value {
    let mut v = json!({"status": state, "upid": UPID_TASK, "node": "pve", "type": "vzcreate", "id": "101",
        "user": "launch@pve!ci", "pid": 662316, "pstart": "1500404", "starttime": 1716560306});
    if let Some(e) = exit {
        v["exitstatus"] = json!(e);
    }
    v
}

const UPID_TASK: &str = "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:launch@pve!ci:";

#[test]
fn failed_task_reports_exitstatus_and_log_tail() {
    let mut log: Vec<String> = (1..=14).map(|i| format!("step {i:02}")).collect();
    log.push("TASK ERROR: unable to create CT 101 - no space left on device".into());
    let exit = "unable to create CT 101 - no space left on device";
    let srv = task_server(
        vec![
            status("running", None),
            status("running", None),
            status("stopped", Some(exit)),
        ],
        log,
    );
    let clock = Arc::new(ManualClock::new());
    let c = token_client(&srv).with_clock(clock.clone());
    let upid: Upid = UPID_TASK.parse().unwrap();
    let mut progress = Vec::new();
    let e = c
        .wait_task(&upid, Duration::from_secs(600), &mut |p| {
            progress.push(p.clone())
        })
        .unwrap_err();
    match &e {
        PveError::TaskFailed {
            exitstatus,
            log_tail,
            ..
        } => {
            assert_eq!(exitstatus, exit);
            assert_eq!(log_tail.len(), 10);
            assert_eq!(log_tail[0], "step 06");
            assert_eq!(
                log_tail[9],
                "TASK ERROR: unable to create CT 101 - no space left on device"
            );
        }
        other => panic!("expected TaskFailed, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("task {UPID_TASK} failed: {exit}")),
        "{text}"
    );
    assert!(
        text.contains("step 14") && text.contains("step 06") && !text.contains("step 05"),
        "{text}"
    );

    assert_eq!(
        clock.sleeps(),
        [Duration::from_millis(200), Duration::from_millis(400)]
    );
    assert_eq!(progress.len(), 3);
    assert!(progress[0].running && progress[1].running && !progress[2].running);
    assert_eq!(
        progress[0].new_lines.len(),
        15,
        "the whole log arrives on the first poll"
    );
    assert!(progress[1].new_lines.is_empty());
    assert_eq!(
        srv.requests()[0].api_path(),
        format!("/nodes/pve/tasks/{UPID_TASK}/status"),
        "status is asked of the UPID's node, UPID verbatim in the path"
    );
}

#[test]
fn warnings_succeed_and_are_surfaced() {
    let log = vec![
        "extracting archive".to_string(),
        "WARN: old systemd in CT, consider upgrading".to_string(),
        "WARN: template has no /etc/hostname".to_string(),
        "TASK WARNINGS: 2".to_string(),
    ];
    let srv = task_server(vec![status("stopped", Some("WARNINGS: 2"))], log);
    let c = token_client(&srv).with_clock(Arc::new(ManualClock::new()));
    let out = c
        .wait_task(
            &UPID_TASK.parse().unwrap(),
            Duration::from_secs(60),
            &mut |_| {},
        )
        .expect("warnings are success");
    assert_eq!(out.warnings, 2);
    assert_eq!(out.exitstatus, "WARNINGS: 2");
    assert_eq!(out.warning_lines.len(), 2);
    assert_eq!(out.log.len(), 4);

    let srv = task_server(vec![status("stopped", Some("OK"))], vec!["TASK OK".into()]);
    let c = token_client(&srv).with_clock(Arc::new(ManualClock::new()));
    let out = c
        .wait_task(
            &UPID_TASK.parse().unwrap(),
            Duration::from_secs(60),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((out.warnings, out.log), (0, vec!["TASK OK".to_string()]));
}

#[test]
fn a_task_that_never_ends_times_out_after_backing_off() {
    let srv = task_server(vec![status("running", None)], vec![]);
    let clock = Arc::new(ManualClock::new());
    let c = token_client(&srv).with_clock(clock.clone());
    let e = c
        .wait_task(
            &UPID_TASK.parse().unwrap(),
            Duration::from_secs(5),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(e, PveError::TaskTimeout { .. }), "{e:?}");
    assert!(e.to_string().contains("help:"));
    let ms: Vec<u128> = clock.sleeps().iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [200, 400, 800, 1600, 2000]);
}

// ---------------------------------------------------------------- error mapping

fn error_server() -> HttpsServer {
    HttpsServer::start(|r| match r.line().as_str() {
        "POST /nodes/e400/lxc" => Reply::pve_error(
            400,
            "Parameter verification failed.",
            Some(json!({
                "net0": "invalid format - format error\nnet0.ip: invalid format - value does not look like a valid ipv4 network configuration\n",
                "hostname": "value does not match the regex pattern",
            })),
        ),
        "POST /nodes/e400pw/lxc" => Reply::pve_error(
            400,
            "Parameter verification failed.",
            Some(json!({"password": "value 'hunter2-secret' is in the list of weak passwords"})),
        ),
        "GET /nodes/e401/lxc" => Reply::empty(401),
        "GET /nodes/e403/lxc" => {
            Reply::pve_error(403, "Permission check failed (/vms/101, VM.Allocate)", None)
        }
        "GET /nodes/e403any/lxc" => Reply::pve_error(
            403,
            "Permission check failed (/, Sys.Audit|Sys.Modify)",
            None,
        ),
        "GET /nodes/e403bare/lxc" => Reply::pve_error(403, "Permission check failed", None),
        "GET /nodes/e501/lxc" => {
            Reply::pve_error(501, "Method 'GET /nodes/e501/lxc' not implemented", None)
        }
        "GET /nodes/e595/lxc" => Reply::pve_error(595, "Connection refused", None),
        "GET /nodes/e500t/lxc" => Reply::pve_error(
            500,
            "can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout",
            None,
        ),
        "GET /nodes/e500/lxc" => {
            Reply::pve_error(500, "CT 101 already exists on node 'e500'", None)
        }
        "GET /nodes/bad/lxc" => Reply::data(json!({"not": "a list"})),
        _ => Reply::pve_error(501, "Method not implemented", None),
    })
}

#[test]
fn bad_request_shows_each_parameter_error_on_its_own_line() {
    let srv = error_server();
    let c = token_client(&srv);
    let e = c.create_ct("e400", &sample_ct()).unwrap_err();
    let text = e.to_string();
    match &e {
        PveError::BadRequest {
            message, errors, ..
        } => {
            assert_eq!(message, "Parameter verification failed.");
            assert_eq!(errors.len(), 2);
        }
        other => panic!("expected BadRequest, got {other:?}"),
    }
    let expected = "PVE rejected POST /nodes/e400/lxc: Parameter verification failed.\n  \
                    hostname: value does not match the regex pattern\n  \
                    net0: invalid format - format error\n  \
                    net0.ip: invalid format - value does not look like a valid ipv4 network configuration";
    assert_eq!(text, expected);
    assert!(!e.is_retryable());

    // PVE echoing the password back never reaches the user.
    let e = c.create_ct("e400pw", &sample_ct()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("password: value '<redacted>'"), "{text}");
    assert!(!text.contains("hunter2-secret") && !format!("{e:?}").contains("hunter2-secret"));
}

#[test]
fn status_codes_map_to_clear_errors() {
    let srv = error_server();
    let c = token_client(&srv);
    let err = |node: &str| c.cts(node).unwrap_err();

    let e = err("e401");
    assert!(matches!(e, PveError::Unauthorized { .. }), "{e:?}");
    assert!(e.to_string().contains("help: check the API token"), "{e}");

    let e = err("e403");
    match &e {
        PveError::Forbidden {
            missing: Some(m), ..
        } => {
            assert_eq!(m.acl_path, "/vms/101");
            assert_eq!(m.privileges, ["VM.Allocate"]);
        }
        other => panic!("expected Forbidden with a privilege, got {other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("missing privilege: VM.Allocate on /vms/101"),
        "{text}"
    );
    assert!(
        text.contains("help: grant the token a role with VM.Allocate on /vms/101"),
        "{text}"
    );

    let e = err("e403any");
    assert!(
        e.to_string().contains("Sys.Audit or Sys.Modify on /"),
        "{e}"
    );
    let e = err("e403bare");
    assert!(
        matches!(e, PveError::Forbidden { missing: None, .. }) && e.to_string().contains("help:"),
        "{e}"
    );

    let e = err("e501");
    assert!(matches!(e, PveError::NotImplemented { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("Method 'GET /nodes/e501/lxc' not implemented")
            && e.to_string().contains("help:")
    );

    let e = err("e595");
    assert!(
        matches!(e, PveError::NodeUnreachable { status: 595, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());

    let e = err("e500t");
    assert!(
        matches!(e, PveError::Api { status: 500, .. }) && e.is_retryable(),
        "{e:?}"
    );
    let e = err("e500");
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "GET /nodes/e500/lxc failed (HTTP 500): CT 101 already exists on node 'e500'"
    );

    let e = err("bad");
    assert!(matches!(e, PveError::Decode { .. }), "{e:?}");
    assert!(e.to_string().contains("GET /nodes/bad/lxc"), "{e}");
}

#[test]
fn invalid_input_is_refused_before_sending() {
    let srv = error_server();
    let c = token_client(&srv);
    let mut ct = sample_ct();
    ct.net0.bridge = "vmbr0,ip=dhcp".into();
    let e = c.create_ct("pve", &ct).unwrap_err();
    assert!(
        matches!(e, PveError::InvalidInput { what: "bridge", .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("`vmbr0,ip=dhcp`") && e.to_string().contains("help:"),
        "{e}"
    );

    let mut ct = sample_ct();
    ct.password = Some(Secret::new("abc"));
    let e = c.create_ct("pve", &ct).unwrap_err();
    assert!(!e.to_string().contains("`abc`"), "{e}");

    assert!(matches!(
        c.ct_status("../x", 101),
        Err(PveError::InvalidInput { .. })
    ));
    assert!(matches!(
        c.ct_status("pve", 99),
        Err(PveError::InvalidInput { .. })
    ));
    assert!(matches!(
        c.create_snapshot("pve", 101, "1bad", None),
        Err(PveError::InvalidInput { .. })
    ));
    assert!(srv.requests().is_empty());
}

// ---------------------------------------------------------------- lenient decoding

#[test]
fn lenient_decoding_of_numbers_and_booleans() {
    let nextid_calls = AtomicUsize::new(0);
    let srv = HttpsServer::start(
        move |r| match (r.line().as_str(), r.param("vmid").as_deref()) {
            ("GET /cluster/nextid", None) => {
                // PVE has sent both forms over the years.
                if nextid_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reply::data(json!("105"))
                } else {
                    Reply::data(json!(105))
                }
            }
            ("GET /cluster/nextid", Some("100")) => Reply::pve_error(
                400,
                "Parameter verification failed.",
                Some(json!({"vmid": "VM 100 already exists"})),
            ),
            ("GET /cluster/nextid", Some(v)) => Reply::data(json!(v)),
            ("GET /nodes/pve/lxc/101/status/current", _) => Reply::data(json!({
                "vmid": "101", "status": "running", "name": "vikunja", "cpus": "2", "cpu": 0.0123,
                "mem": "123456789", "maxmem": 1073741824u64, "uptime": "3600", "template": "0",
                "ha": {"managed": 0}, "tags": "launch;vikunja", "netin": 10, "netout": "20"
            })),
            ("GET /nodes/pve/lxc/102/status/current", _) => Reply::data(json!({
                "vmid": 102, "status": "stopped", "template": true, "ha": {"managed": "1", "state": "started"}
            })),
            ("GET /nodes/pve/lxc/101/config", _) => Reply::data(json!({
                "digest": "6b0f3d1e0c8e2b6b1c5c3f0f3a0d8b7b0b6d8a1c", "hostname": "vikunja", "memory": "512",
                "swap": 512, "cores": "2", "onboot": "1", "unprivileged": 1, "features": "nesting=1",
                "net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth",
                "lxc.idmap": "u 0 100000 65536", "tags": "launch"
            })),
            ("GET /nodes/pve/status", _) => Reply::data(json!({
                "pveversion": "pve-manager/8.4.1/2a5fa54a8503f96d", "uptime": 12345,
                "loadavg": ["0.10", "0.20", "0.30"], "cpu": "0.05",
                "memory": {"total": "16000000000", "used": 8000000000u64, "free": 8000000000u64},
                "cpuinfo": {"model": "AMD EPYC", "cpus": 8, "cores": "4", "sockets": 1, "mhz": "2994.374"},
                "current-kernel": {"sysname": "Linux", "release": "6.8.12-4-pve"}
            })),
            ("GET /cluster/resources", _) => Reply::data(json!([
                {"id": "lxc/101", "type": "lxc", "node": "pve", "vmid": "101", "status": "running",
                 "template": 0, "maxmem": "1073741824", "tags": "launch;vikunja"},
                {"id": "qemu/200", "type": "qemu", "node": "pve", "vmid": 200, "template": true}
            ])),
            ("GET /nodes/pve/storage", _) => Reply::data(json!([
                {"storage": "local", "type": "dir", "content": "vztmpl,iso,backup", "active": 1,
                 "enabled": "1", "shared": 0, "total": "100", "used": 40, "avail": "60", "used_fraction": "0.4"}
            ])),
            ("GET /nodes/pve/lxc/101/interfaces", _) => Reply::data(json!([
                {"name": "eth0", "hwaddr": "bc:24:11:00:00:01", "inet": "192.168.1.50/24",
                 "ip-addresses": [{"ip-address": "192.168.1.50", "ip-address-type": "inet", "prefix": "24"}]}
            ])),
            _ => Reply::pve_error(501, "Method not implemented", None),
        },
    );
    let c = token_client(&srv);

    assert_eq!(c.next_id().unwrap(), 105, "numeric string");
    assert_eq!(c.next_id().unwrap(), 105, "number");
    assert!(!c.vmid_available(100).unwrap(), "a taken id is Ok(false)");
    assert!(c.vmid_available(101).unwrap());

    let s = c.ct_status("pve", 101).unwrap();
    assert!(s.is_running());
    assert_eq!(
        (s.vmid, s.cpus, s.mem, s.uptime),
        (Some(101), Some(2.0), Some(123_456_789), Some(3600))
    );
    assert_eq!(
        (s.template, s.ha.as_ref().map(|h| h.managed)),
        (Some(false), Some(false))
    );
    assert_eq!(s.netout, Some(20));
    let s = c.ct_status("pve", 102).unwrap();
    assert!(!s.is_running());
    assert_eq!(
        (s.template, s.ha.map(|h| h.managed)),
        (Some(true), Some(true))
    );

    let cfg = c.ct_config("pve", 101).unwrap();
    assert_eq!(
        (cfg.memory, cfg.swap, cfg.cores),
        (Some(512), Some(512), Some(2))
    );
    assert_eq!((cfg.onboot, cfg.unprivileged), (Some(true), Some(true)));
    assert_eq!(
        cfg.net(0),
        Some("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,type=veth")
    );
    assert_eq!(cfg.net(1), None);
    assert_eq!(cfg.other.get("lxc.idmap"), Some(&json!("u 0 100000 65536")));

    let n = c.node_status("pve").unwrap();
    assert_eq!(n.loadavg, [0.1, 0.2, 0.3]);
    assert_eq!(n.memory.unwrap().total, Some(16_000_000_000));
    assert_eq!(n.cpuinfo.unwrap().mhz.as_deref(), Some("2994.374"));

    let res = c.cluster_resources(Some(ResourceType::Vm)).unwrap();
    assert_eq!(
        (res[0].vmid, res[0].template, res[0].maxmem),
        (Some(101), Some(false), Some(1_073_741_824))
    );
    assert_eq!(res[0].tag_list(), ["launch", "vikunja"]);
    assert_eq!(res[1].template, Some(true));

    let st = c
        .storages("pve", &[ContentType::Vztmpl, ContentType::Backup])
        .unwrap();
    assert_eq!(
        (st[0].active, st[0].enabled, st[0].shared),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(
        (st[0].total, st[0].avail, st[0].used_fraction),
        (Some(100), Some(60), Some(0.4))
    );
    assert!(st[0].holds(ContentType::Vztmpl) && !st[0].holds(ContentType::Rootdir));

    let ifs = c.ct_interfaces("pve", 101).unwrap();
    assert_eq!(ifs[0].ip_addresses[0].prefix, Some(24));

    let reqs = srv.requests();
    let find = |line: &str| reqs.iter().find(|r| r.line() == line).cloned().unwrap();
    assert_eq!(find("GET /cluster/resources").query, "type=vm");
    assert_eq!(
        find("GET /nodes/pve/storage").query,
        "content=vztmpl%2Cbackup"
    );
}

// ---------------------------------------------------------------- wire encoding

#[test]
fn form_encoding_round_trips_exactly() {
    let srv = HttpsServer::start(|r| match r.method.as_str() {
        "GET" if r.api_path().ends_with("/content") => Reply::data(json!([
            {"volid": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst", "content": "vztmpl",
             "format": "tzst", "size": "126516492", "ctime": 1716560306}
        ])),
        "PUT" => Reply::data(json!(null)),
        _ => Reply::data(json!(UPID_CREATE)),
    });
    let c = token_client(&srv);
    let ct = sample_ct();

    let upid = c.create_ct("pve", &ct).unwrap();
    assert_eq!(upid.to_string(), UPID_CREATE);
    let items = c
        .storage_content("pve", "local", Some(ContentType::Vztmpl))
        .unwrap();
    assert_eq!(items[0].size, Some(126_516_492));
    c.shutdown_ct("pve", 101, Some(30), true).unwrap();
    c.delete_ct("pve", 101, true, true).unwrap();
    let mut upd = CtConfigUpdate {
        digest: Some("6b0f3d1e".into()),
        onboot: Some(false),
        description: Some("a & b\nc=d".into()),
        delete: vec!["net1".into(), "mp0".into()],
        ..Default::default()
    };
    upd.net.insert(1, ct.net0.clone());
    c.update_ct_config("pve", 101, &upd).unwrap();

    let reqs = srv.requests();
    let create = &reqs[0];
    assert_eq!(create.line(), "POST /nodes/pve/lxc");
    assert_eq!(
        create.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(create.query.is_empty());
    let expected: Vec<(String, String)> = [
        ("vmid", "101"),
        (
            "ostemplate",
            "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        ),
        ("hostname", "vikunja"),
        ("unprivileged", "1"),
        ("cores", "2"),
        ("memory", "1024"),
        ("swap", "512"),
        ("rootfs", "local-lvm:8"),
        (
            "net0",
            "name=eth0,bridge=vmbr0,ip=192.168.1.50/24,gw=192.168.1.1,tag=20,mtu=1450,firewall=1",
        ),
        ("features", "nesting=1"),
        ("tags", "launch;vikunja"),
        ("description", "Launch: vikunja\nline 2 & x=y; 100% +plus ü"),
        ("onboot", "1"),
        ("start", "0"),
        ("nameserver", "1.1.1.1 9.9.9.9"),
        ("searchdomain", "home.arpa"),
        (
            "ssh-public-keys",
            "ssh-ed25519 AAAAC3Nza admin@laptop\nssh-ed25519 AAAAC3Nzb ci@runner",
        ),
        ("password", "hunter2-secret"),
        ("timezone", "Europe/Berlin"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(create.form(), expected);
    // PVE splits the body on `&` and `;` before decoding, so both must arrive escaped.
    let raw = String::from_utf8(create.body.clone()).unwrap();
    assert!(
        raw.contains("description=Launch%3A+vikunja%0Aline+2+%26+x%3Dy%3B+100%25+%2Bplus+%C3%BC&"),
        "{raw}"
    );

    assert_eq!(reqs[1].line(), "GET /nodes/pve/storage/local/content");
    assert_eq!(
        (reqs[1].query.as_str(), reqs[1].body.is_empty()),
        ("content=vztmpl", true)
    );
    assert_eq!(reqs[2].line(), "POST /nodes/pve/lxc/101/status/shutdown");
    assert_eq!(
        String::from_utf8_lossy(&reqs[2].body),
        "timeout=30&forceStop=1"
    );
    assert_eq!(reqs[3].line(), "DELETE /nodes/pve/lxc/101");
    assert_eq!(
        (reqs[3].query.as_str(), reqs[3].body.is_empty()),
        ("purge=1&force=1", true)
    );
    assert_eq!(reqs[4].line(), "PUT /nodes/pve/lxc/101/config");
    let form: BTreeMap<String, String> = reqs[4].form().into_iter().collect();
    assert_eq!(form["digest"], "6b0f3d1e");
    assert_eq!(form["onboot"], "0");
    assert_eq!(form["description"], "a & b\nc=d");
    assert_eq!(
        form["net1"],
        "name=eth0,bridge=vmbr0,ip=192.168.1.50/24,gw=192.168.1.1,tag=20,mtu=1450,firewall=1"
    );
    assert_eq!(form["delete"], "net1,mp0");
    assert_eq!(form.len(), 5);

    // The request value itself never shows the password.
    let dbg = format!("{:?}", requests::lxc_create("pve", &ct));
    assert!(
        dbg.contains("unprivileged") && !dbg.contains("hunter2-secret"),
        "{dbg}"
    );
    assert!(!format!("{ct:?}").contains("hunter2-secret"));
}
