//! The interactive install wizard: Default (sensible settings, only the questions that need a
//! person) or Advanced (every container, network, database and app setting). Each value is
//! checked as it is typed, by the same rules as an answers file, and the result is an answers
//! map, so a wizard install and an unattended one go through the very same `settings::resolve`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use thiserror::Error;

use super::settings::{self, NodeFacts, CONTAINER_KEYS};
use crate::error::LaunchError;
use crate::profile::{Channel, DatabaseKind, Profile, QuestionDef, QuestionKind};
use crate::prompt::{Prompter, Question};

pub const DEFAULT_MODE: &str = "Default settings";
pub const ADVANCED_MODE: &str = "Advanced settings";
pub const CANCEL: &str = "Cancel";

const GIB: u64 = 1024 * 1024 * 1024;

/// A person can go back to the start or retry an address this many times; past that the
/// wizard stops instead of looping on a prompter that keeps giving the same answer.
const MAX_ROUNDS: u32 = 20;

/// Never written to a defaults file: unique to one container (ID, name, address), pinned to one
/// moment (version), or secret.
const NOT_SAVED: &[&str] = &[
    "name",
    "vmid",
    "hostname",
    "ip",
    "root_password",
    "db_password",
    "version",
];

#[derive(Debug, Error)]
pub enum WizardError {
    #[error("gave up on `{key}` after {MAX_ROUNDS} rounds\n  help: {help}")]
    TooManyRounds { key: String, help: String },
    #[error("cannot save the defaults to {}: {reason:#}\n  help: check that the configuration directory is writable, or answer no to saving", .path.display())]
    Save {
        path: PathBuf,
        reason: anyhow::Error,
    },
}

/// The answers a user chose to keep for one profile (`CONFIG/defaults/PROFILE.yaml`, mode
/// 0600). They pre-fill the prompts and Default mode uses them. Secrets and per-container values
/// are never saved, and are ignored if written there by hand.
#[derive(Debug, Clone, Default)]
pub struct SavedDefaults {
    pub path: PathBuf,
    pub values: BTreeMap<String, String>,
    /// Keys found in the file that cannot be defaults (unknown, secret or per-container).
    pub ignored: Vec<String>,
}

impl SavedDefaults {
    pub fn path_for(config: &Path, profile: &str) -> PathBuf {
        config.join("defaults").join(format!("{profile}.yaml"))
    }

    /// Reads the saved defaults; a missing file means none.
    pub fn load(config: &Path, profile: &Profile) -> Result<Self, LaunchError> {
        let path = Self::path_for(config, profile.name.as_str());
        if !path.exists() {
            return Ok(SavedDefaults {
                path,
                ..Default::default()
            });
        }
        let all = crate::answers::load_answers(&path)?;
        let (values, ignored): (BTreeMap<_, _>, BTreeMap<_, _>) =
            all.into_iter().partition(|(k, _)| savable(profile, k));
        Ok(SavedDefaults {
            path,
            values,
            ignored: ignored.into_keys().collect(),
        })
    }

    /// Writes the savable part of `answers`, replacing what was saved before.
    pub fn save(&self, profile: &Profile, answers: &BTreeMap<String, String>) -> Result<()> {
        let keep: BTreeMap<&String, &String> = answers
            .iter()
            .filter(|(k, v)| savable(profile, k) && !v.is_empty())
            .collect();
        let body = serde_yaml_ng::to_string(&keep).map_err(|e| WizardError::Save {
            path: self.path.clone(),
            reason: e.into(),
        })?;
        let text = format!(
            "# Defaults for `launch-tui install {}` (saved by the wizard; secrets are never saved).\n{body}",
            profile.name
        );
        crate::fsutil::write_atomic(&self.path, text.as_bytes(), 0o600).map_err(|reason| {
            WizardError::Save {
                path: self.path.clone(),
                reason,
            }
        })?;
        Ok(())
    }
}

/// Whether `key` may be kept in a defaults file.
pub fn savable(profile: &Profile, key: &str) -> bool {
    !NOT_SAVED.contains(&key)
        && !settings::is_secret_key(profile, key)
        && (CONTAINER_KEYS.contains(&key) || profile.question(key).is_some())
}

/// Runs the wizard. `saved` pre-fills the prompts (a `name` in `saved.values`, e.g. from
/// `--name`, fixes the instance name); `force` lets resources go below the profile's minimum
/// with a warning, as `--force` does for answers files. The summary and notes are shown through
/// the prompter.
/// Returns `None` when the user cancels (the Cancel choice, Esc or Ctrl+C); nothing is created
/// by the wizard itself, but saying yes to the last question writes the defaults file.
pub fn ask(
    profile: &Profile,
    facts: &NodeFacts,
    saved: &SavedDefaults,
    force: bool,
    p: &mut dyn Prompter,
) -> Result<Option<BTreeMap<String, String>>> {
    let mut w = Wizard {
        profile,
        facts,
        force,
        p,
        fixed_name: saved.values.get("name").cloned(),
        prefill: saved.values.clone(),
        answers: BTreeMap::new(),
    };
    match w.run(saved) {
        Err(e) if is_cancel(&e) => Ok(None),
        r => r,
    }
}

fn is_cancel(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<inquire::InquireError>(),
            Some(inquire::InquireError::OperationCanceled)
                | Some(inquire::InquireError::OperationInterrupted)
        )
    })
}

/// A line for the person answering, through the prompter (the front end decides where it goes).
macro_rules! say {
    ($w:expr, $($arg:tt)*) => {
        $w.p.show(&format!($($arg)*))
    };
}

struct Wizard<'a> {
    profile: &'a Profile,
    facts: &'a NodeFacts,
    force: bool,
    p: &'a mut dyn Prompter,
    fixed_name: Option<String>,
    /// What pre-fills each prompt: the saved defaults, then what was typed in an earlier round.
    prefill: BTreeMap<String, String>,
    answers: BTreeMap<String, String>,
}

enum Round {
    Done,
    Cancelled,
}

impl Wizard<'_> {
    fn run(&mut self, saved: &SavedDefaults) -> Result<Option<BTreeMap<String, String>>> {
        if !saved.values.is_empty() {
            say!(
                self,
                "Your saved defaults for {} ({}) pre-fill the questions.",
                self.profile.name,
                saved.path.display()
            )?;
        }
        for k in &saved.ignored {
            say!(
                self,
                "  note: `{k}` in {} is not a setting that can be saved; ignored",
                saved.path.display()
            )?;
        }
        for _ in 0..MAX_ROUNDS {
            self.answers.clear();
            if let Some(n) = &self.fixed_name {
                self.answers.insert("name".into(), n.clone());
            }
            let mut q = Question::new("mode", "How do you want to set up the container?");
            let help = format!(
                "{}: Default asks only what it must; Advanced asks every setting",
                self.profile.title
            );
            q.help = Some(help.as_str());
            q.default = Some(DEFAULT_MODE.into());
            let modes = [DEFAULT_MODE, ADVANCED_MODE, CANCEL].map(String::from);
            let round = match self.p.select(&q, &modes)?.as_str() {
                DEFAULT_MODE => self.default_mode()?,
                ADVANCED_MODE => self.advanced_mode()?,
                _ => Round::Cancelled,
            };
            if let Round::Cancelled = round {
                return Ok(None);
            }
            if let Err(problems) =
                settings::resolve(self.profile, self.facts, &self.answers, self.force)
            {
                say!(
                    self,
                    "These settings cannot be used together; back to the start:"
                )?;
                for p in problems {
                    say!(self, "- {p}")?;
                }
                self.remember();
                continue;
            }
            if !self
                .p
                .confirm("confirm", "Create the container with these settings?", true)?
            {
                say!(self, "Nothing was created; back to the start.")?;
                self.remember();
                continue;
            }
            let save = format!("Save these as my defaults for {}?", self.profile.name);
            if self.p.confirm("save_defaults", &save, false)? {
                saved.save(self.profile, &self.answers)?;
                say!(
                    self,
                    "Saved to {} (secrets are not saved).",
                    saved.path.display()
                )?;
            }
            return Ok(Some(std::mem::take(&mut self.answers)));
        }
        Err(WizardError::TooManyRounds {
            key: "confirm".into(),
            help: "run the wizard again, or use --answers FILE".into(),
        }
        .into())
    }

    /// Keeps what was typed (not the secrets) to pre-fill the next round.
    fn remember(&mut self) {
        for (k, v) in &self.answers {
            if !settings::is_secret_key(self.profile, k) {
                self.prefill.insert(k.clone(), v.clone());
            }
        }
    }

    fn check(&self, key: &str, value: &str) -> Result<(), String> {
        check_field(
            self.profile,
            self.facts,
            self.force,
            &self.answers,
            key,
            value,
        )
    }

    /// The first hostname not taken on the node: the profile's name, then NAME-2, NAME-3...
    fn free_hostname(&self) -> String {
        let base = self
            .fixed_name
            .clone()
            .unwrap_or_else(|| self.profile.name.to_string());
        (1..100)
            .map(|i| {
                if i == 1 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                }
            })
            .find(|h| !self.facts.taken_hostnames.contains(h))
            .unwrap_or(base)
    }

    fn default_mode(&mut self) -> Result<Round> {
        // Saved defaults first, in the order resolve reads them (the database before its
        // address); one that no longer fits the node falls back to the built-in default.
        let keys: Vec<String> = CONTAINER_KEYS
            .iter()
            .map(|k| k.to_string())
            .chain(self.profile.questions.iter().map(|q| q.key.to_string()))
            .collect();
        for k in keys {
            let Some(v) = self.prefill.get(&k).cloned() else {
                continue;
            };
            if !savable(self.profile, &k) || k == "gateway" {
                continue;
            }
            match self.check(&k, &v) {
                Ok(()) => {
                    self.answers.insert(k, v);
                }
                Err(e) => say!(self,
                    "  note: your saved {k} = {v} does not fit now ({}); using the built-in default",
                    e.lines().next().unwrap_or_default()
                )?,
            }
        }
        let d = self.profile.resources.default;
        let hostname = self.free_hostname();
        let fill = [
            ("vmid", self.facts.next_id.to_string()),
            ("hostname", hostname.clone()),
            ("name", hostname),
            ("cores", d.cores.to_string()),
            ("memory_mib", d.memory_mib.to_string()),
            ("swap_mib", d.swap_mib.to_string()),
            ("disk_gib", d.disk_gib.to_string()),
            ("os", self.profile.os.default.label().to_string()),
            ("bridge", "vmbr0".to_string()),
            ("ip", "dhcp".to_string()),
            (
                "database",
                self.profile.databases.default.label().to_string(),
            ),
        ];
        for (k, v) in fill {
            self.answers.entry(k.into()).or_insert(v);
        }
        if let Some(r) = self.profile.latest(Channel::Stable) {
            self.answers.insert("version".into(), r.version.clone());
        }
        if !self.answers.contains_key("storage") {
            let need = self.disk_bytes();
            if let Some((s, _)) = self
                .facts
                .rootdir_storages
                .iter()
                .find(|(_, free)| *free >= need)
            {
                self.answers.insert("storage".into(), s.clone());
            }
        }
        // Answers nobody can guess are asked (pre-filled with the saved ones); everything else
        // takes its saved or profile default.
        let profile = self.profile;
        let to_ask: Vec<&QuestionDef> = profile
            .questions
            .iter()
            .filter(|q| q.default.is_none())
            .collect();
        for q in &to_ask {
            self.answers.remove(q.key.as_str());
        }
        for q in &profile.questions {
            if let Some(d) = &q.default {
                self.answers
                    .entry(q.key.to_string())
                    .or_insert_with(|| d.clone());
            }
        }
        let summary = summary(self.profile, self.facts, &self.answers);
        say!(self, "{}", summary)?;
        if let Some(kind) = self.external_kind() {
            if !self.external_db(kind)? {
                return Ok(Round::Cancelled);
            }
        }
        for q in to_ask {
            self.ask_question(q)?;
        }
        // Answers the others make necessary (an API key once its provider is chosen).
        for q in &profile.questions {
            if q.required_by(&self.answers)
                && self
                    .answers
                    .get(q.key.as_str())
                    .is_none_or(|v| v.trim().is_empty())
            {
                self.ask_question(q)?;
            }
        }
        Ok(Round::Done)
    }

    fn advanced_mode(&mut self) -> Result<Round> {
        let (min, d) = (
            self.profile.resources.minimum,
            self.profile.resources.default,
        );
        let next_id = self.facts.next_id.to_string();
        self.field(
            "vmid",
            "Container ID",
            format!("the next free ID is {next_id}"),
            Some(next_id.clone()),
            false,
        )?;
        let free = self.free_hostname();
        self.field(
            "hostname",
            "Hostname",
            "lowercase letters, digits and '-'; also the instance's name".into(),
            Some(free),
            false,
        )?;
        if let Some(h) = self.answers.get("hostname").cloned() {
            self.answers.entry("name".into()).or_insert(h);
        }
        let force = self.force;
        let under = |what: &str| {
            if force {
                format!("{what}; --force allows less")
            } else {
                what.to_string()
            }
        };
        let cores_help = under(&format!("minimum {}, suggested {}", min.cores, d.cores));
        self.field(
            "cores",
            "CPU cores",
            cores_help,
            Some(d.cores.to_string()),
            false,
        )?;
        let mem_help = under(&format!(
            "minimum {} MiB, suggested {} MiB; the node has {} MiB free",
            min.memory_mib, d.memory_mib, self.facts.free_memory_mib
        ));
        self.field(
            "memory_mib",
            "Memory (MiB)",
            mem_help,
            Some(d.memory_mib.to_string()),
            false,
        )?;
        self.field(
            "swap_mib",
            "Swap (MiB)",
            "0 for none".into(),
            Some(d.swap_mib.to_string()),
            false,
        )?;
        let disk_help = under(&format!(
            "minimum {} GiB, suggested {} GiB",
            min.disk_gib, d.disk_gib
        ));
        self.field(
            "disk_gib",
            "Disk size (GiB)",
            disk_help,
            Some(d.disk_gib.to_string()),
            false,
        )?;
        self.warn_below_minimum()?;
        self.storage()?;
        if self.facts.template_storages.len() > 1 {
            let opts = self.facts.template_storages.clone();
            let v = self.choose(
                "template_storage",
                "Storage for the Debian template",
                &opts,
                None,
            )?;
            self.answers.insert("template_storage".into(), v);
        }
        let oses: Vec<String> = self
            .profile
            .os
            .supported
            .iter()
            .map(|o| o.label().to_string())
            .collect();
        let os = self.choose(
            "os",
            "Operating system",
            &oses,
            Some(self.profile.os.default.label().into()),
        )?;
        self.answers.insert("os".into(), os);
        self.field(
            "bridge",
            "Network bridge",
            "the Linux bridge on the node, e.g. vmbr0".into(),
            Some("vmbr0".into()),
            false,
        )?;
        self.ipv4()?;
        self.field(
            "dns",
            "DNS server",
            "an IP address; empty or `none` to use the node's".into(),
            None,
            true,
        )?;
        self.field(
            "searchdomain",
            "DNS search domain",
            "e.g. lan; empty or `none` to use the node's".into(),
            None,
            true,
        )?;
        self.field(
            "vlan",
            "VLAN tag",
            "1 to 4094; empty or `none` for untagged".into(),
            None,
            true,
        )?;
        self.field(
            "mtu",
            "MTU",
            "576 to 65535; empty or `none` for the bridge's".into(),
            None,
            true,
        )?;
        self.ssh_keys()?;
        self.field(
            "root_password",
            "Root password in the container",
            "at least 5 characters; empty for none (`pct enter` still works)".into(),
            None,
            true,
        )?;
        let dbs: Vec<String> = self
            .profile
            .databases
            .supported
            .iter()
            .map(|k| k.label().to_string())
            .collect();
        let db = self.choose(
            "database",
            "Database",
            &dbs,
            Some(self.profile.databases.default.label().into()),
        )?;
        self.answers.insert("database".into(), db);
        if let Some(kind) = self.external_kind() {
            if !self.external_db(kind)? {
                return Ok(Round::Cancelled);
            }
        }
        let versions: Vec<String> = self
            .profile
            .versions
            .iter()
            .rev()
            .map(|r| r.version.clone())
            .collect();
        let latest = self
            .profile
            .latest(Channel::Stable)
            .map(|r| r.version.clone());
        let v = self.choose("version", "App version", &versions, latest)?;
        self.answers.insert("version".into(), v);
        // The address people use comes first, then how it is served, then the rest.
        let profile = self.profile;
        let (urls, rest): (Vec<&QuestionDef>, Vec<&QuestionDef>) = profile
            .questions
            .iter()
            .partition(|q| q.kind == QuestionKind::Url);
        for q in urls {
            self.ask_question(q)?;
        }
        self.tls()?;
        for q in rest {
            self.ask_question(q)?;
        }
        let daily = self
            .prefill
            .get("health_check")
            .is_some_and(|v| v == "true");
        let daily = self.p.confirm(
            "health_check",
            "Check every instance daily on this host (a systemd timer; problems are sent where /etc/launch/notify.yaml says)?",
            daily,
        )?;
        self.answers
            .insert("health_check".into(), daily.to_string());
        let summary = summary(self.profile, self.facts, &self.answers);
        say!(self, "{}", summary)?;
        Ok(Round::Done)
    }

    fn disk_bytes(&self) -> u64 {
        let d = self.profile.resources.default.disk_gib as u64;
        self.answers
            .get("disk_gib")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(d)
            * GIB
    }

    /// With --force, resources below the minimum are allowed; say so plainly.
    fn warn_below_minimum(&mut self) -> Result<()> {
        let min = self.profile.resources.minimum;
        let num = |k: &str| {
            self.answers
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        for (k, lo, unit) in [
            ("cores", min.cores as u64, ""),
            ("memory_mib", min.memory_mib, " MiB"),
            ("disk_gib", min.disk_gib as u64, " GiB"),
        ] {
            let v = num(k);
            if v < lo {
                say!(self,
                    "  warning: {k} {v}{unit} is below {}'s minimum of {lo}{unit} (allowed by --force)",
                    self.profile.title
                )?;
            }
        }
        Ok(())
    }

    fn external_kind(&self) -> Option<DatabaseKind> {
        let label = self.answers.get("database")?;
        self.profile
            .databases
            .supported
            .iter()
            .copied()
            .find(|k| k.label() == label)
            .filter(|k| crate::database::adapter(*k).is_external())
    }

    /// Asks a text setting, validated as typed; `optional` ones accept empty or `none`.
    fn field(
        &mut self,
        key: &'static str,
        prompt: &str,
        help: String,
        default: Option<String>,
        optional: bool,
    ) -> Result<()> {
        let secret = settings::is_secret_key(self.profile, key);
        let default = if secret {
            None
        } else {
            self.prefill.get(key).cloned().or(default)
        };
        let (profile, facts, force) = (self.profile, self.facts, self.force);
        let snapshot = self.answers.clone();
        let check = move |v: &str| -> Result<(), String> {
            let v = v.trim();
            if v.is_empty() || (!secret && v.eq_ignore_ascii_case("none")) {
                return if optional {
                    Ok(())
                } else {
                    Err("an answer is needed here".into())
                };
            }
            check_field(profile, facts, force, &snapshot, key, v)
        };
        let mut q = Question::new(key, prompt);
        q.help = Some(help.as_str());
        q.default = default;
        q.secret = secret;
        q.validate = Some(&check);
        let v = self.p.text(&q)?;
        let v = v.trim();
        if v.is_empty() || (!secret && v.eq_ignore_ascii_case("none")) {
            self.answers.remove(key);
        } else {
            self.answers.insert(key.into(), v.to_string());
        }
        Ok(())
    }

    fn choose(
        &mut self,
        key: &str,
        prompt: &str,
        options: &[String],
        default: Option<String>,
    ) -> Result<String> {
        if let [only] = options {
            return Ok(only.clone());
        }
        let mut q = Question::new(key, prompt);
        q.default = self
            .prefill
            .get(key)
            .filter(|v| options.contains(v))
            .cloned()
            .or(default);
        self.p.select(&q, options)
    }

    /// Only storages with room for the disk are offered; the others are named in the help.
    fn storage(&mut self) -> Result<()> {
        let need = self.disk_bytes();
        let (facts, force) = (self.facts, self.force);
        let (fit, small): (Vec<_>, Vec<_>) = facts
            .rootdir_storages
            .iter()
            .partition(|(_, free)| *free >= need || force);
        let label = |(n, free): &&(String, u64)| format!("{n} ({} GiB free)", free / GIB);
        match fit.as_slice() {
            [] => {
                say!(
                    self,
                    "  no storage for container disks has {} GiB free: {}",
                    need / GIB,
                    small.iter().map(label).collect::<Vec<_>>().join(", ")
                )?;
                self.answers.remove("storage");
            }
            [one] => {
                say!(
                    self,
                    "  storage: {}, the only one with room for {} GiB",
                    label(one),
                    need / GIB
                )?;
                self.answers.insert("storage".into(), one.0.clone());
            }
            _ => {
                let labels: Vec<String> = fit.iter().map(label).collect();
                let help = if small.is_empty() {
                    "where the container's disk goes".to_string()
                } else {
                    format!(
                        "too small for {} GiB: {}",
                        need / GIB,
                        small.iter().map(label).collect::<Vec<_>>().join(", ")
                    )
                };
                let mut q = Question::new("storage", "Storage for the container's disk");
                q.help = Some(help.as_str());
                q.default = self
                    .prefill
                    .get("storage")
                    .and_then(|s| fit.iter().find(|(n, _)| n == s))
                    .map(label);
                let picked = self.p.select(&q, &labels)?;
                let i = labels.iter().position(|l| *l == picked).unwrap_or(0);
                self.answers.insert("storage".into(), fit[i].0.clone());
            }
        }
        Ok(())
    }

    fn ipv4(&mut self) -> Result<()> {
        let options = ["dhcp", "static"].map(String::from);
        let was_static = self.prefill.get("ip").is_some_and(|ip| ip != "dhcp");
        let mut q = Question::new("ipv4", "IPv4 address");
        q.help = Some("static: an address with prefix and a gateway in the same subnet");
        q.default = Some(if was_static { "static" } else { "dhcp" }.into());
        if self.p.select(&q, &options)? == "dhcp" {
            self.answers.insert("ip".into(), "dhcp".into());
            self.answers.remove("gateway");
            return Ok(());
        }
        self.field(
            "ip",
            "IPv4 address/prefix",
            "e.g. 192.168.1.50/24".into(),
            None,
            false,
        )?;
        let gw_default = self.answers.get("ip").and_then(|ip| first_host(ip));
        self.field(
            "gateway",
            "Gateway",
            "in the same subnet as the address".into(),
            gw_default,
            false,
        )
    }

    fn ssh_keys(&mut self) -> Result<()> {
        self.field(
            "ssh_public_keys",
            "SSH public key for root",
            "a file such as /root/.ssh/id_ed25519.pub, or the key itself; empty for none".into(),
            None,
            true,
        )?;
        if let Some(v) = self.answers.get("ssh_public_keys").cloned() {
            match read_ssh_keys(&v) {
                Ok(keys) => {
                    self.answers.insert("ssh_public_keys".into(), keys);
                }
                Err(e) => anyhow::bail!(e),
            }
        }
        Ok(())
    }

    /// Host and port are asked together and the address is tried before going on, since
    /// either may be the wrong one.
    fn external_db(&mut self, kind: DatabaseKind) -> Result<bool> {
        let port = crate::database::adapter(kind).default_port().to_string();
        let port = port.as_str();
        let mut reachable = false;
        for _ in 0..MAX_ROUNDS {
            self.field(
                "db_host",
                "Database host",
                "a host name or IP address this node can reach".into(),
                None,
                false,
            )?;
            self.field(
                "db_port",
                "Database port",
                format!("{} listens on {port} by default", kind.label()),
                Some(port.into()),
                false,
            )?;
            let host = self.answers.get("db_host").cloned().unwrap_or_default();
            let port: u16 = self
                .answers
                .get("db_port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            match settings::db_reachable(&host, port) {
                Ok(()) => {
                    reachable = true;
                    break;
                }
                Err(e) => {
                    say!(self,
                        "  the database is unreachable: {e}\n  help: check the address and that the server accepts connections from this node"
                    )?;
                    self.remember();
                    if !self
                        .p
                        .confirm("db_retry", "Enter the database address again?", true)?
                    {
                        return Ok(false);
                    }
                }
            }
        }
        if !reachable {
            return Err(WizardError::TooManyRounds {
                key: "db_host".into(),
                help: "check the database address, then run the wizard again".into(),
            }
            .into());
        }
        let name = self.profile.name.to_string();
        self.field(
            "db_user",
            "Database user",
            "the account the app logs in with".into(),
            Some(name.clone()),
            false,
        )?;
        self.field(
            "db_password",
            "Database password",
            "not shown, not saved".into(),
            None,
            false,
        )?;
        self.field(
            "db_name",
            "Database name",
            "created beforehand, owned by the user".into(),
            Some(name),
            false,
        )?;
        Ok(true)
    }

    fn tls(&mut self) -> Result<()> {
        let options = [
            "HTTP only",
            "HTTPS with my certificate",
            "HTTPS with Let's Encrypt (obtained and renewed for you)",
        ]
        .map(String::from);
        let mut q = Question::new("tls", "How nginx serves it");
        q.help = Some("HTTP only also fits behind another proxy that does TLS");
        q.default = Some(
            if self.prefill.contains_key("tls_cert") {
                &options[1]
            } else if self.prefill.get("tls").map(String::as_str) == Some("acme") {
                &options[2]
            } else {
                &options[0]
            }
            .clone(),
        );
        let choice = self.p.select(&q, &options)?;
        if choice != options[2] {
            self.answers.remove("tls");
            for k in crate::acme::KEYS {
                self.answers.remove(*k);
            }
        }
        if choice == options[0] {
            self.answers.remove("tls_cert");
            self.answers.remove("tls_key");
            return Ok(());
        }
        if choice == options[2] {
            return self.acme();
        }
        self.field(
            "tls_cert",
            "Certificate file (PEM, with its chain)",
            "a path on this node, e.g. /etc/ssl/tasks.example.com/fullchain.pem".into(),
            None,
            false,
        )?;
        self.field(
            "tls_key",
            "Private key file (PEM)",
            "a path on this node; it is copied into the container with mode 0600".into(),
            None,
            false,
        )
    }

    /// `tls: acme`: the CA's contact, the challenge (and the Cloudflare token file for DNS-01),
    /// the CA directory; each checked as the answers file is.
    fn acme(&mut self) -> Result<()> {
        self.answers.remove("tls_cert");
        self.answers.remove("tls_key");
        self.answers.insert("tls".into(), "acme".into());
        let contact = self
            .profile
            .role_value(crate::profile::Role::AdminEmail, &self.answers)
            .map(str::to_string);
        self.field(
            "acme_email",
            "Contact email for the certificate authority",
            "expiry warnings and account recovery go there".into(),
            contact,
            false,
        )?;
        let options = [
            "HTTP-01: the name reaches this container on port 80",
            "DNS-01 through Cloudflare: for names behind NAT (needs an API token)",
        ]
        .map(String::from);
        let mut q = Question::new("acme_challenge", "How the CA checks that the name is yours");
        q.help =
            Some("HTTP-01 needs the public DNS record and port 80 forwarded to this container");
        q.default = Some(
            if self.prefill.get("acme_challenge").map(String::as_str) == Some("dns-cloudflare") {
                &options[1]
            } else {
                &options[0]
            }
            .clone(),
        );
        if self.p.select(&q, &options)? == options[1] {
            self.answers
                .insert("acme_challenge".into(), "dns-cloudflare".into());
            self.field(
                "acme_cloudflare_token_file",
                "File holding the Cloudflare API token (chmod 600)",
                "create the token with permission Zone:DNS:Edit on this zone only".into(),
                None,
                false,
            )?;
        } else {
            self.answers.insert("acme_challenge".into(), "http".into());
            self.answers.remove("acme_cloudflare_token_file");
        }
        self.field(
            "acme_directory",
            "ACME directory URL",
            "Enter keeps Let's Encrypt; staging for trials: https://acme-staging-v02.api.letsencrypt.org/directory".into(),
            Some(crate::acme::LETS_ENCRYPT.to_string()),
            false,
        )
    }

    fn ask_question(&mut self, q: &QuestionDef) -> Result<()> {
        let key = q.key.as_str();
        let default = if q.secret {
            q.default.clone()
        } else {
            self.prefill.get(key).cloned().or_else(|| q.default.clone())
        };
        let v = match q.kind {
            QuestionKind::Bool => {
                let d = default
                    .as_deref()
                    .is_some_and(|d| matches!(d, "true" | "yes" | "1"));
                self.p.confirm(key, &q.prompt, d)?.to_string()
            }
            QuestionKind::Choice => {
                let mut pq = Question::new(key, &q.prompt);
                pq.help = q.help.as_deref();
                pq.default = default;
                self.p.select(&pq, &q.choices)?
            }
            kind => {
                let help = q.help.clone().unwrap_or_default();
                let check = |v: &str| -> Result<(), String> {
                    let v = v.trim();
                    if v.is_empty() {
                        return Err("an answer is needed here".into());
                    }
                    settings::check_answer(kind, v, q.min, q.max, &q.choices).map_err(|e| {
                        if help.is_empty() {
                            e
                        } else {
                            format!("{e}\n  help: {help}")
                        }
                    })
                };
                let mut pq = Question::new(key, &q.prompt);
                pq.help = q.help.as_deref();
                pq.default = default;
                pq.secret = q.secret;
                pq.validate = Some(&check);
                self.p.text(&pq)?.trim().to_string()
            }
        };
        self.answers.insert(key.to_string(), v);
        Ok(())
    }
}

/// The checks of one setting, as typed. Most go through `settings::resolve` with the answers
/// so far plus this one, so the wizard and an answers file can never disagree on what is
/// valid; the few it cannot judge alone (files, keys, a bare gateway) are checked here.
fn check_field(
    profile: &Profile,
    facts: &NodeFacts,
    force: bool,
    answers: &BTreeMap<String, String>,
    key: &str,
    value: &str,
) -> Result<(), String> {
    match key {
        "gateway" => {
            value.parse::<Ipv4Addr>().map_err(|_| {
                format!("`{value}` is not an IPv4 address\n  help: e.g. 192.168.1.1")
            })?;
        }
        // The same checks as answers files (settings.rs), then the node's own bridges below.
        "bridge" => settings::check_bridge_name(value)?,
        "db_host" | "db_user" | "db_name" => {
            return settings::check_db_field(key, value)
                .map_err(|e| format!("`{}`: {e}", crate::escape::shown(value)))
        }
        "db_password" => return Ok(()),
        "root_password" => {
            return if value.chars().count() < 5 {
                Err("too short: Proxmox VE needs at least 5 characters".into())
            } else if value.contains(['\n', '\r']) {
                // chpasswd reads one `user:password` line.
                Err("holds a line break\n  help: use a password on one line".into())
            } else {
                Ok(())
            };
        }
        "tls_cert" => return check_pem(value, "CERTIFICATE"),
        "tls_key" => return check_pem(value, "PRIVATE KEY"),
        "ssh_public_keys" => return read_ssh_keys(value).map(|_| ()),
        _ => {}
    }
    let mut trial = answers.clone();
    // The database address is tried once per host and port, not on every other setting.
    trial.remove("db_host");
    trial.insert(key.to_string(), value.to_string());
    if key == "hostname" && !answers.contains_key("name") {
        trial.insert("name".into(), value.to_string());
    }
    let this = [key];
    let related: &[&str] = match key {
        "gateway" => &["gateway", "ip"],
        "hostname" => &["hostname", "name"],
        _ => &this,
    };
    match settings::resolve(profile, facts, &trial, force) {
        Ok(_) => Ok(()),
        Err(problems) => match problems
            .iter()
            .find(|p| related.contains(&p.field.as_str()))
        {
            Some(p) => Err(format!("{}\n  help: {}", p.problem, p.help)),
            None => Ok(()),
        },
    }
}

fn check_pem(path: &str, label: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read {path}: {e}\n  help: give the path of a PEM file on this node")
    })?;
    if text.contains("-----BEGIN ") && text.contains(label) {
        Ok(())
    } else {
        Err(format!(
            "{path} holds no {label} in PEM form\n  help: the file should start with -----BEGIN ...{label}-----"
        ))
    }
}

/// A key file's path or the key text itself, checked line by line; returns the key text.
fn read_ssh_keys(v: &str) -> Result<String, String> {
    let path = Path::new(v);
    let text = if v.starts_with('/') || path.is_file() {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {v}: {e}"))?;
        if meta.len() > 64 * 1024 {
            return Err(format!(
                "{v} is too large for a public key file\n  help: give the .pub file"
            ));
        }
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {v}: {e}"))?
    } else {
        v.to_string()
    };
    let keys: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let known = ["ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-"];
    if keys.is_empty() {
        return Err(format!(
            "no key in {v}\n  help: give a .pub file or paste a key starting with ssh-ed25519"
        ));
    }
    for k in &keys {
        if !known.iter().any(|p| k.starts_with(p)) || k.split_whitespace().count() < 2 {
            return Err(format!(
                "not an SSH public key: `{}`\n  help: give the .pub file (never the private key), or a line like `ssh-ed25519 AAAA... you@host`",
                k.chars().take(20).collect::<String>()
            ));
        }
    }
    Ok(keys.join("\n"))
}

/// The first host of an address's subnet (`192.168.1.50/24` → `192.168.1.1`), the usual
/// gateway, offered as the default.
fn first_host(cidr: &str) -> Option<String> {
    let (a, p) = cidr.split_once('/')?;
    let addr: Ipv4Addr = a.parse().ok()?;
    let prefix: u32 = p.parse().ok()?;
    if !(1..=30).contains(&prefix) {
        return None;
    }
    let mask = u32::MAX << (32 - prefix);
    Some(Ipv4Addr::from((u32::from(addr) & mask) + 1).to_string())
}

/// What will be created, from the answers (defaults named as such); secrets are never shown.
pub fn summary(profile: &Profile, facts: &NodeFacts, a: &BTreeMap<String, String>) -> String {
    let get = |k: &str| a.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut line = |k: &str, v: String| lines.push((k.to_string(), v));
    line("CT ID", get("vmid").unwrap_or("(next free)").to_string());
    line(
        "Hostname",
        get("hostname").unwrap_or(profile.name.as_str()).to_string(),
    );
    let d = profile.resources.default;
    line(
        "Resources",
        format!(
            "{} core(s), {} MiB RAM + {} MiB swap, {} GiB disk",
            get("cores")
                .map(String::from)
                .unwrap_or_else(|| d.cores.to_string()),
            get("memory_mib")
                .map(String::from)
                .unwrap_or_else(|| d.memory_mib.to_string()),
            get("swap_mib")
                .map(String::from)
                .unwrap_or_else(|| d.swap_mib.to_string()),
            get("disk_gib")
                .map(String::from)
                .unwrap_or_else(|| d.disk_gib.to_string()),
        ),
    );
    let storage = match get("storage") {
        Some(s) => match facts.rootdir_storages.iter().find(|(n, _)| n == s) {
            Some((_, free)) => format!("{s} ({} GiB free)", free / GIB),
            None => s.to_string(),
        },
        None => "(none with enough room)".into(),
    };
    line("Storage", storage);
    line(
        "OS",
        get("os").unwrap_or(profile.os.default.label()).to_string(),
    );
    let mut net = format!("{}, ", get("bridge").unwrap_or("vmbr0"));
    match get("ip") {
        None | Some("dhcp") => net.push_str("IPv4 by DHCP"),
        Some(ip) => net.push_str(&format!("{ip} via {}", get("gateway").unwrap_or("?"))),
    }
    if let Some(v) = get("vlan") {
        net.push_str(&format!(", VLAN {v}"));
    }
    if let Some(m) = get("mtu") {
        net.push_str(&format!(", MTU {m}"));
    }
    line("Network", net);
    line(
        "DNS",
        match (get("dns"), get("searchdomain")) {
            (None, None) => "the node's".into(),
            (dns, sd) => format!(
                "{}{}",
                dns.unwrap_or("the node's server"),
                sd.map(|s| format!(", search {s}")).unwrap_or_default()
            ),
        },
    );
    let keys = get("ssh_public_keys").map_or(0, |k| k.lines().count());
    line(
        "Root login",
        format!(
            "{}; {}",
            if get("root_password").is_some() {
                "password set"
            } else {
                "no password (pct enter)"
            },
            if keys == 0 {
                "no SSH key".to_string()
            } else {
                format!("{keys} SSH key(s)")
            }
        ),
    );
    let db = get("database").unwrap_or(profile.databases.default.label());
    line(
        "Database",
        match (get("db_host"), db.starts_with("external-")) {
            (Some(h), true) => format!(
                "{db} at {h}:{} (database {}, user {})",
                get("db_port").unwrap_or("?"),
                get("db_name").unwrap_or(profile.name.as_str()),
                get("db_user").unwrap_or(profile.name.as_str())
            ),
            _ => db.to_string(),
        },
    );
    line(
        "Web",
        match (get("tls_cert"), get("tls")) {
            (Some(c), _) => format!("HTTPS with {c}"),
            (None, Some("acme")) => format!(
                "HTTPS with a certificate from {} ({} challenge), renewed by a timer",
                get("acme_directory").unwrap_or(crate::acme::LETS_ENCRYPT),
                get("acme_challenge").unwrap_or("http")
            ),
            _ => "HTTP only (port 80)".into(),
        },
    );
    if get("health_check") == Some("true") {
        line(
            "Daily check",
            "launch-health.timer on this host (status --all --notify)".into(),
        );
    }
    line(
        "Version",
        get("version")
            .map(String::from)
            .or_else(|| profile.latest(Channel::Stable).map(|r| r.version.clone()))
            .unwrap_or_default(),
    );
    for q in &profile.questions {
        let v = match get(q.key.as_str()) {
            None => "(asked next)".to_string(),
            Some(_) if q.secret => "(hidden)".to_string(),
            Some(v) => v.to_string(),
        };
        line(q.key.as_str(), v);
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!("{} on node {}:\n", profile.title, facts.node);
    for (k, v) in lines {
        out.push_str(&format!("  {k:width$}  {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::profile::Catalog;

    fn vikunja() -> Profile {
        Catalog::new(Path::new("/none"))
            .load("vikunja")
            .expect("the built-in vikunja profile loads")
            .profile
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            node: "pve".into(),
            next_id: 105,
            taken_ids: vec![100, 101],
            taken_hostnames: vec!["db".into()],
            rootdir_storages: vec![
                ("local-lvm".into(), 100 * GIB),
                ("tiny".into(), GIB),
                ("big".into(), 900 * GIB),
            ],
            template_storages: vec!["local".into()],
            free_memory_mib: 8192,
            bridges: vec!["vmbr0".into(), "vmbr1".into()],
            ..Default::default()
        }
    }

    /// Answers from a script, in order, each for a named question: a question asked out of
    /// order fails the test. Like inquire, an empty answer takes the default and an answer the
    /// validator refuses is recorded and the next scripted answer is tried.
    struct ScriptedPrompter {
        script: VecDeque<(&'static str, &'static str)>,
        asked: Vec<String>,
        reprompts: Vec<(String, String)>,
        defaults: BTreeMap<String, Option<String>>,
        options: BTreeMap<String, Vec<String>>,
        /// What the wizard showed (summary, notes).
        shown: String,
    }

    impl ScriptedPrompter {
        fn new(script: &[(&'static str, &'static str)]) -> Self {
            ScriptedPrompter {
                script: script.iter().copied().collect(),
                shown: String::new(),
                asked: Vec::new(),
                reprompts: Vec::new(),
                defaults: BTreeMap::new(),
                options: BTreeMap::new(),
            }
        }

        fn next(&mut self, key: &str) -> Result<String> {
            let Some((k, v)) = self.script.pop_front() else {
                anyhow::bail!("the script has no answer for `{key}`");
            };
            anyhow::ensure!(k == key, "asked `{key}` but the script expected `{k}`");
            Ok(v.to_string())
        }
    }

    impl Prompter for ScriptedPrompter {
        fn show(&mut self, text: &str) -> Result<()> {
            self.shown.push_str(text);
            self.shown.push('\n');
            Ok(())
        }

        fn text(&mut self, q: &Question) -> Result<String> {
            self.asked.push(q.key.to_string());
            self.defaults.insert(q.key.to_string(), q.default.clone());
            loop {
                let mut a = self.next(q.key)?;
                if a.is_empty() {
                    a = q.default.clone().unwrap_or_default();
                }
                match q.validate.map(|v| v(&a)) {
                    Some(Err(msg)) => self.reprompts.push((q.key.to_string(), msg)),
                    _ => return Ok(a),
                }
            }
        }

        fn select(&mut self, q: &Question, options: &[String]) -> Result<String> {
            self.asked.push(q.key.to_string());
            self.defaults.insert(q.key.to_string(), q.default.clone());
            self.options.insert(q.key.to_string(), options.to_vec());
            let a = self.next(q.key)?;
            if a.is_empty() {
                return q
                    .default
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("`{}` has no default", q.key));
            }
            options
                .iter()
                .find(|o| o.starts_with(&a))
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("`{a}` is not one of {options:?}"))
        }

        fn confirm(&mut self, key: &str, _prompt: &str, default: bool) -> Result<bool> {
            self.asked.push(key.to_string());
            Ok(match self.next(key)?.as_str() {
                "y" => true,
                "n" => false,
                _ => default,
            })
        }
    }

    fn run(
        profile: &Profile,
        f: &NodeFacts,
        saved: &SavedDefaults,
        p: &mut ScriptedPrompter,
    ) -> (Option<BTreeMap<String, String>>, String) {
        let r = ask(profile, f, saved, false, p).expect("the wizard runs");
        assert!(p.script.is_empty(), "unused answers: {:?}", p.script);
        (r, std::mem::take(&mut p.shown))
    }

    #[test]
    fn default_mode_asks_only_what_has_no_default() {
        let profile = vikunja();
        let mut p = ScriptedPrompter::new(&[
            ("mode", "Default"),
            ("public_url", "not a url"),
            ("public_url", "http://tasks.example.com"),
            ("admin_email", "admin@example.com"),
            ("confirm", "y"),
            ("save_defaults", "n"),
        ]);
        let (answers, out) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        let answers = answers.expect("not cancelled");
        assert_eq!(
            p.asked,
            [
                "mode",
                "public_url",
                "admin_email",
                "confirm",
                "save_defaults"
            ]
        );
        assert_eq!(p.reprompts.len(), 1, "{:?}", p.reprompts);
        assert_eq!(p.reprompts[0].0, "public_url");
        // The summary names the defaults, with the storage's free space.
        for want in [
            "105",
            "local-lvm (100 GiB free)",
            "IPv4 by DHCP",
            "sqlite",
            "debian-12",
        ] {
            assert!(
                out.contains(want),
                "`{want}` missing from the summary:\n{out}"
            );
        }
        let s = settings::resolve(&profile, &facts(), &answers, false).expect("valid answers");
        assert_eq!(s.vmid, 105);
        assert_eq!(s.hostname, "vikunja");
        assert_eq!(s.name, "vikunja");
        assert_eq!(s.storage, "local-lvm");
        assert_eq!(s.bridge, "vmbr0");
        assert_eq!(s.memory_mib, profile.resources.default.memory_mib);
        assert_eq!(s.app["public_url"], "http://tasks.example.com");
        assert_eq!(s.app["mcp"], "true");
    }

    #[test]
    fn default_mode_picks_a_free_hostname() {
        let profile = vikunja();
        let mut f = facts();
        f.taken_hostnames = vec!["vikunja".into(), "vikunja-2".into()];
        let mut p = ScriptedPrompter::new(&[
            ("mode", "Default"),
            ("public_url", "http://t.example.com"),
            ("admin_email", "a@example.com"),
            ("confirm", "y"),
            ("save_defaults", "n"),
        ]);
        let (answers, _) = run(&profile, &f, &SavedDefaults::default(), &mut p);
        let answers = answers.expect("not cancelled");
        assert_eq!(answers["hostname"], "vikunja-3");
        assert_eq!(answers["name"], "vikunja-3");
    }

    /// Every Advanced question, in order; `ip` and `gateway` are where the tests vary.
    fn advanced_script(
        ip: &'static [(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut s = vec![
            ("mode", "Advanced"),
            ("vmid", "101"),
            ("vmid", "abc"),
            ("vmid", "120"),
            ("hostname", "db"),
            ("hostname", "Bad_Name"),
            ("hostname", "tasks"),
            ("cores", "2"),
            ("memory_mib", "256"),
            ("memory_mib", "2048"),
            ("swap_mib", ""),
            ("disk_gib", "8"),
            ("storage", "big"),
            ("os", "debian-13"),
            ("bridge", "vmbr1"),
        ];
        s.extend_from_slice(ip);
        s.extend_from_slice(&[
            ("dns", "1.1.1.1"),
            ("searchdomain", "none"),
            ("vlan", "5000"),
            ("vlan", "20"),
            ("mtu", ""),
            ("ssh_public_keys", "not-a-key"),
            (
                "ssh_public_keys",
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f root@test",
            ),
            ("root_password", "abc"),
            ("root_password", "s3cret-pass"),
            ("database", "postgres"),
            ("public_url", "https://tasks.example.com"),
            ("tls", "HTTP only"),
            ("admin_email", "admin@example.com"),
            ("mcp", "n"),
            ("timezone", "Europe/Berlin"),
            ("max_upload_mib", "0"),
            ("max_upload_mib", "50"),
            ("registration", "y"),
            ("use_redis", "n"),
            ("health_check", "y"),
            ("confirm", "y"),
        ]);
        s
    }

    #[test]
    fn lets_encrypt_mode_asks_and_checks_the_acme_settings() {
        let profile = vikunja();
        let mut script = Vec::new();
        for step in advanced_script(&[("ipv4", "dhcp")]) {
            if step == ("tls", "HTTP only") {
                script.extend_from_slice(&[
                    (
                        "tls",
                        "HTTPS with Let's Encrypt (obtained and renewed for you)",
                    ),
                    ("acme_email", "admin;reboot@example.com"),
                    ("acme_email", "admin@example.com"),
                    (
                        "acme_challenge",
                        "HTTP-01: the name reaches this container on port 80",
                    ),
                    ("acme_directory", "http://insecure.example/dir"),
                    ("acme_directory", ""),
                ]);
            } else {
                script.push(step);
            }
        }
        script.push(("save_defaults", "n"));
        let mut p = ScriptedPrompter::new(&script);
        let (answers, _) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        let answers = answers.expect("not cancelled");
        let reprompted: Vec<&str> = p.reprompts.iter().map(|(k, _)| k.as_str()).collect();
        assert!(reprompted.contains(&"acme_email"), "{reprompted:?}");
        assert!(reprompted.contains(&"acme_directory"), "{reprompted:?}");
        assert_eq!(answers["tls"], "acme");
        assert_eq!(answers["acme_challenge"], "http");
        assert_eq!(answers["acme_directory"], crate::acme::LETS_ENCRYPT);
        assert!(!answers.contains_key("tls_cert"));
    }

    #[test]
    fn advanced_mode_validates_each_value_and_reprompts() {
        let profile = vikunja();
        let mut script = advanced_script(&[
            ("ipv4", "static"),
            ("ip", "10.0.0.300/24"),
            ("ip", "10.0.0.5"),
            ("ip", "10.0.0.5/24"),
            ("gateway", "10.0.1.1"),
            ("gateway", ""),
        ]);
        script.push(("save_defaults", "n"));
        let mut p = ScriptedPrompter::new(&script);
        let (answers, out) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        let answers = answers.expect("not cancelled");
        let reprompted: Vec<&str> = p.reprompts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            reprompted,
            [
                "vmid",
                "vmid",
                "hostname",
                "hostname",
                "memory_mib",
                "ip",
                "ip",
                "gateway",
                "vlan",
                "ssh_public_keys",
                "root_password",
                "max_upload_mib"
            ]
        );
        let msg = |k: &str| {
            p.reprompts
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, m)| m.clone())
                .unwrap_or_default()
        };
        assert!(msg("vmid").contains("already in use"), "{}", msg("vmid"));
        assert!(
            msg("memory_mib").contains("minimum of 512"),
            "{}",
            msg("memory_mib")
        );
        assert!(
            msg("gateway").contains("outside 10.0.0.5/24"),
            "{}",
            msg("gateway")
        );
        assert!(
            msg("hostname").contains("another guest"),
            "{}",
            msg("hostname")
        );
        // The gateway offered by default is the subnet's first host.
        assert_eq!(p.defaults["gateway"].as_deref(), Some("10.0.0.1"));
        // Only storages with room for 8 GiB were offered.
        assert_eq!(
            p.options["storage"],
            ["local-lvm (100 GiB free)", "big (900 GiB free)"]
        );
        // A profile with a single release does not ask which one.
        assert!(!p.asked.iter().any(|k| k == "version"));
        assert!(!out.contains("s3cret-pass"), "the password leaked:\n{out}");
        let s = settings::resolve(&profile, &facts(), &answers, false).expect("valid answers");
        assert_eq!(s.vmid, 120);
        assert_eq!(s.name, "tasks");
        assert_eq!(s.cores, 2);
        assert_eq!(s.storage, "big");
        assert_eq!(s.os.label(), "debian-13");
        assert_eq!(
            s.ipv4,
            settings::Ipv4Setting::Static {
                addr: "10.0.0.5".parse().unwrap(),
                prefix: 24,
                gw: "10.0.0.1".parse().unwrap()
            }
        );
        assert_eq!(s.vlan, Some(20));
        assert_eq!(s.searchdomain, None);
        assert_eq!(s.root_password.as_deref(), Some("s3cret-pass"));
        assert_eq!(s.database, DatabaseKind::Postgres);
        assert_eq!(s.version, "v2.5.0");
        assert_eq!(s.app["mcp"], "false");
        assert_eq!(s.app["registration"], "true");
        assert_eq!(s.app["max_upload_mib"], "50");
        assert!(s.health_check, "the daily check was asked for");
        assert!(out.contains("launch-health.timer"), "{out}");
    }

    #[test]
    fn cancel_returns_none() {
        let profile = vikunja();
        let mut p = ScriptedPrompter::new(&[("mode", "Cancel")]);
        let (r, _) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        assert!(r.is_none());

        // Esc or Ctrl+C at any prompt is a cancel too, not an error.
        struct Esc;
        impl Prompter for Esc {
            fn text(&mut self, _q: &Question) -> Result<String> {
                Err(inquire::InquireError::OperationCanceled.into())
            }
            fn select(&mut self, _q: &Question, _o: &[String]) -> Result<String> {
                Ok(ADVANCED_MODE.into())
            }
            fn confirm(&mut self, _k: &str, _p: &str, _d: bool) -> Result<bool> {
                Err(inquire::InquireError::OperationInterrupted.into())
            }
        }
        let r = ask(
            &profile,
            &facts(),
            &SavedDefaults::default(),
            false,
            &mut Esc,
        )
        .expect("a cancel is not an error");
        assert!(r.is_none());
    }

    #[test]
    fn declining_goes_back_to_the_start_with_answers_kept() {
        let profile = vikunja();
        let mut p = ScriptedPrompter::new(&[
            ("mode", "Default"),
            ("public_url", "http://one.example.com"),
            ("admin_email", "a@example.com"),
            ("confirm", "n"),
            ("mode", "Default"),
            ("public_url", ""),
            ("admin_email", "b@example.com"),
            ("confirm", "y"),
            ("save_defaults", "n"),
        ]);
        let (answers, out) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        let answers = answers.expect("not cancelled");
        assert!(out.contains("Nothing was created"), "{out}");
        assert_eq!(answers["public_url"], "http://one.example.com");
        assert_eq!(answers["admin_email"], "b@example.com");
    }

    #[test]
    fn defaults_are_saved_private_and_reused() {
        let profile = vikunja();
        let config = tempfile::tempdir().expect("a temp dir");
        let saved = SavedDefaults::load(config.path(), &profile).expect("no file is no defaults");
        assert!(saved.values.is_empty());
        let mut script = advanced_script(&[("ipv4", "dhcp")]);
        script.push(("save_defaults", "y"));
        let mut p = ScriptedPrompter::new(&script);
        let (first, out) = run(&profile, &facts(), &saved, &mut p);
        let first = first.expect("not cancelled");
        assert!(out.contains("Saved to"), "{out}");

        let path = SavedDefaults::path_for(config.path(), "vikunja");
        let mode = std::fs::metadata(&path)
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(!text.contains("s3cret-pass"), "a secret was saved:\n{text}");
        for gone in ["vmid", "hostname", "root_password", "version"] {
            assert!(!text.contains(&format!("{gone}:")), "{gone} saved:\n{text}");
        }

        let saved = SavedDefaults::load(config.path(), &profile).expect("loads");
        assert_eq!(saved.values["cores"], "2");
        assert_eq!(saved.values["bridge"], "vmbr1");
        assert!(saved.ignored.is_empty());

        // Default mode now uses them and pre-fills what it asks.
        let mut p = ScriptedPrompter::new(&[
            ("mode", "Default"),
            ("public_url", ""),
            ("admin_email", ""),
            ("confirm", "y"),
            ("save_defaults", "n"),
        ]);
        let (second, out) = run(&profile, &facts(), &saved, &mut p);
        let second = second.expect("not cancelled");
        assert!(out.contains("saved defaults"), "{out}");
        for k in [
            "cores",
            "memory_mib",
            "disk_gib",
            "storage",
            "os",
            "bridge",
            "dns",
            "vlan",
            "database",
            "public_url",
            "admin_email",
            "timezone",
            "max_upload_mib",
            "registration",
            "mcp",
            "ssh_public_keys",
        ] {
            assert_eq!(second.get(k), first.get(k), "{k}");
        }
        assert_eq!(second["ip"], "dhcp");
        assert_eq!(second["vmid"], "105", "the CT ID is never reused");
        assert!(!second.contains_key("root_password"));

        // A saved value that no longer fits the node falls back, with a note.
        let mut f = facts();
        f.rootdir_storages.retain(|(n, _)| n != "big");
        let mut p = ScriptedPrompter::new(&[
            ("mode", "Default"),
            ("public_url", ""),
            ("admin_email", ""),
            ("confirm", "y"),
            ("save_defaults", "n"),
        ]);
        let (third, out) = run(&profile, &f, &saved, &mut p);
        assert_eq!(third.expect("not cancelled")["storage"], "local-lvm");
        assert!(
            out.contains("your saved storage = big does not fit"),
            "{out}"
        );
    }

    #[test]
    fn hand_written_secrets_in_defaults_are_ignored_and_bad_files_named() {
        let profile = vikunja();
        let config = tempfile::tempdir().expect("a temp dir");
        let path = SavedDefaults::path_for(config.path(), "vikunja");
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(&path, "cores: 3\nroot_password: hunter22\nvmid: 300\n").expect("write");
        let saved = SavedDefaults::load(config.path(), &profile).expect("loads");
        assert_eq!(saved.values.keys().collect::<Vec<_>>(), ["cores"]);
        assert_eq!(saved.ignored, ["root_password", "vmid"]);

        std::fs::write(&path, "cores: [1, 2]\n").expect("write");
        let err = SavedDefaults::load(config.path(), &profile)
            .expect_err("a list is not a value")
            .to_string();
        assert!(
            err.contains("vikunja.yaml") && err.contains("cores"),
            "{err}"
        );
        assert!(err.contains("help:"), "{err}");
    }

    #[test]
    fn external_database_is_tried_and_reasked_when_unreachable() {
        let profile = vikunja();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port: &'static str = Box::leak(
            listener
                .local_addr()
                .expect("addr")
                .port()
                .to_string()
                .into_boxed_str(),
        );
        // A port nobody listens on: bind, note it, close.
        let closed: &'static str = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
            Box::leak(
                l.local_addr()
                    .expect("addr")
                    .port()
                    .to_string()
                    .into_boxed_str(),
            )
        };
        let mut script = advanced_script(&[("ipv4", "dhcp")]);
        let at = script
            .iter()
            .position(|(k, _)| *k == "database")
            .expect("database is asked");
        script[at] = ("database", "external-postgres");
        let db = [
            ("db_host", "not a host"),
            ("db_host", "127.0.0.1"),
            ("db_port", closed),
            ("db_retry", "y"),
            ("db_host", ""),
            ("db_port", port),
            ("db_user", ""),
            ("db_password", ""),
            ("db_password", "pw-secret"),
            ("db_name", "tasks"),
        ];
        for (i, a) in db.iter().enumerate() {
            script.insert(at + 1 + i, *a);
        }
        script.push(("save_defaults", "n"));
        let mut p = ScriptedPrompter::new(&script);
        let (answers, out) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        let answers = answers.expect("not cancelled");
        assert!(out.contains("the database is unreachable"), "{out}");
        assert!(!out.contains("pw-secret"));
        assert_eq!(answers["db_host"], "127.0.0.1");
        assert_eq!(answers["db_port"], port);
        assert_eq!(answers["db_user"], "vikunja");
        assert!(p
            .reprompts
            .iter()
            .any(|(k, m)| k == "db_password" && m.contains("needed")));
        let s = settings::resolve(&profile, &facts(), &answers, false).expect("valid");
        assert_eq!(s.external_db.expect("external").password, "pw-secret");
        drop(listener);

        // Giving up on the address cancels.
        let mut script = advanced_script(&[("ipv4", "dhcp")]);
        script.truncate(at);
        script.extend_from_slice(&[
            ("database", "external-mariadb"),
            ("db_host", "127.0.0.1"),
            ("db_port", closed),
            ("db_retry", "n"),
        ]);
        let mut p = ScriptedPrompter::new(&script);
        let (r, _) = run(&profile, &facts(), &SavedDefaults::default(), &mut p);
        assert!(r.is_none());
    }

    #[test]
    fn force_allows_less_than_the_minimum_with_a_warning() {
        let profile = vikunja();
        let mut script = advanced_script(&[("ipv4", "dhcp")]);
        let at = script
            .iter()
            .position(|(k, v)| *k == "memory_mib" && *v == "256")
            .expect("memory asked");
        script.remove(at + 1);
        script.push(("save_defaults", "n"));
        let mut p = ScriptedPrompter::new(&script);
        let answers = ask(&profile, &facts(), &SavedDefaults::default(), true, &mut p)
            .expect("runs")
            .expect("not cancelled");
        let out = std::mem::take(&mut p.shown);
        assert_eq!(answers["memory_mib"], "256");
        assert!(out.contains("below Vikunja's minimum of 512 MiB"), "{out}");
    }
}
