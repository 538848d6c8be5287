//! The install form: the wizard's fields (Default: the name and the profile's basic questions;
//! Advanced: every container setting and every question), checked as they are typed by the
//! same resolver an answers file goes through (`install::settings::resolve`), so the form can
//! accept nothing an answers file would refuse. The node's facts (free IDs, storages) arrive
//! from a worker; until then nothing is judged.

use std::collections::BTreeMap;

use crate::install::settings::{resolve, NodeFacts, CONTAINER_KEYS};
use crate::profile::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Default,
    Advanced,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub key: String,
    pub label: String,
    pub value: String,
    pub secret: bool,
    pub help: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InstallForm {
    pub profile: Profile,
    pub mode: Mode,
    pub fields: Vec<Field>,
    pub focus: usize,
    /// `None` while the node is being read; `Err` when it could not be.
    pub facts: Option<Result<NodeFacts, String>>,
    /// Problems by field, from the resolver: "problem (help)".
    pub errors: BTreeMap<String, String>,
    /// Problems the resolver found in settings the form does not show (Default mode).
    pub other_errors: Vec<String>,
    /// Set by a first submit: from then on empty required fields are flagged too.
    pub submitted: bool,
    /// The summary shown before the install starts (the wizard's own).
    pub summary: Option<String>,
}

fn container_label(key: &str) -> &str {
    match key {
        "name" => "Instance name",
        "vmid" => "CT ID",
        "memory_mib" => "Memory (MiB)",
        "swap_mib" => "Swap (MiB)",
        "disk_gib" => "Disk (GiB)",
        "ip" => "IPv4 (dhcp or CIDR)",
        "ssh_public_keys" => "SSH public keys",
        "root_password" => "Root password",
        "db_password" => "Database password",
        "health_check" => "Daily health check",
        "tls" => "HTTPS (off, or acme)",
        "tls_cert" => "TLS certificate file",
        "tls_key" => "TLS key file",
        "acme_email" => "ACME contact email",
        "acme_directory" => "ACME directory URL",
        "acme_challenge" => "ACME challenge",
        "acme_ca_file" => "ACME CA file",
        "acme_cloudflare_token_file" => "Cloudflare token file",
        "acme_dns_resolvers" => "DNS-01 resolvers",
        k => k,
    }
}

/// The explanation shown under a container field, where its label is not enough.
fn container_help(key: &str) -> Option<&'static str> {
    Some(match key {
        "tls" => {
            "empty or off: HTTP (or your own certificate below); acme: a certificate from Let's \
             Encrypt or your ACME CA, renewed in the container"
        }
        "acme_email" => "with tls acme: the CA's contact for expiry notices",
        "acme_directory" => {
            "with tls acme: empty for Let's Encrypt; staging or any RFC 8555 CA's URL"
        }
        "acme_challenge" => {
            "with tls acme: http (port 80 must reach the container) or dns-cloudflare (behind NAT)"
        }
        "acme_ca_file" => "with tls acme: a PEM file on this host to trust for a private CA",
        "acme_cloudflare_token_file" => {
            "with dns-cloudflare: a 0600 file holding a token scoped to Zone:DNS:Edit"
        }
        "acme_dns_resolvers" => "with dns-cloudflare: IP:PORT,... to check the record with",
        _ => return None,
    })
}

impl InstallForm {
    pub fn new(profile: Profile, mode: Mode) -> Self {
        let mut f = InstallForm {
            profile,
            mode,
            fields: Vec::new(),
            focus: 0,
            facts: None,
            errors: BTreeMap::new(),
            other_errors: Vec::new(),
            submitted: false,
            summary: None,
        };
        f.fields = f.fields_for(mode, &BTreeMap::new());
        f
    }

    fn fields_for(&self, mode: Mode, keep: &BTreeMap<String, String>) -> Vec<Field> {
        let mut fields = Vec::new();
        let container: &[&str] = match mode {
            Mode::Default => &["name"],
            Mode::Advanced => CONTAINER_KEYS,
        };
        // Advanced shows every container setting, HTTPS and ACME included: an empty field is
        // an answer not given, so the resolver applies the same defaults as to an answers file.
        for k in container {
            fields.push(Field {
                key: k.to_string(),
                label: container_label(k).to_string(),
                value: keep.get(*k).cloned().unwrap_or_default(),
                secret: matches!(*k, "root_password" | "db_password"),
                help: container_help(k).map(str::to_string),
            });
        }
        for q in &self.profile.questions {
            if mode == Mode::Default && q.advanced {
                continue;
            }
            let key = q.key.to_string();
            fields.push(Field {
                value: keep
                    .get(&key)
                    .cloned()
                    .or_else(|| q.default.clone())
                    .unwrap_or_default(),
                key,
                // The prompt's head ("Public URL"); its explanation is the field's help.
                label: q
                    .prompt
                    .split(" (")
                    .next()
                    .unwrap_or(&q.prompt)
                    .trim_end_matches(['?', ':'])
                    .to_string(),
                secret: q.secret,
                help: q.help.clone(),
            });
        }
        fields
    }

    /// Default ⇄ Advanced, keeping every value typed so far.
    pub fn toggle_mode(&mut self) {
        let keep = self.answers();
        self.mode = match self.mode {
            Mode::Default => Mode::Advanced,
            Mode::Advanced => Mode::Default,
        };
        let focused = self.fields.get(self.focus).map(|f| f.key.clone());
        self.fields = self.fields_for(self.mode, &keep);
        self.focus = focused
            .and_then(|k| self.fields.iter().position(|f| f.key == k))
            .unwrap_or(0);
        self.validate();
    }

    /// The answers as an answers file would hold them: only what was filled in.
    pub fn answers(&self) -> BTreeMap<String, String> {
        self.fields
            .iter()
            .filter(|f| !f.value.trim().is_empty())
            .map(|f| (f.key.clone(), f.value.trim().to_string()))
            .collect()
    }

    pub fn set_facts(&mut self, facts: Result<NodeFacts, String>) {
        self.facts = Some(facts);
        self.validate();
    }

    /// Runs the answers through the resolver; true when it accepts them.
    pub fn validate(&mut self) -> bool {
        self.errors.clear();
        self.other_errors.clear();
        let Some(Ok(facts)) = &self.facts else {
            return false;
        };
        let answers = self.answers();
        let Err(problems) = resolve(&self.profile, facts, &answers, false) else {
            return true;
        };
        for p in problems {
            let filled = answers.contains_key(&p.field);
            let text = format!("{} ({})", p.problem, p.help);
            match self.fields.iter().find(|f| f.key == p.field) {
                // An empty field is not an error until the user has tried to go on.
                Some(_) if !filled && !self.submitted => {}
                Some(_) => {
                    self.errors.entry(p.field.clone()).or_insert(text);
                }
                None => self.other_errors.push(format!("{}: {text}", p.field)),
            }
        }
        false
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

    /// Enter on the form: the summary when everything is accepted, the errors otherwise.
    pub fn submit(&mut self) -> bool {
        self.submitted = true;
        if !self.validate() {
            if let Some(i) = self
                .fields
                .iter()
                .position(|f| self.errors.contains_key(&f.key))
            {
                self.focus = i;
            }
            return false;
        }
        if let Some(Ok(facts)) = &self.facts {
            // The questions the form did not show take their defaults (as the install will).
            let mut shown = self.answers();
            for q in &self.profile.questions {
                if let Some(d) = &q.default {
                    shown.entry(q.key.to_string()).or_insert_with(|| d.clone());
                }
            }
            self.summary = Some(crate::install::wizard::summary(
                &self.profile,
                facts,
                &shown,
            ));
        }
        true
    }

    /// The instance's name as the install will record it.
    pub fn instance_name(&self) -> String {
        self.answers()
            .get("name")
            .cloned()
            .unwrap_or_else(|| self.profile.name.to_string())
    }
}
