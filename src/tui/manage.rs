//! The screens that manage one instance beyond a single key: the update screen (the versions
//! its profile offers and what `update --check` says), the reconfigure form (the current
//! settings, checked as they are typed by reconfigure's own checks, with the drift the
//! container shows), and the backups screen (the archives with their verification state).
//! Plain data and pure changes, as in `model`: the workers fill them in, the views draw them.

use std::collections::BTreeMap;

use super::form::Field;
use crate::instance::Instance;
use crate::profile::{Channel, Profile};

/// One release the update screen offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionChoice {
    pub version: String,
    pub unstable: bool,
    /// Components that must be at least this version (`mcp ≥ 0.10.0`).
    pub requires: Vec<String>,
    pub commit: Option<String>,
}

/// Before an update: the releases, newest first, and `update --check`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateView {
    pub instance: String,
    pub current: String,
    /// `None` while the profile is read.
    pub versions: Option<Result<Vec<VersionChoice>, String>>,
    pub selected: usize,
    /// `update --check --json`'s object; `None` while it runs.
    pub check: Option<Result<serde_json::Value, String>>,
}

impl UpdateView {
    pub fn new(instance: &str, current: &str) -> Self {
        UpdateView {
            instance: instance.into(),
            current: current.into(),
            versions: None,
            selected: 0,
            check: None,
        }
    }

    /// The profile's releases, newest first; the cursor on the newest stable one.
    pub fn set_profile(&mut self, profile: Result<Profile, String>) {
        self.versions = Some(profile.map(|p| {
            let mut v: Vec<VersionChoice> = p
                .versions
                .iter()
                .map(|r| VersionChoice {
                    version: r.version.clone(),
                    unstable: r.channel == Channel::Unstable,
                    requires: r
                        .requires
                        .iter()
                        .map(|(c, min)| format!("{c} ≥ {min}"))
                        .collect(),
                    commit: r.commit.clone(),
                })
                .collect();
            v.sort_by_key(|c| std::cmp::Reverse(crate::update::version_key(&c.version)));
            v
        }));
        self.selected = self.list().iter().position(|c| !c.unstable).unwrap_or(0);
    }

    pub fn list(&self) -> &[VersionChoice] {
        match &self.versions {
            Some(Ok(v)) => v,
            _ => &[],
        }
    }

    pub fn chosen(&self) -> Option<&VersionChoice> {
        self.list().get(self.selected)
    }

    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        if self.selected + 1 < self.list().len() {
            self.selected += 1;
        }
    }

    /// What `--check` found, as lines for the screen.
    pub fn check_lines(&self) -> Vec<String> {
        let Some(Ok(c)) = &self.check else {
            return Vec::new();
        };
        let s = |k: &str| c[k].as_str().map(str::to_string);
        let mut out = vec![format!(
            "recorded {}, running {}",
            s("recorded").unwrap_or_else(|| "?".into()),
            s("running").unwrap_or_else(|| "unknown".into())
        )];
        if let Some(n) = s("newest") {
            out.push(format!("newest the profile allows (stable): {n}"));
        }
        if let serde_json::Value::Object(u) = &c["upstream"] {
            match (u.get("latest"), u.get("error")) {
                (Some(v), _) => out.push(format!(
                    "upstream's newest release: {}",
                    v.as_str().unwrap_or("?")
                )),
                (_, Some(e)) => out.push(format!("upstream: {}", e.as_str().unwrap_or("?"))),
                _ => {}
            }
        }
        if c["update_available"] == true {
            out.push(format!(
                "update available: {} → {}",
                s("recorded").unwrap_or_default(),
                s("target").unwrap_or_default()
            ));
        }
        if let serde_json::Value::Object(p) = &c["pending_operation"] {
            out.push(format!(
                "an interrupted {} ({} → {}) is pending: the update finishes or undoes it first",
                p.get("operation").and_then(|v| v.as_str()).unwrap_or("?"),
                p.get("from").and_then(|v| v.as_str()).unwrap_or("?"),
                p.get("to").and_then(|v| v.as_str()).unwrap_or("?"),
            ));
        }
        out
    }
}

/// Reconfigure: the current settings as a form.
#[derive(Debug, Clone)]
pub struct ReconfigureForm {
    pub instance: Instance,
    pub profile: Profile,
    pub fields: Vec<Field>,
    /// The values as recorded (empty: the container's current resources are kept).
    pub original: BTreeMap<String, String>,
    pub focus: usize,
    /// `reconfigure NAME --json`'s drift: files in the container that differ from the record.
    pub drift: Option<Result<Vec<String>, String>>,
    pub errors: BTreeMap<String, String>,
    pub other_errors: Vec<String>,
    /// The change's lines (`public_url: A → B`), shown to confirm.
    pub summary: Option<Vec<String>>,
}

/// Settings that are not the profile's questions, offered by the form (reconfigure's own),
/// with their help; your own certificate files and a database move stay on the command line
/// (files and passwords to give).
const OWN: &[(&str, &str, &str)] = &[
    ("cores", "CPU cores", "empty: as it is now"),
    ("memory_mib", "Memory (MiB)", "empty: as it is now"),
    ("swap_mib", "Swap (MiB)", "empty: as it is now"),
    ("disk_gib", "Disk (GiB, grows only)", "empty: as it is now"),
    ("http_port", "nginx HTTP port", "empty: as it is now"),
    ("https_port", "nginx HTTPS port", "empty: as it is now"),
    (
        "tls",
        "HTTPS (off, or acme)",
        "acme: a certificate from Let's Encrypt or your ACME CA, renewed in the container; off: HTTP only; own: your certificate (change it with --set tls_cert, tls_key)",
    ),
    ("acme_email", "ACME contact email", "with tls acme: the CA's contact"),
    (
        "acme_directory",
        "ACME directory URL",
        "with tls acme: empty for Let's Encrypt; staging or any RFC 8555 CA's URL",
    ),
    (
        "acme_challenge",
        "ACME challenge",
        "with tls acme: http (port 80 reaches the container) or dns-cloudflare",
    ),
    ("acme_ca_file", "ACME CA file", "with tls acme: a PEM file on this host for a private CA"),
    (
        "acme_cloudflare_token_file",
        "Cloudflare token file",
        "with dns-cloudflare: a 0600 file, token scoped to Zone:DNS:Edit",
    ),
    (
        "acme_dns_resolvers",
        "DNS-01 resolvers",
        "with dns-cloudflare: IP:PORT,... to check the record with",
    ),
];

impl ReconfigureForm {
    pub fn new(instance: Instance, profile: Profile) -> Self {
        let mut fields = Vec::new();
        for q in &profile.questions {
            // Secrets are generated once; install-only answers live in the app's own data after.
            if q.secret || q.install_only {
                continue;
            }
            let key = q.key.to_string();
            fields.push(Field {
                value: instance.settings.get(&key).cloned().unwrap_or_default(),
                label: q
                    .prompt
                    .split(" (")
                    .next()
                    .unwrap_or(&q.prompt)
                    .trim_end_matches(['?', ':'])
                    .to_string(),
                key,
                secret: false,
                help: q.help.clone(),
            });
        }
        for (key, label, help) in OWN {
            let value = match *key {
                // The record says `tls: true` for both kinds of certificate.
                "tls" if crate::acme::enabled(&instance.settings) => "acme".to_string(),
                "tls" if instance.settings.get("tls").map(String::as_str) == Some("true") => {
                    "own".to_string()
                }
                _ => instance.settings.get(*key).cloned().unwrap_or_default(),
            };
            fields.push(Field {
                key: key.to_string(),
                label: label.to_string(),
                value,
                secret: false,
                help: Some(help.to_string()),
            });
        }
        let original = fields
            .iter()
            .map(|f| (f.key.clone(), f.value.clone()))
            .collect();
        ReconfigureForm {
            instance,
            profile,
            fields,
            original,
            focus: 0,
            drift: None,
            errors: BTreeMap::new(),
            other_errors: Vec::new(),
            summary: None,
        }
    }

    /// What differs from the record: the `--set KEY=VALUE` pairs the run gets.
    pub fn changes(&self) -> BTreeMap<String, String> {
        let mut changes: BTreeMap<String, String> = self
            .fields
            .iter()
            .filter(|f| {
                let v = f.value.trim();
                !v.is_empty() && self.original.get(&f.key).map(|o| o.trim()) != Some(v)
            })
            .map(|f| (f.key.clone(), f.value.trim().to_string()))
            .collect();
        // reconfigure takes ACME settings only with `tls=acme`, which obtains the certificate
        // again from exactly the settings given: so a changed ACME field sends `tls=acme`, and
        // `tls=acme` sends every ACME field the form holds (an unchanged custom directory stays).
        let acme_changed = changes
            .keys()
            .any(|k| crate::acme::KEYS.contains(&k.as_str()));
        let tls_acme = self
            .fields
            .iter()
            .any(|f| f.key == "tls" && f.value.trim() == "acme");
        if tls_acme && (acme_changed || changes.contains_key("tls")) {
            changes.insert("tls".into(), "acme".into());
            for f in &self.fields {
                let v = f.value.trim();
                if crate::acme::KEYS.contains(&f.key.as_str()) && !v.is_empty() {
                    changes.insert(f.key.clone(), v.to_string());
                }
            }
        }
        changes
    }

    /// The `--set` arguments, one argv element each (never through a shell).
    pub fn set_args(&self) -> Vec<String> {
        self.changes()
            .into_iter()
            .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
            .collect()
    }

    /// reconfigure's own checks on the changes; true when it accepts them.
    pub fn validate(&mut self) -> Option<Vec<String>> {
        self.errors.clear();
        self.other_errors.clear();
        match crate::reconfigure::check_changes(&self.profile, &self.instance, &self.changes()) {
            Ok(lines) => Some(lines),
            Err(problems) => {
                for p in problems {
                    let text = if p.help.is_empty() {
                        p.problem.clone()
                    } else {
                        format!("{} ({})", p.problem, p.help)
                    };
                    if self.fields.iter().any(|f| f.key == p.field) {
                        self.errors.entry(p.field.clone()).or_insert(text);
                    } else {
                        self.other_errors.push(if p.field.is_empty() {
                            text
                        } else {
                            format!("{}: {text}", p.field)
                        });
                    }
                }
                None
            }
        }
    }

    pub fn type_char(&mut self, c: char) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.value.push(c);
        }
        self.validate();
    }

    pub fn backspace(&mut self) {
        if let Some(f) = self.fields.get_mut(self.focus) {
            f.value.pop();
        }
        self.validate();
    }

    pub fn next(&mut self) {
        self.focus = (self.focus + 1) % self.fields.len().max(1);
    }

    pub fn prev(&mut self) {
        let n = self.fields.len().max(1);
        self.focus = (self.focus + n - 1) % n;
    }

    /// Enter: the summary of the changes when they are accepted (and there are some).
    pub fn submit(&mut self) -> bool {
        match self.validate() {
            Some(lines) if lines.is_empty() => {
                self.other_errors
                    .push("nothing to change: every value is the current one".into());
                false
            }
            Some(lines) => {
                self.summary = Some(lines);
                true
            }
            None => {
                if let Some(i) = self
                    .fields
                    .iter()
                    .position(|f| self.errors.contains_key(&f.key))
                {
                    self.focus = i;
                }
                false
            }
        }
    }
}

/// One archive on the backups screen, as `backups NAME --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    pub archive: String,
    pub created: String,
    pub version: String,
    pub size: u64,
    /// `verified 2026-…`, `not verified`, `changed since verified`, `unreadable`.
    pub state: String,
    /// Why it was taken (`backup`, `safety before restore`, …).
    pub reason: String,
}

impl BackupEntry {
    pub fn verified(&self) -> bool {
        self.state.starts_with("verified")
    }

    pub fn file_name(&self) -> &str {
        self.archive.rsplit('/').next().unwrap_or(&self.archive)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackupsView {
    pub instance: String,
    /// `None` while the list is read; newest first.
    pub list: Option<Result<Vec<BackupEntry>, String>>,
    pub selected: usize,
}

impl BackupsView {
    pub fn new(instance: &str) -> Self {
        BackupsView {
            instance: instance.into(),
            list: None,
            selected: 0,
        }
    }

    /// From `backups NAME --json`'s object.
    pub fn set_list(&mut self, v: Result<serde_json::Value, String>) {
        // The cursor stays on its archive when the list is read again (a restore adds a
        // safety backup at the top).
        let was = self.chosen().map(|b| b.archive.clone());
        self.list = Some(v.map(|v| {
            let mut list: Vec<BackupEntry> = v["backups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let s = |k: &str| b[k].as_str().unwrap_or_default().to_string();
                    BackupEntry {
                        archive: s("archive"),
                        created: s("created"),
                        version: s("version"),
                        size: b["size"].as_u64().unwrap_or(0),
                        state: s("state"),
                        reason: s("reason"),
                    }
                })
                .collect();
            list.reverse();
            list
        }));
        let n = self.entries().len();
        self.selected = was
            .and_then(|a| self.entries().iter().position(|b| b.archive == a))
            .unwrap_or(self.selected)
            .min(n.saturating_sub(1));
    }

    pub fn entries(&self) -> &[BackupEntry] {
        match &self.list {
            Some(Ok(v)) => v,
            _ => &[],
        }
    }

    pub fn chosen(&self) -> Option<&BackupEntry> {
        self.entries().get(self.selected)
    }

    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        if self.selected + 1 < self.entries().len() {
            self.selected += 1;
        }
    }
}
