//! End to end: automatic HTTPS (`tls=acme`) through the real binary against pve-lab, with a
//! real ACME CA: `reconfigure --set tls=acme`, the answers file's `tls: acme` at install, the
//! renewal script the timer runs, `status`, `backup` and `restore`.
//!
//! Real: the launch-tui binary; a Debian 12 container (systemd-nspawn) with systemd, Debian's
//! nginx, and Debian's `lego` 4.9.1, jq and curl installed in it by apt; Debian's `pebble` 2.4.0
//! (Let's Encrypt's RFC 8555 test CA, with its own test root) on the host, listening on the lab
//! bridge's address so the container reaches it; pebble's HTTP-01 validation fetching the token
//! from the container's nginx on port 80, and its DNS-01 validation reading the TXT record; a
//! rustls client on the host trusting only pebble's root, and `openssl s_client` for the serial
//! of the certificate nginx serves.
//! Stood in:
//! - public DNS for HTTP-01: Debian's `pebble-challtestsrv` (DNS on loopback, asked by pebble;
//!   the test sets A records through its management API);
//! - public DNS for DNS-01: a tiny authoritative DNS server of the test's own on the lab
//!   bridge's port 53 (zone `lab.example`: SOA, NS, A, TXT), asked by a second pebble and by
//!   lego (`acme_dns_resolvers`); challtestsrv cannot serve here (SOA queries get NOTIMP);
//! - Cloudflare's API v4: the part the DNS-01 hook uses (zone by name, TXT records listed,
//!   created, deleted; bearer token checked), an HTTPS server of the test's own on the lab
//!   bridge's port 443 that writes into the DNS stand-in. The container reaches it as
//!   api.cloudflare.com through a line the test adds to its /etc/hosts, and trusts its test CA
//!   through update-ca-certificates (test setup inside the container, not Launch's doing);
//! - the TLS certificate of pebble's own HTTPS endpoint, signed by a CA the test makes and
//!   given to launch-tui with `acme_ca_file`, as an admin of a private CA would;
//! - Proxmox VE (pve-lab) and the Vikunja releases (fixture v1.0.0 and v2.0.0 over loopback).
//!
//! Not covered: Let's Encrypt itself, real Cloudflare, the timer firing (its unit is enabled and
//! runs the same script the test runs).
//!
//! One scenario in one test: container tests must not run in parallel on one bridge.

#[path = "support/app.rs"]
mod app;
#[path = "support/https_server.rs"]
mod https_server;
#[path = "support/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::{install, record};
use lab::{fixture_profile, http_get, launch, text, Config, Lab, Releases};

const NAME: &str = "tasks.lab.example";

fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The lab bridge's own address: the first host of the lab's subnet.
fn bridge_ip() -> Ipv4Addr {
    let subnet = lab::subnet();
    let net: Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    let o = net.octets();
    Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1)
}

/// Children the test started, stopped by their own pid on drop.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// pebble (ACME on the bridge, management on loopback) and pebble-challtestsrv (DNS on loopback).
struct Ca {
    dir: tempfile::TempDir,
    directory: String,
    mgmt: String,
    dns_mgmt: String,
    /// The CA of pebble's HTTPS endpoint (not of the certificates it issues).
    https_ca: String,
    _kids: Kids,
}

impl Ca {
    /// With `dns`, pebble asks that server (the test's own DNS stand-in) and no challtestsrv runs.
    fn start(default_ip: Ipv4Addr, dns: Option<SocketAddr>) -> Ca {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let gw = bridge_ip();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "e2e_acme pebble HTTPS CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec![
            gw.to_string(),
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
        std::fs::write(d.join("https-ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(d.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(d.join("key.pem"), key.serialize_pem()).unwrap();

        let dns_port = free_port("127.0.0.1");
        let dns_mgmt_port = free_port("127.0.0.1");
        let acme_port = free_port(&gw.to_string());
        let mgmt_port = free_port("127.0.0.1");
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("{gw}:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": d.join("cert.pem"),
            "privateKey": d.join("key.pem"),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(d.join("pebble.json"), config.to_string()).unwrap();
        let log = |n: &str| std::fs::File::create(d.join(n)).unwrap();
        let mut kids = Vec::new();
        let dns_server = dns
            .map(|d| d.to_string())
            .unwrap_or(format!("127.0.0.1:{dns_port}"));
        if dns.is_none() {
            kids.push(
                Command::new("pebble-challtestsrv")
                    .args(["-defaultIPv4", &default_ip.to_string(), "-defaultIPv6", ""])
                    .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
                    .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                    .args(["-management", &format!("127.0.0.1:{dns_mgmt_port}")])
                    .stdout(log("challtestsrv.log"))
                    .stderr(log("challtestsrv.err"))
                    .spawn()
                    .expect("pebble-challtestsrv (apt-get install pebble)"),
            );
        }
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(d.join("pebble.json"))
            .args(["-dnsserver", &dns_server])
            // No random sleep before validating; no deliberately rejected nonces.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            // Every order validates again (a renewal proves the name anew, as at Let's Encrypt
            // once the 30-day authorization reuse has run out).
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .expect("pebble (apt-get install pebble)");
        let ca = Ca {
            directory: format!("https://{gw}:{acme_port}/dir"),
            mgmt: format!("https://127.0.0.1:{mgmt_port}"),
            dns_mgmt: format!("http://127.0.0.1:{dns_mgmt_port}"),
            https_ca: d.join("https-ca.pem").display().to_string(),
            dir,
            _kids: Kids({
                kids.push(pebble);
                kids
            }),
        };
        // Proof of readiness: the directory answers, and the DNS stand-in's API does.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = ca
                .https()
                .get(&ca.directory)
                .send()
                .is_ok_and(|r| r.status().is_success())
                && (dns.is_some() || ca.set_a(NAME, default_ip).is_ok());
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pebble did not come up: {}",
                ca.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        ca
    }

    fn https(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(&self.https_ca).unwrap();
        reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// Points `name` at `ip` in the DNS stand-in.
    fn set_a(&self, name: &str, ip: Ipv4Addr) -> Result<(), String> {
        let c = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap();
        let host = format!("{name}.");
        let _ = c
            .post(format!("{}/clear-a", self.dns_mgmt))
            .json(&serde_json::json!({ "host": host }))
            .send();
        let r = c
            .post(format!("{}/add-a", self.dns_mgmt))
            .json(&serde_json::json!({ "host": host, "addresses": [ip.to_string()] }))
            .send()
            .map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(r.status().to_string())
        }
    }

    /// pebble's issuing root (regenerated at each start).
    fn root_pem(&self) -> String {
        let r = self
            .https()
            .get(format!("{}/roots/0", self.mgmt))
            .send()
            .unwrap();
        assert!(r.status().is_success());
        r.text().unwrap()
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["pebble.log", "pebble.err", "challtestsrv.err"] {
            s.push_str(&format!(
                "--- {f}\n{}\n",
                std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default()
            ));
        }
        s
    }
}

/// A TLS client that trusts only pebble's root and reaches `NAME` at `ip`.
fn pebble_client(root_pem: &str, ip: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap())
        .resolve(NAME, SocketAddr::new(ip.parse().unwrap(), 443))
        .build()
        .unwrap()
}

/// The serial of the certificate nginx serves, as `openssl s_client` trusting pebble's root sees it.
fn served_serial(root: &Path, ip: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {ip}:443 -servername {NAME} -CAfile {} -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial",
            root.display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(s.starts_with("serial="), "openssl s_client: {s}");
    s
}

/// The DNS stand-in for DNS-01: a tiny authoritative server of the test's own (UDP, on the lab
/// bridge's port 53) for zone `lab.example`: its SOA and NS (`ns.lab.example`, the bridge), A
/// records, and the TXT records the Cloudflare stand-in writes. pebble-challtestsrv cannot
/// stand in here: it answers SOA queries NOTIMP, and lego looks the zone up by its SOA.
#[derive(Default)]
struct Zone {
    a: BTreeMap<String, Ipv4Addr>,
    txt: BTreeMap<String, Vec<String>>,
}

const ZONE: &str = "lab.example";

fn serve_dns(sock: std::net::UdpSocket, zone: Arc<Mutex<Zone>>) {
    let mut buf = [0u8; 1500];
    while let Ok((n, peer)) = sock.recv_from(&mut buf) {
        if let Some(reply) = dns_answer(&buf[..n], &zone.lock().unwrap()) {
            let _ = sock.send_to(&reply, peer);
        }
    }
}

fn dns_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for l in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
    out
}

fn dns_answer(q: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    while *q.get(i)? != 0 {
        let len = q[i] as usize;
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + len)?).to_ascii_lowercase());
        i += 1 + len;
    }
    let qname = labels.join(".");
    let question = q.get(12..i + 5)?;
    let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
    let in_zone = qname == ZONE || qname.ends_with(&format!(".{ZONE}"));
    let mut answers: Vec<(u16, Vec<u8>)> = Vec::new();
    match qtype {
        1 => {
            if let Some(ip) = zone.a.get(&qname) {
                answers.push((1, ip.octets().to_vec()));
            }
        }
        16 => {
            for t in zone.txt.get(&qname).into_iter().flatten() {
                let mut d = vec![t.len() as u8];
                d.extend_from_slice(t.as_bytes());
                answers.push((16, d));
            }
        }
        6 if qname == ZONE => {
            let mut d = dns_name(&format!("ns.{ZONE}"));
            d.extend(dns_name(&format!("hostmaster.{ZONE}")));
            for v in [1u32, 3600, 600, 86400, 60] {
                d.extend_from_slice(&v.to_be_bytes());
            }
            answers.push((6, d));
        }
        2 if qname == ZONE => answers.push((2, dns_name(&format!("ns.{ZONE}")))),
        _ => {}
    }
    let rcode = if in_zone { 0 } else { 3 };
    let mut r = Vec::new();
    r.extend_from_slice(&q[0..2]);
    // QR, AA, RD copied; RA; the rcode.
    r.push(0x84 | (q[2] & 0x01));
    r.push(0x80 | rcode);
    r.extend_from_slice(&1u16.to_be_bytes());
    r.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(question);
    for (t, data) in answers {
        r.extend_from_slice(&[0xc0, 0x0c]);
        r.extend_from_slice(&t.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes());
        r.extend_from_slice(&60u32.to_be_bytes());
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    Some(r)
}

/// The part of Cloudflare's API v4 lego's cloudflare provider uses: the zone by name, TXT
/// records created and deleted; records land in the DNS stand-in. Bearer token checked.
fn cloudflare_reply(
    req: &https_server::RecordedRequest,
    zone: &Mutex<Zone>,
    token: &str,
) -> https_server::Reply {
    let json = |status: u16, v: serde_json::Value| https_server::Reply {
        status,
        body: v.to_string().into_bytes(),
    };
    let ok = |result: serde_json::Value| {
        json(
            200,
            serde_json::json!({"success": true, "errors": [], "messages": [], "result": result,
                "result_info": {"page": 1, "per_page": 50, "count": 1, "total_count": 1, "total_pages": 1}}),
        )
    };
    if req.header("authorization") != Some(&format!("Bearer {token}")) {
        return json(
            403,
            serde_json::json!({"success": false, "errors": [{"code": 9109, "message": "Invalid access token"}], "messages": [], "result": null}),
        );
    }
    let path = req.path.trim_start_matches("/client/v4");
    match (req.method.as_str(), path) {
        ("GET", "/zones") => {
            let name = req
                .query_pairs()
                .into_iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v)
                .unwrap_or_default();
            if name == ZONE {
                ok(serde_json::json!([{"id": "zone0lab", "name": ZONE, "status": "active"}]))
            } else {
                ok(serde_json::json!([]))
            }
        }
        ("POST", "/zones/zone0lab/dns_records") => {
            let v: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let name = v["name"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let content = v["content"].as_str().unwrap_or_default().to_string();
            let mut z = zone.lock().unwrap();
            let list = z.txt.entry(name.clone()).or_default();
            list.push(content.clone());
            let id = format!("rec-{}-{}", name, list.len());
            ok(
                serde_json::json!({"id": id, "type": "TXT", "name": name, "content": content, "ttl": v["ttl"], "zone_id": "zone0lab", "zone_name": ZONE}),
            )
        }
        ("GET", "/zones/zone0lab/dns_records") => {
            let pairs = req.query_pairs();
            let name = pairs
                .iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_default();
            let z = zone.lock().unwrap();
            let list: Vec<serde_json::Value> = z
                .txt
                .get(&name)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, c)| serde_json::json!({"id": format!("rec-{name}-{}", i + 1), "type": "TXT", "name": name, "content": c}))
                .collect();
            ok(serde_json::Value::Array(list))
        }
        ("DELETE", p) if p.starts_with("/zones/zone0lab/dns_records/rec-") => {
            let id = p.rsplit('/').next().unwrap_or_default().to_string();
            let name = id
                .strip_prefix("rec-")
                .and_then(|r| r.rsplit_once('-'))
                .map(|(n, _)| n.to_string())
                .unwrap_or_default();
            zone.lock().unwrap().txt.remove(&name);
            ok(serde_json::json!({"id": id}))
        }
        _ => json(
            404,
            serde_json::json!({"success": false, "errors": [{"code": 7003, "message": "No route for that URI"}], "messages": [], "result": null}),
        ),
    }
}

fn ct_sh(lab: &Lab, vmid: &str, script: &str) -> std::process::Output {
    lab.pct(&["exec", vmid, "--", "sh", "-c", script])
}

#[test]
fn acme_end_to_end() {
    let lab = Lab::start();
    let rel = Releases::start();
    let cfg = Config::new(&fixture_profile(&rel, None));
    let (ip, vmid) = install(&lab, &cfg, "");
    let ct_ip: Ipv4Addr = ip.parse().unwrap();
    // DNS first points the name at a wrong address: the host's bridge address, where nothing
    // listens on port 80.
    let ca = Ca::start(bridge_ip(), None);
    let acme = |extra: &[&str]| {
        let mut args = vec![
            "reconfigure",
            "vikunja",
            "--set",
            "tls=acme",
            "--set",
            "acme_email=admin@lab.example",
        ];
        let dir = format!("acme_directory={}", ca.directory);
        let cafile = format!("acme_ca_file={}", ca.https_ca);
        args.extend(["--set", &dir, "--set", &cafile]);
        args.extend(extra);
        launch(&lab, &cfg, &args)
    };

    // 1. Bad input changes nothing: exit 2, each value named with its fix.
    let site_before = lab.pct_ok(&[
        "exec",
        &vmid,
        "--",
        "sha256sum",
        "/etc/nginx/sites-available/vikunja.conf",
    ]);
    let out = acme(&["--set", "acme_email=x';reboot;'@lab.example"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("acme_email"), "{}", text(&out));
    let out = acme(&["--set", "acme_directory=https://ca.example/dir$(id)"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // A Cloudflare token in a file others can read is refused, and never printed.
    let token = "e2eSecretCloudflareToken_0123456789abcdef";
    let tf = cfg.path().join("cf.token");
    std::fs::write(&tf, token).unwrap();
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tfs = format!("acme_cloudflare_token_file={}", tf.display());
    let out = acme(&["--set", "acme_challenge=dns-cloudflare", "--set", &tfs]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    assert!(!text(&out).contains(token));
    assert_eq!(
        site_before,
        lab.pct_ok(&[
            "exec",
            &vmid,
            "--",
            "sha256sum",
            "/etc/nginx/sites-available/vikunja.conf"
        ])
    );

    // 2. A failing validation (the name points elsewhere): exit 1 with the CA's message and
    //    what to check; HTTP serves as before and no TLS is recorded.
    let out = acme(&[]);
    assert_eq!(out.status.code(), Some(1), "{}\n{}", text(&out), ca.logs());
    let said = text(&out);
    assert!(said.contains("urn:ietf:params:acme:error"), "{said}");
    assert!(said.contains("port 80") && said.contains(NAME), "{said}");
    let (status, _) = http_get(&format!("http://{ip}/api/v1/info"));
    assert_eq!(status, 200);
    assert_ne!(
        record(&cfg, "vikunja")["settings"]["tls"].as_str(),
        Some("true")
    );
    assert_eq!(
        site_before,
        lab.pct_ok(&[
            "exec",
            &vmid,
            "--",
            "sha256sum",
            "/etc/nginx/sites-available/vikunja.conf"
        ]),
        "the site is back as it was"
    );

    // 3. Issuance through HTTP-01 end to end, once DNS points at the container.
    ca.set_a(NAME, ct_ip).unwrap();
    let t = Instant::now();
    let out = acme(&[]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out), ca.logs());
    eprintln!(
        "reconfigure --set tls=acme (lego already installed by the refused attempt) took {:?}",
        t.elapsed()
    );
    let root = ca.root_pem();
    let root_file = ca.dir.path().join("pebble-root.pem");
    std::fs::write(&root_file, &root).unwrap();
    let r = pebble_client(&root, &ip)
        .get(format!("https://{NAME}/api/v1/info"))
        .send()
        .expect("HTTPS with a certificate chaining to pebble's root");
    assert_eq!(r.status().as_u16(), 200);
    let first = served_serial(&root_file, &ip);
    let rec = record(&cfg, "vikunja");
    assert_eq!(rec["settings"]["tls"].as_str(), Some("true"));
    assert_eq!(rec["settings"]["acme_challenge"].as_str(), Some("http"));
    // The renewal timer is on; the settings file holding the (here absent) token is 0600.
    let out = ct_sh(
        &lab,
        &vmid,
        "systemctl is-enabled launch-acme-vikunja.timer && stat -c %a /etc/vikunja/acme/acme.conf",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "enabled\n600",
        "{out:?}"
    );

    // 4. A forced renewal: the timer's script, told to renew now; nginx serves the new one.
    //    Meanwhile a client keeps making HTTPS requests (a new connection each, bounded): the
    //    reload fails none of them.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, root, ip) = (stop.clone(), root.clone(), ip.clone());
        std::thread::spawn(move || {
            let c = reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(0)
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
                .resolve(NAME, SocketAddr::new(ip.parse().unwrap(), 443))
                .build()
                .unwrap();
            let (mut ok, mut failed) = (0u32, Vec::new());
            for _ in 0..20_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                match c.get(format!("https://{NAME}/api/v1/info")).send() {
                    Ok(r) if r.status().as_u16() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        })
    };
    let t = Instant::now();
    let out = ct_sh(&lab, &vmid, "/usr/local/lib/launch/acme-vikunja force");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // nginx's reload is asynchronous: poll (bounded) until a new connection meets the new one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        let s = served_serial(&root_file, &ip);
        if s != first {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "nginx still serves {first} after the renewal:\n{said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "forced renewal until nginx served the new certificate: {:?}",
        t.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.join().unwrap();
    eprintln!(
        "HTTPS requests during the renewal: {ok} ok, {} failed",
        failed.len()
    );
    assert!(ok > 0 && failed.is_empty(), "{ok} ok, failed: {failed:?}");
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    let said = text(&out);
    assert!(
        said.contains("acme") && said.contains("last renewal ok"),
        "{said}"
    );

    // 5. The challenge location survives a reconfigure of something else.
    let out = launch(
        &lab,
        &cfg,
        &["reconfigure", "vikunja", "--set", "max_upload_mib=30"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ct_sh(&lab, &vmid, "mkdir -p /var/www/vikunja-acme/.well-known/acme-challenge && echo probe-token > /var/www/vikunja-acme/.well-known/acme-challenge/probe");
    let (status, body) = http_get(&format!("http://{ip}/.well-known/acme-challenge/probe"));
    assert_eq!((status, body.trim()), (200, "probe-token"));

    // 6. Backup carries the ACME account and certificates (0600 inside a 0600 archive); after
    //    they are lost, a restore brings them back and the renewal finds them.
    let out = launch(&lab, &cfg, &["backup", "vikunja"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let backups = cfg.path().join("state/backups/vikunja");
    let archive = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.zst"))
        .unwrap();
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = Command::new("tar")
        .args(["-I", "zstd", "-tvf"])
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    for f in [
        "config/etc/vikunja/acme/state.tar",
        "config/etc/vikunja/acme/acme.conf",
    ] {
        let line = listing
            .lines()
            .find(|l| l.ends_with(f))
            .unwrap_or_else(|| panic!("{f} not in {listing}"));
        assert!(line.starts_with("-rw-------"), "{line}");
    }
    ct_sh(&lab, &vmid, "rm -rf /etc/vikunja/acme/accounts /etc/vikunja/acme/certificates /etc/vikunja/acme/state.tar");
    let out = launch(
        &lab,
        &cfg,
        &["restore", "vikunja", archive.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = ct_sh(&lab, &vmid, "/usr/local/lib/launch/acme-vikunja renew && ls /etc/vikunja/acme/accounts/*/admin@lab.example/account.json");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(served_serial(&root_file, &ip), second);

    // 7. An update keeps HTTPS and the challenge location (the site is rendered again).
    // A 5 s watch after the switch (the profile's is longer): the switch is what this proves;
    // the watch itself is tested in e2e_update.
    let out = launch(
        &lab,
        &cfg,
        &["update", "vikunja", "--version", "v2.0.0", "--watch", "5"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (status, body) = http_get(&format!("http://{ip}/.well-known/acme-challenge/probe"));
    assert_eq!((status, body.trim()), (200, "probe-token"));
    assert_eq!(served_serial(&root_file, &ip), second);

    // 8. A renewal that fails (the name points elsewhere again) keeps HTTPS serving the
    //    current certificate, and status names the failure with the fix.
    ca.set_a(NAME, bridge_ip()).unwrap();
    let out = ct_sh(&lab, &vmid, "/usr/local/lib/launch/acme-vikunja force");
    assert!(!out.status.success());
    assert_eq!(served_serial(&root_file, &ip), second);
    let out = launch(&lab, &cfg, &["status", "vikunja"]);
    let said = text(&out);
    assert!(
        said.contains("last renewal failed") && said.contains("acme-vikunja"),
        "{said}"
    );

    // 9. DNS-01 through Cloudflare, for a name that does not reach the container: a second
    //    pebble asks the test's DNS stand-in, whose TXT records are set through the loopback
    //    stand-in of Cloudflare's API (on the bridge's port 443, named api.cloudflare.com for
    //    the container by its /etc/hosts, its CA added to the container's trust store: test
    //    setup, not Launch's doing; lego 4.9.1 has no setting for another API base URL).
    let gw = bridge_ip();
    let zone = Arc::new(Mutex::new(Zone::default()));
    zone.lock().unwrap().a.insert(format!("ns.{ZONE}"), gw);
    let sock = std::net::UdpSocket::bind((gw, 53))
        .expect("port 53 on the lab bridge for the DNS stand-in");
    {
        let z = zone.clone();
        std::thread::spawn(move || serve_dns(sock, z));
    }
    let cf_token = "e2eCloudflareToken_0123456789abcdefXYZ";
    let cf = {
        let z = zone.clone();
        https_server::HttpsServer::start_at(
            SocketAddr::from((gw, 443)),
            &["api.cloudflare.com".to_string()],
            move |r| cloudflare_reply(r, &z, cf_token),
        )
    };
    let out = ct_sh(
        &lab,
        &vmid,
        &format!(
            "cat > /usr/local/share/ca-certificates/e2e-cloudflare-standin.crt <<'PEM'\n{}PEM\nupdate-ca-certificates >/dev/null 2>&1 && printf '%s api.cloudflare.com ns.{ZONE}\\n' {gw} >> /etc/hosts",
            cf.pki.ca_pem
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let ca2 = Ca::start(gw, Some(SocketAddr::from((gw, 53))));
    std::fs::set_permissions(&tf, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&tf, format!("{cf_token}\n")).unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "reconfigure",
            "vikunja",
            "--set",
            "tls=acme",
            "--set",
            "acme_email=admin@lab.example",
            "--set",
            &format!("acme_directory={}", ca2.directory),
            "--set",
            &format!("acme_ca_file={}", ca2.https_ca),
            "--set",
            "acme_challenge=dns-cloudflare",
            "--set",
            &tfs,
            "--set",
            &format!("acme_dns_resolvers={gw}:53"),
        ],
    );
    let said = text(&out);
    let seen: Vec<String> = cf
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{said}\nCloudflare stand-in saw: {seen:?}\n{}",
        ca2.logs()
    );
    assert!(!said.contains(cf_token), "the token shows in the output");
    assert!(
        seen.iter()
            .any(|r| r.starts_with("POST /client/v4/zones/zone0lab/dns_records")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.starts_with("DELETE /client/v4/zones/zone0lab/dns_records/")),
        "{seen:?}"
    );
    assert!(
        zone.lock().unwrap().txt.is_empty(),
        "the TXT record was cleaned up"
    );
    let root2 = ca2.root_pem();
    let r = pebble_client(&root2, &ip)
        .get(format!("https://{NAME}/api/v1/info"))
        .send()
        .expect("HTTPS with a certificate chaining to the second pebble's root");
    assert_eq!(r.status().as_u16(), 200);
    // The token is only in the container's 0600 settings file: not in the record, the log
    // or any process's argv.
    let rec = std::fs::read_to_string(cfg.path().join("instances/vikunja.yaml")).unwrap();
    assert!(!rec.contains(cf_token));
    let out = Command::new("grep")
        .args(["-r", "-l", cf_token])
        .arg(cfg.path().join("log"))
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "token in logs: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ct_sh(&lab, &vmid, "stat -c %a /etc/vikunja/acme/acme.conf");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "600");

    // 10. The answers file: `tls: acme` checked before anything is created (exit 2), then an
    //    install whose validation fails (DNS points elsewhere): exit 1 with the CA's message,
    //    the instance installed, recorded and serving HTTP, and status naming the fix.
    let answers = cfg.path().join("answers-acme.yaml");
    let base = format!(
        "name: second\npublic_url: http://second.lab.example\nadmin_email: admin@lab.example\nmcp: false\nversion: v1.0.0\ntls: acme\nacme_directory: {}\nacme_ca_file: {}\n",
        ca.directory, ca.https_ca
    );
    std::fs::write(&answers, format!("{base}acme_email: \"a@b.c;x\"\n")).unwrap();
    let before = lab.vmids();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("acme_email"), "{}", text(&out));
    std::fs::write(&answers, base.replace("tls: acme\n", "")).unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "ACME settings without tls: acme: {}",
        text(&out)
    );
    assert_eq!(lab.vmids(), before, "nothing was created");
    std::fs::write(&answers, format!("{base}acme_email: admin@lab.example\n")).unwrap();
    let out = launch(
        &lab,
        &cfg,
        &[
            "install",
            "vikunja",
            "--yes",
            "--answers",
            answers.to_str().unwrap(),
        ],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("urn:ietf:params:acme:error")
            && said.contains("reconfigure second --set tls=acme"),
        "{said}"
    );
    let r2 = record(&cfg, "second");
    let ip2 = r2["container"]["ip"].as_str().unwrap().to_string();
    assert_eq!(r2["settings"]["acme_challenge"].as_str(), Some("http"));
    assert_ne!(r2["settings"]["tls"].as_str(), Some("true"));
    let (status, _) = http_get(&format!("http://{ip2}/api/v1/info"));
    assert_eq!(status, 200);
    let out = launch(&lab, &cfg, &["status", "second"]);
    let said = text(&out);
    assert!(
        said.contains("last renewal failed") && said.contains("acme-vikunja renew"),
        "{said}"
    );
}
