//! `launch-tui reconfigure NAME`: safe changes to a running instance. Every value is checked
//! before anything changes; then the files are rendered again from the profile and the new
//! record, `nginx -t`, the app restarts with a health check, and a failure anywhere puts the
//! previous files, settings and resources back. Without `--set` it shows the settings and any
//! drift between the record and the container's real files (and asks, on a terminal).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

use crate::connect::connect;
use crate::ct::{sh, CtAccess, Pct};
use crate::deploy::{self, AppSettings};
use crate::engine::render::{operation_log_path, timestamp, OperationViews};
use crate::engine::{execute, FnStep, Plan, Reporter};
use crate::error::{InvalidValue, LaunchError, Result};
use crate::install::settings::{check_answer, check_tls_files, parse_whole};
use crate::report::{Outcome, Output, Report};
use crate::site::Site;

/// The most memory or swap reconfigure sets (16 TiB), as install takes.
const MAX_MIB: u64 = 16 * 1024 * 1024;
use crate::instance::{Instance, InstanceStore};
use crate::oplock::lock_instance;
use crate::profile::{Catalog, DatabaseKind, Profile, QuestionKind};
use crate::prompt::{Prompter, Question};
use crate::pve::{Client, CtConfigUpdate};
use crate::render::{self, Layout};
use crate::update::proxy::Proxy;

/// Settings that are not the profile's questions.
const OWN_KEYS: &[&str] = &[
    "tls_cert",
    "tls_key",
    "tls",
    "cores",
    "memory_mib",
    "swap_mib",
    "disk_gib",
    "database",
    "db_host",
    "db_port",
    "db_user",
    "db_name",
    "db_password_file",
    "http_port",
    "https_port",
    "acme_email",
    "acme_directory",
    "acme_challenge",
    "acme_ca_file",
    "acme_cloudflare_token_file",
    "acme_dns_resolvers",
];

#[derive(Debug, Default, Clone, PartialEq)]
struct Resources {
    cores: Option<u32>,
    memory_mib: Option<u64>,
    swap_mib: Option<u64>,
    disk_gib: Option<u32>,
}

impl Resources {
    fn any(&self) -> bool {
        *self != Resources::default()
    }
}

#[derive(Debug, Clone)]
enum Tls {
    Set {
        cert: PathBuf,
        key: PathBuf,
    },
    Off,
    /// `tls=acme`: obtain the certificate from the CA before nginx serves HTTPS with it.
    Acme(Box<crate::acme::AcmeRequest>),
}

/// What a validated reconfigure will do.
struct Change {
    /// The record as it will be.
    next: Instance,
    tls: Option<Tls>,
    resources: Resources,
    database: Option<DatabaseKind>,
    /// Human lines: `public_url: A → B`.
    lines: Vec<String>,
}

struct Ctx {
    ct: Box<dyn CtAccess>,
    client: Option<Client>,
    profile: Profile,
    store: InstanceStore,
    before: Instance,
    change: Change,
    /// Files as they were (None: did not exist), to put back on failure.
    saved: Vec<(String, Option<Vec<u8>>)>,
    old_resources: Resources,
    interruption: Option<Duration>,
    /// The HTTP port nginx's current files listen on (changes with the files).
    nginx_port: u16,
}

impl Ctx {
    fn vmid(&self) -> u32 {
        self.before.container.vmid
    }
    fn proxy(&self) -> Proxy<'_> {
        Proxy {
            ct: self.ct.as_ref(),
            vmid: self.vmid(),
            profile: self.profile.name.as_str(),
            http_port: self.nginx_port,
        }
    }
}

fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
}

fn bad(
    field: &str,
    value: &str,
    problem: impl Into<String>,
    help: impl Into<String>,
) -> InvalidValue {
    InvalidValue {
        field: field.into(),
        value: value.into(),
        problem: problem.into(),
        help: help.into(),
    }
}

/// Checks every change against the profile and the instance; nothing is touched.
fn validate(
    profile: &Profile,
    inst: &Instance,
    sets: &BTreeMap<String, String>,
    ct: Option<&dyn CtAccess>,
) -> Result<Change> {
    let mut problems = Vec::new();
    let mut next = inst.clone();
    let mut lines = Vec::new();
    let mut resources = Resources::default();
    let mut tls = None;
    let mut database = None;
    let settable: Vec<String> = profile
        .questions
        .iter()
        .filter(|q| !q.install_only)
        .map(|q| q.key.to_string())
        .chain(OWN_KEYS.iter().map(|k| k.to_string()))
        .collect();
    for (key, value) in sets {
        if let Err(e) = crate::install::settings::check_value(key, value) {
            problems.push(bad(key, value, e, "write the value as it is, on one line"));
            continue;
        }
        let current = inst.settings.get(key).cloned().unwrap_or_default();
        if let Some(q) = profile.question(key).filter(|q| q.install_only) {
            problems.push(bad(
                key,
                value,
                "it is used once, at install; the app keeps it in its own data afterwards",
                q.after_install
                    .clone()
                    .unwrap_or_else(|| "change it in the app itself".into()),
            ));
            continue;
        }
        if let Some(q) = profile.question(key) {
            if let Err(e) = check_answer(q.kind, value, q.min, q.max, &q.choices) {
                problems.push(bad(
                    key,
                    value,
                    e,
                    q.help.clone().unwrap_or_else(|| q.prompt.clone()),
                ));
                continue;
            }
            let value = match q.kind {
                QuestionKind::Bool => matches!(value.as_str(), "true" | "yes" | "1").to_string(),
                _ => value.clone(),
            };
            // A component switched on by this question must have been installed.
            if let Some(c) = profile
                .components
                .iter()
                .skip(1)
                .find(|c| c.when.as_ref().is_some_and(|w| w.as_str() == key))
            {
                // Without container access (the TUI's form, as you type) the run checks it.
                if let Some(ct) = ct.filter(|_| value == "true" && current != "true") {
                    let venv = Layout::venv(profile.name.as_str(), c.name.as_str());
                    let installed = ct
                        .exec(inst.container.vmid, &["test", "-d", &venv])
                        .map(|o| o.ok())
                        .unwrap_or(false);
                    if !installed {
                        problems.push(bad(
                            key,
                            &value,
                            format!("{} was not installed with this instance, and installing it afterwards is not supported yet", c.name),
                            format!("reinstall with `{key}: true` and restore a backup into it (`launch-tui restore ... --to-new`)"),
                        ));
                        continue;
                    }
                }
            }
            if profile.role_key(crate::profile::Role::PublicUrl) == Some(key.as_str()) {
                let (old, new) = (host_of(&current), host_of(&value));
                if let (Some(old), Some(new)) = (old, new) {
                    if old != new && old.parse::<std::net::IpAddr>().is_err() {
                        let mut hosts: Vec<String> = inst
                            .settings
                            .get("old_hosts")
                            .map(|h| h.split(',').map(str::to_string).collect())
                            .unwrap_or_default();
                        hosts.retain(|h| h != &new && !h.is_empty());
                        if !hosts.contains(&old) {
                            hosts.push(old);
                        }
                        next.settings.insert("old_hosts".into(), hosts.join(","));
                    }
                }
            }
            if value != current {
                lines.push(format!("{key}: {current} → {value}"));
                next.settings.insert(key.clone(), value);
            }
            continue;
        }
        match key.as_str() {
            "cores" => match parse_whole(value) {
                Some(n) if (profile.resources.minimum.cores as u64..=8192).contains(&n) => {
                    let n = n as u32;
                    resources.cores = Some(n);
                    lines.push(format!("cores → {n}"));
                }
                _ => problems.push(bad(
                    key,
                    value,
                    format!(
                        "expected a whole number from {} (the profile's minimum)",
                        profile.resources.minimum.cores
                    ),
                    "e.g. --set cores=2",
                )),
            },
            "memory_mib" => match parse_whole(value) {
                Some(n) if (profile.resources.minimum.memory_mib..=MAX_MIB).contains(&n) => {
                    resources.memory_mib = Some(n);
                    lines.push(format!("memory → {n} MiB"));
                }
                _ => problems.push(bad(
                    key,
                    value,
                    format!(
                        "expected MiB from the profile's minimum {} to {MAX_MIB}",
                        profile.resources.minimum.memory_mib
                    ),
                    "e.g. --set memory_mib=2048",
                )),
            },
            "swap_mib" => match parse_whole(value) {
                Some(n) if n <= MAX_MIB => {
                    resources.swap_mib = Some(n);
                    lines.push(format!("swap → {n} MiB"));
                }
                _ => problems.push(bad(
                    key,
                    value,
                    format!("expected MiB from 0 to {MAX_MIB}"),
                    "e.g. --set swap_mib=512",
                )),
            },
            "disk_gib" => match parse_whole(value) {
                Some(n) if (profile.resources.minimum.disk_gib as u64..=128 * 1024).contains(&n) => {
                    let n = n as u32;
                    resources.disk_gib = Some(n);
                    lines.push(format!("disk → {n} GiB (grows only)"));
                }
                _ => problems.push(bad(
                    key,
                    value,
                    format!(
                        "expected GiB, at least the profile's minimum {}",
                        profile.resources.minimum.disk_gib
                    ),
                    "e.g. --set disk_gib=8",
                )),
            },
            "tls" if value == "off" => {
                if inst.settings.get("tls").map(String::as_str) == Some("true")
                    || crate::acme::enabled(&inst.settings)
                {
                    tls = Some(Tls::Off);
                    next.settings.remove("tls");
                    for k in crate::acme::KEYS {
                        next.settings.remove(*k);
                    }
                    lines.push("TLS → off (HTTP only)".into());
                }
            }
            "tls" if value == "acme" => {
                let url_key = profile
                    .role_key(crate::profile::Role::PublicUrl)
                    .unwrap_or("roles.public_url");
                let url = next.settings.get(url_key).cloned().unwrap_or_default();
                match crate::acme::validate(sets, url_key, &url) {
                    Ok(r) => {
                        for (k, v) in [
                            ("acme_email", r.email.clone()),
                            ("acme_directory", r.directory.clone()),
                            ("acme_challenge", r.challenge.as_str().to_string()),
                        ] {
                            next.settings.insert(k.into(), v);
                        }
                        next.settings.insert("tls".into(), "true".into());
                        lines.push(format!(
                            "TLS → ACME certificate for {} from {} ({} challenge)",
                            r.domain,
                            r.directory,
                            r.challenge.as_str()
                        ));
                        tls = Some(Tls::Acme(Box::new(r)));
                    }
                    Err(mut p) => problems.append(&mut p),
                }
            }
            k if crate::acme::KEYS.contains(&k) => {
                if sets.get("tls").map(String::as_str) != Some("acme") {
                    problems.push(bad(
                        key,
                        value,
                        "an ACME setting is given with tls=acme",
                        "add --set tls=acme (it obtains a certificate again with these settings)",
                    ));
                }
            }
            "tls" => problems.push(bad(
                key,
                value,
                "only `off` and `acme` are accepted here",
                "to turn TLS on, give --set tls=acme --set acme_email=EMAIL (a certificate from Let's Encrypt), or your own: --set tls_cert=FILE --set tls_key=FILE",
            )),
            "tls_cert" | "tls_key" => {
                let (Some(cert), Some(k)) = (sets.get("tls_cert"), sets.get("tls_key")) else {
                    problems.push(bad(
                        key,
                        value,
                        "a certificate needs its key, and a key its certificate",
                        "give both --set tls_cert=FILE and --set tls_key=FILE",
                    ));
                    continue;
                };
                if key == "tls_cert" {
                    let found = check_tls_files(cert, k);
                    let ok = found.is_empty();
                    for (field, problem) in found {
                        let v = if field == "tls_cert" { cert } else { k };
                        problems.push(bad(
                            field,
                            v,
                            problem,
                            "use the PEM files your CA gave you (fullchain.pem and privkey.pem for Let's Encrypt)",
                        ));
                    }
                    if ok {
                        tls = Some(Tls::Set {
                            cert: cert.into(),
                            key: k.into(),
                        });
                        next.settings.insert("tls".into(), "true".into());
                        for k in crate::acme::KEYS {
                            next.settings.remove(*k);
                        }
                        lines.push(format!("TLS certificate → {cert}"));
                    }
                }
            }
            "database" => {
                let now = crate::render::DbContext::for_instance(inst).kind;
                // Moving to a database server (the data moves with the app's export/import).
                let kind = crate::database::kind_of(value)
                    .filter(|k| crate::database::adapter(*k).is_server());
                let m = profile.migrations.as_ref();
                match kind {
                    _ if *value == now && !sets.contains_key("db_host") => {}
                    Some(k) if profile.databases.supported.contains(&k) => {
                        if m.is_none_or(|m| m.export.is_empty() || m.import.is_empty()) {
                            problems.push(bad(key, value, format!("profile `{}` has no export/import commands to move the data with", profile.name), "add migrations.export and migrations.import to the profile"));
                            continue;
                        }
                        if crate::database::adapter(k).is_external() {
                            match external_db(k, sets) {
                                Ok(ext) => {
                                    for (f, v) in [("db_host", &ext.host), ("db_user", &ext.user), ("db_name", &ext.name)] {
                                        next.settings.insert(f.into(), v.clone());
                                    }
                                    next.settings.insert("db_port".into(), ext.port.to_string());
                                    next.secrets.insert("db_password".into(), ext.password);
                                }
                                Err(mut p) => {
                                    problems.append(&mut p);
                                    continue;
                                }
                            }
                        } else {
                            for f in ["db_host", "db_port", "db_user", "db_name"] {
                                next.settings.remove(f);
                            }
                            // A local server gets the password generated at install.
                            if now.starts_with("external-") {
                                let pw = rand::distr::SampleString::sample_string(&rand::distr::Alphanumeric, &mut rand::rng(), 32);
                                next.secrets.insert("db_password".into(), pw);
                            }
                        }
                        database = Some(k);
                        next.settings.insert("database".into(), value.clone());
                        lines.push(format!("database: {now} → {value} (the data moves with the app's own export/import)"));
                    }
                    _ => problems.push(bad(
                        key,
                        value,
                        format!("not one of this profile's databases ({})", profile.databases.supported.iter().map(|d| d.label()).collect::<Vec<_>>().join(", ")),
                        "e.g. --set database=postgres, or --set database=external-postgres --set db_host=HOST --set db_user=USER --set db_name=NAME --set db_password_file=FILE",
                    )),
                }
            }
            "http_port" | "https_port" => {
                let inside: Vec<u16> = profile
                    .components
                    .iter()
                    .flat_map(|c| [Some(c.port.get()), c.green_port.map(|g| g.get())])
                    .flatten()
                    .collect();
                match parse_whole(value).and_then(|n| u16::try_from(n).ok()) {
                    Some(n) if n > 0 && !inside.contains(&n) => {
                        if inst.settings.get(key.as_str()).map(String::as_str) != Some(value.as_str()) {
                            next.settings.insert(key.clone(), n.to_string());
                            lines.push(format!("nginx {key} → {n}"));
                        }
                    }
                    Some(n) if n > 0 => problems.push(bad(key, value, format!("port {n} is used inside the container by the app ({})", inside.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")), "choose another port, e.g. 8080")),
                    _ => problems.push(bad(key, value, "expected a port number from 1 to 65535", "e.g. --set http_port=8080")),
                }
            }
            "db_host" | "db_port" | "db_user" | "db_name" | "db_password_file" => {
                if !sets
                    .get("database")
                    .is_some_and(|d| d.starts_with("external-"))
                {
                    problems.push(bad(
                        key,
                        value,
                        "belongs to a move to an external database",
                        "add --set database=external-postgres (or external-mariadb)",
                    ));
                }
            }
            _ => problems.push(bad(
                key,
                value,
                if key.contains("port") {
                    "the app's own ports are the profile's (both slots' and its components'); nginx's public ports are http_port and https_port"
                        .to_string()
                } else {
                    "not a setting of this instance".to_string()
                },
                format!("settable: {}", settable.join(", ")),
            )),
        }
    }
    if deploy::http_port(&next.settings) == deploy::https_port(&next.settings) {
        problems.push(bad(
            "http_port",
            &deploy::http_port(&next.settings).to_string(),
            "HTTP and HTTPS cannot share a port",
            "choose two different ports",
        ));
    }
    if !problems.is_empty() {
        return Err(LaunchError::InvalidValues(problems));
    }
    Ok(Change {
        next,
        tls,
        resources,
        database,
        lines,
    })
}

/// The checks `reconfigure --set` makes before anything changes, without the container (the
/// TUI's form runs them as you type; the run itself checks again, with the container): the
/// change's lines (`public_url: A → B`), or the problems by setting.
pub fn check_changes(
    profile: &Profile,
    inst: &Instance,
    sets: &BTreeMap<String, String>,
) -> std::result::Result<Vec<String>, Vec<InvalidValue>> {
    match validate(profile, inst, sets, None) {
        Ok(c) => Ok(c.lines),
        Err(LaunchError::InvalidValues(p)) => Err(p),
        Err(e) => Err(vec![bad("", "", e.to_string(), "")]),
    }
}

/// A file the record renders into the container: path, text, mode, owner group.
type Rendered = (String, String, u32, Option<String>);

/// The external database a move goes to: every field given, the password from a private
/// file (never the command line), and the server answering.
fn external_db(
    kind: DatabaseKind,
    sets: &BTreeMap<String, String>,
) -> std::result::Result<crate::install::settings::ExternalDb, Vec<InvalidValue>> {
    let mut problems = Vec::new();
    let mut need = |k: &str| match sets.get(k) {
        Some(v) if !v.is_empty() => v.clone(),
        _ => {
            problems.push(bad(
                k,
                "",
                "needed for an external database",
                format!("add --set {k}=..."),
            ));
            String::new()
        }
    };
    let host = need("db_host");
    let user = need("db_user");
    let name = need("db_name");
    let pw_file = need("db_password_file");
    for (field, v) in [("db_host", &host), ("db_user", &user), ("db_name", &name)] {
        if v.is_empty() {
            continue;
        }
        if let Err(e) = crate::install::settings::check_db_field(field, v) {
            problems.push(bad(field, v, e, "e.g. db.example.com, tasks"));
        }
    }
    let default_port = crate::database::adapter(kind).default_port();
    let port = match sets.get("db_port").map(|p| p.parse::<u16>()) {
        None => default_port,
        Some(Ok(p)) if p > 0 => p,
        Some(_) => {
            problems.push(bad(
                "db_port",
                sets["db_port"].as_str(),
                "not a port number",
                "e.g. 5432",
            ));
            default_port
        }
    };
    let mut password = String::new();
    if !pw_file.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(&pw_file)
            .and_then(|m| std::fs::read_to_string(&pw_file).map(|t| (m, t)))
        {
            Ok((m, _)) if m.permissions().mode() & 0o077 != 0 => problems.push(bad(
                "db_password_file",
                &pw_file,
                format!(
                    "mode {:o}: others can read the password",
                    m.permissions().mode() & 0o777
                ),
                format!("chmod 600 {pw_file}"),
            )),
            Ok((_, t)) => {
                password = t.trim_end_matches(['\n', '\r']).to_string();
                if let Err(e) = crate::install::settings::check_value("db_password", &password) {
                    problems.push(bad(
                        "db_password_file",
                        &pw_file,
                        e,
                        "the file holds only the password, on one line",
                    ));
                }
            }
            Err(e) => problems.push(bad(
                "db_password_file",
                &pw_file,
                format!("cannot read it: {e}"),
                "give a file holding only the password, mode 0600",
            )),
        }
    }
    if problems.is_empty() {
        if let Err(e) = crate::install::settings::db_reachable(&host, port) {
            problems.push(bad(
                "db_host",
                &format!("{host}:{port}"),
                e,
                "check the address, and that the server accepts connections from this network",
            ));
        }
    }
    if problems.is_empty() {
        Ok(crate::install::settings::ExternalDb {
            host,
            port,
            user,
            password,
            name,
        })
    } else {
        Err(problems)
    }
}

/// Every file the record renders into the container.
fn rendered_files(profile: &Profile, inst: &Instance) -> anyhow::Result<Vec<Rendered>> {
    let app = AppSettings::of_instance(profile, inst);
    let main = &profile.components[0];
    let rc = app.render_context(main, inst.active_slot, &inst.app_version);
    let mut out = Vec::new();
    let mut component =
        |c: &crate::profile::Component, rc: &render::RenderContext, slot| -> anyhow::Result<()> {
            // Seeded files are the admin's: neither rewritten nor drift.
            for f in c.files.iter().filter(|f| !f.seed) {
                let mode = u32::from_str_radix(&f.mode, 8).unwrap_or(0o640);
                out.push((
                    f.path_in(slot),
                    render::file(profile, &f.template, rc)?,
                    mode,
                    f.owner.as_ref().map(|o| o.to_string()),
                ));
            }
            out.push((
                format!(
                    "/etc/systemd/system/{}",
                    Layout::unit_name(profile.name.as_str(), c.name.as_str(), slot)
                ),
                render::unit(profile, c, rc)?,
                0o644,
                None,
            ));
            Ok(())
        };
    component(main, &rc, Some(inst.active_slot))?;
    for c in app.extra_components() {
        let rc = app.render_context(c, inst.active_slot, &inst.app_version);
        component(c, &rc, None)?;
    }
    out.push((
        Layout::nginx_site(profile.name.as_str()),
        render::nginx_site(profile, &rc)?,
        0o644,
        None,
    ));
    Ok(out)
}

/// Files in the container that differ from what the record renders (edited by hand?).
fn drift(ct: &dyn CtAccess, profile: &Profile, inst: &Instance) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (path, text, _, _) in rendered_files(profile, inst)? {
        let have = ct.exec(inst.container.vmid, &["cat", &path])?;
        if !have.ok() {
            out.push(format!("{path} is missing"));
        } else if have.stdout != text {
            out.push(format!(
                "{path} differs from what the record renders (edited by hand?)"
            ));
        }
    }
    Ok(out)
}

/// An instance's settings and how its container's files differ from what they render
/// (`reconfigure NAME` without `--set`).
#[derive(Debug, Clone, Serialize)]
pub struct SettingsReport {
    pub instance: String,
    pub settings: BTreeMap<String, String>,
    pub drift: Vec<String>,
    /// "TITLE VERSION, CT VMID": what the first line names.
    #[serde(skip)]
    pub what: String,
    /// The app's questions that can change after install.
    #[serde(skip)]
    pub app_keys: Vec<String>,
}

impl SettingsReport {
    fn new(inst: &Instance, drift: Vec<String>, profile: &Profile) -> Self {
        SettingsReport {
            instance: inst.name.clone(),
            settings: inst.settings.clone(),
            drift,
            what: format!(
                "{} {}, CT {}",
                profile.title, inst.app_version, inst.container.vmid
            ),
            app_keys: profile
                .questions
                .iter()
                .filter(|q| !q.install_only)
                .map(|q| q.key.to_string())
                .collect(),
        }
    }
}

impl Report for SettingsReport {
    fn text(&self) -> String {
        let mut t = format!("{} ({})\n", self.instance, self.what);
        for (k, v) in &self.settings {
            if k == "old_hosts" {
                continue;
            }
            t.push_str(&format!("  {k:<16} {v}\n"));
        }
        if self.drift.is_empty() {
            t.push_str("  no drift: the container's files are what the record renders\n");
        } else {
            for d in &self.drift {
                t.push_str(&format!(
                    "  drift: {d}; reconfigure writes the record's version\n"
                ));
            }
        }
        t.push_str(&format!(
            "change with: launch-tui reconfigure {} --set KEY=VALUE ({}, tls_cert+tls_key, tls=off, tls=acme, cores, memory_mib, swap_mib, disk_gib, http_port, https_port, database[+db_host, db_port, db_user, db_name, db_password_file])",
            self.instance,
            self.app_keys.join(", ")
        ));
        t
    }
}

/// What a reconfigure changed (nothing, when the values were the current ones).
#[derive(Debug, Clone, Serialize)]
pub struct ReconfigureReport {
    pub instance: String,
    /// One line per change, as the plan showed them.
    pub changed: Vec<String>,
    /// How long the app did not answer while it restarted; None: no restart was needed.
    pub interruption_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

impl Report for ReconfigureReport {
    fn text(&self) -> String {
        let Some(log) = &self.log else {
            return format!(
                "{}: nothing to change (the values are the current ones).",
                self.instance
            );
        };
        format!(
            "Reconfigured {}:\n  {}\n  restart: {}\n  log: {}",
            self.instance,
            self.changed.join("\n  "),
            match self.interruption_ms {
                Some(ms) => format!("the app did not answer for {ms} ms"),
                None => "none needed".into(),
            },
            log.display()
        )
    }
}

/// `--set KEY=VALUE` arguments as settings; a pair without `=` or a key given twice is refused.
pub fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            return Err(LaunchError::bad_input(
                format!("--set {s}"),
                "expected KEY=VALUE",
                "write it like --set KEY=VALUE (`launch-tui reconfigure NAME` lists the keys)",
            ));
        };
        if out
            .insert(k.trim().to_string(), v.trim().to_string())
            .is_some()
        {
            return Err(LaunchError::bad_input(
                format!("--set {k}"),
                "given twice",
                "give each setting once",
            ));
        }
    }
    Ok(out)
}

/// One setting to change and its new value, asked through the front end's prompter.
fn ask(
    prompter: &mut dyn Prompter,
    inst: &Instance,
    profile: &Profile,
) -> Result<BTreeMap<String, String>> {
    let keys: Vec<String> = inst
        .settings
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "old_hosts" | "os" | "database" | "tls"))
        .filter(|k| profile.question(k).is_none_or(|q| !q.install_only))
        .chain(["memory_mib", "cores", "disk_gib", "database"])
        .map(String::from)
        .collect();
    let key = prompter
        .select(&Question::new("setting", "Change which setting?"), &keys)
        .map_err(|e| LaunchError::Failed(anyhow!("cancelled: {e}")))?;
    let current = inst.settings.get(&key).cloned().unwrap_or_default();
    let prompt = format!("New value for {key}:");
    let mut q = Question::new(&key, &prompt);
    q.default = Some(current);
    let value = prompter
        .text(&q)
        .map_err(|e| LaunchError::Failed(anyhow!("cancelled: {e}")))?;
    Ok([(key, value)].into_iter().collect())
}

fn main_unit(c: &Ctx) -> String {
    Layout::unit_name(
        c.profile.name.as_str(),
        c.profile.components[0].name.as_str(),
        Some(c.before.active_slot),
    )
}

fn resources_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let client = c.client.as_ref().context("no API connection")?;
    let node = c.before.container.node.clone();
    let vmid = c.vmid();
    let cfg = client.ct_config(&node, vmid)?;
    c.old_resources = Resources {
        cores: cfg.cores,
        memory_mib: cfg.memory,
        swap_mib: cfg.swap,
        disk_gib: None,
    };
    let r = c.change.resources.clone();
    if r.cores.is_some() || r.memory_mib.is_some() || r.swap_mib.is_some() {
        client.update_ct_config(
            &node,
            vmid,
            &CtConfigUpdate {
                digest: Some(cfg.digest.clone()),
                cores: r.cores,
                memory: r.memory_mib,
                swap: r.swap_mib,
                ..Default::default()
            },
        )?;
        rep.info("container resources updated through the API");
    }
    if let Some(gib) = r.disk_gib {
        grow_disk(client, &node, vmid, &cfg, gib, rep)?;
    }
    Ok(())
}

/// Grows the root disk. PVE refuses the current size ("disk is already at specified size"),
/// so that is a no-op here; and when the online resize2fs fails it only logs the failure and
/// still ends `OK` (pve-container's resize_vm), so the log is read for it.
fn grow_disk(
    client: &crate::pve::Client,
    node: &str,
    vmid: u32,
    cfg: &crate::pve::CtConfig,
    gib: u32,
    rep: &Reporter,
) -> anyhow::Result<()> {
    if cfg
        .rootfs_size_gib()
        .is_some_and(|now| (now - f64::from(gib)).abs() < 1e-9)
    {
        rep.info(format!("root disk is already {gib} GiB"));
        return Ok(());
    }
    let upid = client.resize_ct(node, vmid, gib)?;
    let outcome = client.wait_task(&upid, Duration::from_secs(600), &mut |_| {})?;
    for w in outcome.warning_lines.iter().chain(
        outcome
            .log
            .iter()
            .filter(|l| l.starts_with("Failed to update the container's filesystem")),
    ) {
        let volid = cfg
            .rootfs
            .as_deref()
            .and_then(|r| r.split(',').next())
            .unwrap_or("VOLID");
        rep.warn(format!(
            "{w}\n  help: the disk is {gib} GiB but its filesystem was not grown: stop CT {vmid}, then on the node run `e2fsck -f $(pvesm path {volid})` and `resize2fs $(pvesm path {volid})`"
        ));
    }
    rep.info(format!("root disk grown to {gib} GiB"));
    Ok(())
}

fn undo_resources(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let Some(client) = c.client.as_ref() else {
        return Ok(());
    };
    let o = c.old_resources.clone();
    let r = &c.change.resources;
    if r.cores.is_some() || r.memory_mib.is_some() || r.swap_mib.is_some() {
        client.update_ct_config(
            &c.before.container.node,
            c.vmid(),
            &CtConfigUpdate {
                cores: r.cores.and(o.cores),
                memory: r.memory_mib.and(o.memory_mib),
                swap: r.swap_mib.and(o.swap_mib),
                ..Default::default()
            },
        )?;
        rep.info("container resources set back");
    }
    if r.disk_gib.is_some() {
        rep.warn("the root disk stays grown (disks cannot shrink)");
    }
    Ok(())
}

fn hold(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let p = c.proxy();
    // nginx's Lua sees the flag per request: no reload, so no connection is closed.
    p.hold_on()?;
    p.prove_hold(true)?;
    if p.wait_writes_done(Duration::from_secs(15))?.is_none() {
        bail!("writes accepted before the hold are still running after 15 s; try again later");
    }
    rep.info(format!(
        "writes are held at nginx while the data moves (they wait up to {} s, then get 503 with Retry-After)",
        c.profile.update.hold_max_wait_s()
    ));
    Ok(())
}

fn release_hold(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let p = c.proxy();
    if p.hold_present()? {
        p.hold_off()?;
        p.prove_hold(false)?;
        rep.info("writes flow again");
    }
    Ok(())
}

fn binary(profile: &Profile) -> anyhow::Result<String> {
    Ok(profile.components[0].install.entry())
}

/// Where the app's export is written (`{dir}` in the profile's export/import commands): a
/// private directory under /run, removed when the reconfigure is recorded.
const EXPORT_DIR: &str = "/run/launch-export";

/// The export's file name (`{file}`): the profile's `migrations.export_file`, or this.
const DEFAULT_EXPORT_FILE: &str = "launch-export";

/// The profile's data paths (relative to the slot's data directory), kept aside before an
/// import replaces them and put back if it fails.
fn data_paths(profile: &Profile) -> Vec<String> {
    profile
        .backup
        .paths
        .iter()
        .filter(|p| !p.is_empty() && !p.split('/').any(|s| s == ".." || s.is_empty()))
        .cloned()
        .collect()
}

fn export_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let m = c
        .profile
        .migrations
        .clone()
        .context("no migrations section")?;
    let user = c.profile.components[0].user.to_string();
    let vmid = c.vmid();
    let data = Layout::data_dir(c.profile.name.as_str(), c.before.active_slot);
    crate::ct::run(c.ct.as_ref(), vmid, &["mkdir", "-p", EXPORT_DIR])?;
    crate::ct::run(
        c.ct.as_ref(),
        vmid,
        &["chown", &format!("{user}:"), EXPORT_DIR],
    )?;
    crate::ct::run(c.ct.as_ref(), vmid, &["chmod", "0700", EXPORT_DIR])?;
    for p in data_paths(&c.profile) {
        let (from, aside) = (format!("{data}/{p}"), format!("{data}/{p}.pre-reconfigure"));
        crate::ct::run(c.ct.as_ref(), vmid, &["rm", "-rf", &aside])?;
        // A path the app has not created yet has nothing to keep.
        let _ = c.ct.exec(vmid, &["cp", "-a", &from, &aside]);
    }
    app_command(c, &m.export, None)?;
    rep.info("the app exported its data");
    let kind = c.change.database.context("no database change")?;
    if crate::database::adapter(kind).is_external() {
        // The server's admin created the database and its user; the import fills it.
        return Ok(());
    }
    let password = c
        .change
        .next
        .secrets
        .get("db_password")
        .cloned()
        .unwrap_or_default();
    let db = deploy::create_local_database(
        c.ct.as_ref(),
        vmid,
        kind,
        c.profile.name.as_str(),
        &password,
    )?;
    rep.info(format!("{} database {} is ready", kind.label(), db.name));
    Ok(())
}

type Services = Vec<&'static dyn crate::service::Adapter>;

/// The services a settings change turns on, and those it turns off.
fn services_changed(
    profile: &Profile,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> (Services, Services) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for s in &profile.services {
        match (s.enabled(before), s.enabled(after)) {
            (false, true) => on.push(crate::service::adapter(s.kind)),
            (true, false) => off.push(crate::service::adapter(s.kind)),
            _ => {}
        }
    }
    (on, off)
}

/// Sets up the services the new settings turn on, before the files that use them are written
/// (an instance made before a service existed gets its password generated here).
fn services_on_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let (on, _) = services_changed(&c.profile, &c.before.settings, &c.change.next.settings);
    for a in &on {
        let secrets = &mut c.change.next.secrets;
        if secrets.get(a.secret_key()).is_none_or(|p| p.is_empty()) {
            secrets.insert(
                a.secret_key().into(),
                crate::install::generate(crate::profile::SecretKind::Alnum, 32),
            );
        }
    }
    crate::service::setup(
        c.ct.as_ref(),
        c.vmid(),
        &c.profile,
        &on,
        &c.change.next.secrets,
    )?;
    for a in on {
        rep.info(format!("{} answers on 127.0.0.1:{}", a.title(), a.port()));
    }
    Ok(())
}

/// Stops the services the new settings turn off, once the app runs without them.
fn services_off_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let (_, off) = services_changed(&c.profile, &c.before.settings, &c.change.next.settings);
    for a in off {
        crate::ct::run(
            c.ct.as_ref(),
            c.vmid(),
            &["systemctl", "disable", "--now", a.unit()],
        )?;
        rep.info(format!(
            "{} stopped and disabled; its data stays in the container",
            a.unit()
        ));
    }
    Ok(())
}

fn import_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let m = c
        .profile
        .migrations
        .clone()
        .context("no migrations section")?;
    app_command(c, &m.import, m.import_input.as_deref())?;
    rep.info("the app imported its data into the new database");
    Ok(())
}

/// Runs one of the profile's export/import commands (`{file}` replaced) as the app runs.
fn app_command(c: &Ctx, template: &[String], input: Option<&str>) -> anyhow::Result<()> {
    let bin = format!(
        "{}/{}",
        Layout::release_dir(c.profile.name.as_str(), &c.before.app_version),
        binary(&c.profile)?
    );
    let file = c
        .profile
        .migrations
        .as_ref()
        .and_then(|m| m.export_file.clone())
        .unwrap_or_else(|| DEFAULT_EXPORT_FILE.into());
    let args: Vec<String> = template
        .iter()
        .map(|a| a.replace("{dir}", EXPORT_DIR).replace("{file}", &file))
        .collect();
    let user = c.profile.components[0].user.to_string();
    deploy::run_app_command(
        c.ct.as_ref(),
        c.vmid(),
        &main_unit(c),
        &user,
        &bin,
        &args,
        input,
    )?;
    Ok(())
}

fn undo_import(c: &mut Ctx, _rep: &Reporter) -> anyhow::Result<()> {
    // The import may have replaced the data paths with the export's copy; the originals come back.
    let data = Layout::data_dir(c.profile.name.as_str(), c.before.active_slot);
    for p in data_paths(&c.profile) {
        let (to, aside) = (format!("{data}/{p}"), format!("{data}/{p}.pre-reconfigure"));
        if c.ct.exec(c.vmid(), &["test", "-e", &aside])?.ok() {
            crate::ct::run(c.ct.as_ref(), c.vmid(), &["rm", "-rf", &to])?;
            crate::ct::run(c.ct.as_ref(), c.vmid(), &["mv", &aside, &to])?;
        }
    }
    Ok(())
}

fn write_files(c: &mut Ctx, files: &[Rendered]) -> anyhow::Result<()> {
    let vmid = c.vmid();
    for (path, text, mode, owner) in files {
        if let Some(dir) = std::path::Path::new(path).parent() {
            sh(c.ct.as_ref(), vmid, &format!("mkdir -p {}", dir.display()))?;
        }
        c.ct.write(vmid, path, text.as_bytes(), *mode, None)?;
        if let Some(o) = owner {
            crate::ct::run(c.ct.as_ref(), vmid, &["chgrp", o, path])?;
        }
    }
    Ok(())
}

fn files_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let vmid = c.vmid();
    let p = c.profile.name.to_string();
    let mut files = rendered_files(&c.profile, &c.change.next)?;
    // TLS files: pushed from the host (the key stays 0600).
    let tls_paths = [
        format!("/etc/{p}/tls/cert.pem"),
        format!("/etc/{p}/tls/key.pem"),
    ];
    let mut all: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    all.extend(tls_paths.iter().cloned());
    for path in &all {
        let have = c.ct.exec(vmid, &["cat", path])?;
        c.saved
            .push((path.clone(), have.ok().then(|| have.stdout.into_bytes())));
    }
    if let Some(Tls::Set { cert, key }) = &c.change.tls {
        files.push((
            tls_paths[0].clone(),
            std::fs::read_to_string(cert)?,
            0o644,
            None,
        ));
        files.push((
            tls_paths[1].clone(),
            std::fs::read_to_string(key)?,
            0o600,
            None,
        ));
    }
    write_files(c, &files)?;
    if matches!(c.change.tls, Some(Tls::Off | Tls::Set { .. }))
        && crate::acme::enabled(&c.before.settings)
    {
        // The admin's own certificate or plain HTTP now: renewals would overwrite the files.
        crate::acme::teardown(c.ct.as_ref(), vmid, &p);
    }
    c.nginx_port = deploy::http_port(&c.change.next.settings);
    sh(c.ct.as_ref(), vmid, "systemctl daemon-reload")?;
    rep.info(format!("{} files written from the profile", files.len()));
    Ok(())
}

/// Puts every saved file back, reloads nginx and restarts the app on them.
fn undo_files(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let vmid = c.vmid();
    for (path, content) in c.saved.clone() {
        match content {
            Some(bytes) => {
                let mode = if path.ends_with("key.pem") || path.ends_with(".env") {
                    0o600
                } else {
                    0o644
                };
                c.ct.write(vmid, &path, &bytes, mode, None)?;
            }
            None => {
                c.ct.exec(vmid, &["rm", "-f", &path])?;
            }
        }
    }
    // Group ownership of the app's config as rendered.
    for f in &c.profile.components[0].files {
        if let Some(o) = &f.owner {
            let _ = c.ct.exec(vmid, &["chgrp", o.as_str(), &f.path]);
        }
    }
    sh(c.ct.as_ref(), vmid, "systemctl daemon-reload")?;
    c.nginx_port = deploy::http_port(&c.before.settings);
    c.proxy().reload_proven(Duration::from_secs(
        c.profile.components[0].drain_s as u64 + 30,
    ))?;
    restart_app(c, &c.before.clone(), rep)?;
    rep.warn("the previous files and settings are back");
    Ok(())
}

/// The current site plus the challenge location (TLS as it is now), so the CA can fetch its
/// token before anything else changes; lego, its settings, script and timer in the container.
fn acme_setup_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let Some(Tls::Acme(r)) = c.change.tls.clone() else {
        return Ok(());
    };
    let vmid = c.vmid();
    let p = c.profile.name.to_string();
    let mut now = c.before.clone();
    for k in ["acme_email", "acme_directory", "acme_challenge"] {
        if let Some(v) = c.change.next.settings.get(k) {
            now.settings.insert(k.into(), v.clone());
        }
    }
    let site_path = Layout::nginx_site(&p);
    let site = rendered_files(&c.profile, &now)?
        .into_iter()
        .find(|f| f.0 == site_path)
        .ok_or_else(|| anyhow!("the profile renders no nginx site"))?;
    let have = c.ct.exec(vmid, &["cat", &site_path])?;
    c.saved.push((
        site_path.clone(),
        have.ok().then(|| have.stdout.into_bytes()),
    ));
    write_files(c, &[site])?;
    c.proxy().reload_proven(Duration::from_secs(
        c.profile.components[0].drain_s as u64 + 30,
    ))?;
    crate::acme::setup(c.ct.as_ref(), vmid, &p, &r)?;
    rep.info(format!(
        "nginx serves /.well-known/acme-challenge/ from {}; lego and the renewal timer are in place",
        crate::acme::AcmePaths::of(&p).webroot
    ));
    Ok(())
}

fn undo_acme_setup(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let vmid = c.vmid();
    let p = c.profile.name.to_string();
    if !crate::acme::enabled(&c.before.settings) {
        crate::acme::teardown(c.ct.as_ref(), vmid, &p);
    }
    let site_path = Layout::nginx_site(&p);
    if let Some((_, Some(bytes))) = c.saved.iter().find(|(path, _)| *path == site_path).cloned() {
        c.ct.write(vmid, &site_path, &bytes, 0o644, None)?;
        c.proxy().reload_proven(Duration::from_secs(
            c.profile.components[0].drain_s as u64 + 30,
        ))?;
    }
    rep.warn("the nginx site is back as it was; it serves as before");
    Ok(())
}

fn acme_issue_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let Some(Tls::Acme(r)) = c.change.tls.clone() else {
        return Ok(());
    };
    let p = c.profile.name.to_string();
    crate::acme::obtain(c.ct.as_ref(), c.vmid(), &p, &r, "run")?;
    rep.info(format!(
        "certificate for {} obtained; renewal: {}.timer",
        r.domain,
        crate::acme::AcmePaths::of(&p).unit
    ));
    Ok(())
}

fn nginx_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let p = c.proxy();
    // The site's switch and hold need Debian's Lua module (absent in older instances).
    if p.ensure_lua_module()? {
        rep.info("nginx: installed Debian's Lua module (libnginx-mod-http-lua)");
    }
    // Proven: the workers of the old configuration gone, then a probe through the new one.
    let limit = Duration::from_secs(c.profile.components[0].drain_s as u64 + 30);
    p.reload_proven(limit)?;
    let port = deploy::slot_port(&c.profile.components[0], c.before.active_slot);
    p.prove_upstream(port)?;
    rep.info("nginx -t ok; reloaded, its old workers gone, and it answers");
    Ok(())
}

/// Restarts the active slot (and switched-on extra components) on the files of `inst`, and
/// waits for health; returns how long the app did not answer.
fn restart_app(c: &mut Ctx, inst: &Instance, rep: &Reporter) -> anyhow::Result<Duration> {
    let vmid = c.vmid();
    let main = c.profile.components[0].clone();
    let unit = main_unit(c);
    let port = deploy::slot_port(&main, inst.active_slot);
    let t = Instant::now();
    sh(c.ct.as_ref(), vmid, &format!("systemctl restart {unit}"))?;
    crate::health::wait_healthy(
        &crate::health::Target {
            ct: c.ct.as_ref(),
            vmid,
            component: &main,
            port,
        },
        &unit,
        Duration::from_millis(100),
        Duration::from_secs(u64::from(main.health.deadline_s)),
    )?;
    let took = t.elapsed();
    let app = AppSettings::of_instance(&c.profile, inst);
    let on: Vec<String> = app
        .extra_components()
        .iter()
        .map(|e| e.name.to_string())
        .collect();
    for e in c.profile.components.iter().skip(1) {
        let u = Layout::unit_name(c.profile.name.as_str(), e.name.as_str(), None);
        if on.contains(&e.name.to_string()) {
            sh(
                c.ct.as_ref(),
                vmid,
                &format!("systemctl enable --quiet {u} && systemctl restart {u}"),
            )?;
        } else {
            let _ =
                c.ct.exec(vmid, &["systemctl", "disable", "--now", "--quiet", &u]);
        }
    }
    rep.info(format!(
        "{unit} restarted: the app did not answer for {} ms",
        took.as_millis()
    ));
    Ok(took)
}

fn restart_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let next = c.change.next.clone();
    let took = restart_app(c, &next, rep)?;
    c.interruption = Some(took);
    Ok(())
}

fn record_step(c: &mut Ctx, rep: &Reporter) -> anyhow::Result<()> {
    let mut next = c.change.next.clone();
    next.updated = timestamp();
    c.store.save(&next)?;
    let text = serde_yaml_ng::to_string(&next)?;
    c.ct.write(
        c.vmid(),
        "/etc/launch/instance.yaml",
        text.as_bytes(),
        0o600,
        None,
    )?;
    let data = Layout::data_dir(c.profile.name.as_str(), c.before.active_slot);
    let mut leftovers: Vec<String> = data_paths(&c.profile)
        .iter()
        .map(|p| format!("{data}/{p}.pre-reconfigure"))
        .collect();
    leftovers.push(EXPORT_DIR.into());
    let mut argv = vec!["rm", "-rf"];
    argv.extend(leftovers.iter().map(String::as_str));
    let _ = c.ct.exec(c.vmid(), &argv);
    rep.info(format!(
        "recorded {}",
        c.store.path_of(&next.name).display()
    ));
    Ok(())
}

/// What to change, as plain data (no clap types): the CLI builds it from `--set` pairs, the
/// dashboard from its form.
#[derive(Debug, Clone, Default)]
pub struct ReconfigureRequest {
    pub name: String,
    /// The settings to change and their new values; empty: show the settings and their drift,
    /// and ask for one change when someone can be asked.
    pub sets: BTreeMap<String, String>,
}

/// Reconfigures `a.name`. With no settings given it shows them (and their drift) and, when
/// `ask` is there, asks which one to change.
pub fn run(
    g: &Site,
    a: &ReconfigureRequest,
    ask_with: Option<&mut dyn Prompter>,
    out: &Output,
) -> Result<Outcome> {
    let sets = a.sets.clone();
    let store = InstanceStore::new(&g.config);
    let inst = store.load(&a.name)?;
    let profile = Catalog::new(&g.config).load(&inst.profile)?.profile;
    let ct: Box<dyn CtAccess> = Box::new(Pct::find()?);
    let vmid = inst.container.vmid;
    let sets = if sets.is_empty() {
        let drifts = drift(ct.as_ref(), &profile, &inst).map_err(LaunchError::Failed)?;
        let report = SettingsReport::new(&inst, drifts, &profile);
        let Some(prompter) = ask_with else {
            return Ok(Outcome::of(&report));
        };
        out.note(report.text());
        ask(prompter, &inst, &profile)?
    } else {
        sets
    };
    let change = validate(&profile, &inst, &sets, Some(ct.as_ref()))?;
    if change.lines.is_empty() {
        return Ok(Outcome::of(&ReconfigureReport {
            instance: a.name.clone(),
            changed: Vec::new(),
            interruption_ms: None,
            log: None,
        }));
    }
    let _lock = lock_instance(
        &a.name,
        "reconfigure",
        Duration::ZERO,
        Box::new(Pct::find()?),
        vmid,
    )?;
    let client = if change.resources.any() {
        let conn = connect(g)?;
        if let Some(w) = conn.warning {
            out.warn(w);
        }
        Some(conn.client)
    } else {
        None
    };
    let mut plan = Plan::new("reconfigure", Some(a.name.clone()));
    if change.resources.any() {
        plan = plan.step(
            FnStep::new(
                "resources",
                "Changing the container's resources",
                resources_step,
            )
            .with_undo(undo_resources),
        );
    }
    let moving = change.database.is_some();
    if moving {
        plan = plan
            .step(
                FnStep::new("hold-writes", "Holding writes while the data moves", hold)
                    .with_undo(release_hold),
            )
            .step(FnStep::new(
                "export",
                "Exporting the data with the app's own dump",
                export_step,
            ));
    }
    // Resources alone need no new files and no restart.
    let rerender = change.next.settings != inst.settings || change.tls.is_some();
    if matches!(change.tls, Some(Tls::Acme(_))) {
        plan = plan
            .step(
                FnStep::new(
                    "acme-setup",
                    "Serving the ACME challenge location and installing lego",
                    acme_setup_step,
                )
                .with_undo(undo_acme_setup),
            )
            .step(FnStep::new(
                "acme-issue",
                "Obtaining the certificate from the CA",
                acme_issue_step,
            ));
    }
    let (turned_on, turned_off) = services_changed(&profile, &inst.settings, &change.next.settings);
    if !turned_on.is_empty() {
        plan = plan.step(FnStep::new(
            "services",
            format!(
                "Setting up {}",
                turned_on
                    .iter()
                    .map(|a| a.title())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            services_on_step,
        ));
    }
    if rerender {
        plan = plan.step(
            FnStep::new("files", "Writing the files from the profile", files_step)
                .with_undo(undo_files),
        );
    }
    if moving {
        plan = plan.step(
            FnStep::new(
                "import",
                "Importing the data into the new database",
                import_step,
            )
            .with_undo(undo_import),
        );
    }
    if rerender {
        plan = plan
            .step(FnStep::new(
                "nginx",
                "Checking and reloading nginx",
                nginx_step,
            ))
            .step(FnStep::new(
                "restart",
                "Restarting the app and checking its health",
                restart_step,
            ));
    }
    if !turned_off.is_empty() {
        plan = plan.step(FnStep::new(
            "services-off",
            format!(
                "Stopping {} (its data stays in the container)",
                turned_off
                    .iter()
                    .map(|a| a.title())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            services_off_step,
        ));
    }
    if moving {
        plan = plan.step(FnStep::new(
            "release-hold",
            "Letting writes flow again",
            release_hold,
        ));
    }
    plan = plan.step(FnStep::new(
        "record",
        "Recording the new settings",
        record_step,
    ));
    let lines = change.lines.clone();
    let before_settings = inst.settings.clone();
    let mut c = Ctx {
        ct,
        client,
        profile,
        store,
        before: inst,
        change,
        saved: Vec::new(),
        old_resources: Resources::default(),
        interruption: None,
        nginx_port: deploy::http_port(&before_settings),
    };
    let log_path = operation_log_path(&a.name, "reconfigure");
    crate::engine::handle_interrupts();
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    execute(plan, &mut c, &mut views.all(), false).map_err(|e| {
        LaunchError::Failed(anyhow!(
            "reconfigure of {} failed: {e}\n  {}\n  log: {}",
            a.name,
            if e.undo_failures.is_empty() {
                "the previous files, settings and resources are back; the instance serves as before"
            } else {
                "some changes could not be undone: see the log"
            },
            log_path.display()
        ))
    })?;
    Ok(Outcome::of(&ReconfigureReport {
        instance: a.name.clone(),
        changed: lines,
        interruption_ms: c.interruption.map(|d| d.as_millis() as u64),
        log: Some(log_path),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn external_database_needs_every_field_and_a_private_password_file() {
        let err = external_db(
            DatabaseKind::ExternalPostgres,
            &sets(&[("db_host", "db.lan")]),
        )
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["db_user", "db_name", "db_password_file"]);

        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let good = [
            ("db_host", "127.0.0.1"),
            ("db_port", port.as_str()),
            ("db_user", "vikunja"),
            ("db_name", "vikunja"),
            ("db_password_file", pw.to_str().unwrap()),
        ];
        let err = external_db(DatabaseKind::ExternalPostgres, &sets(&good)).unwrap_err();
        assert!(err[0].help.contains("chmod 600"), "{:?}", err);
        // The password never shows in the problem.
        assert!(!format!("{err:?}").contains("s3cret"));

        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = external_db(DatabaseKind::ExternalPostgres, &sets(&good)).unwrap();
        assert_eq!(ok.password, "s3cret");
        assert_eq!(ok.port.to_string(), port);

        drop(listener);
        let err = external_db(DatabaseKind::ExternalPostgres, &sets(&good)).unwrap_err();
        assert!(err[0].problem.contains("nothing answers"), "{:?}", err);
    }
}
