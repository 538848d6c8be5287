//! `launch-tui install`: gather the settings (wizard or answers file), check them all against
//! the node before anything is created, then run the install plan on the engine. A failure
//! removes the half-made container unless `--keep-on-failure`.

pub mod settings;
mod steps;
pub mod wizard;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde_json::json;

use crate::connect::connect;
use crate::ct::{CtAccess, Pct};
use crate::engine::execute;
use crate::engine::render::{operation_log_path, timestamp, OperationViews};
use crate::error::{LaunchError, Result};
use crate::instance::{Container, Instance, InstanceStore, Slot};
use crate::profile::{Catalog, Component, Profile, SecretKind};
use crate::prompt::Prompter;
use crate::pve::{Client, ContentType, ResourceType};
use crate::release::ReleaseCache;
use crate::render::DbContext;
use crate::report::{Outcome, Output, Report};
use crate::site::Site;
use settings::{InstallSettings, NodeFacts};

/// Where verified releases are cached (`LAUNCH_CACHE_DIR` overrides).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LAUNCH_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/launch"))
}

/// Everything the install steps share.
pub struct InstallCtx {
    pub client: Client,
    pub ct: Box<dyn CtAccess>,
    pub node: String,
    pub profile: Profile,
    pub settings: InstallSettings,
    pub releases: ReleaseCache,
    pub store: InstanceStore,
    pub secrets: BTreeMap<String, String>,
    pub db: DbContext,
    pub template_volid: Option<String>,
    /// The container exists now (cleared when it is removed again).
    pub created: bool,
    /// The container was created at some point of this run.
    pub ever_created: bool,
    pub ip: Option<String>,
    /// `tls: acme`: whether the certificate was obtained (Err: the CA's message and what to
    /// check). A failure does not undo the install: the instance serves HTTP.
    pub acme_result: Option<std::result::Result<(), String>>,
}

impl InstallCtx {
    pub fn main_component(&self) -> &Component {
        &self.profile.components[0]
    }

    /// Components after the main one that this install enables (`when:` answered yes).
    pub fn extra_components(&self) -> impl Iterator<Item = &Component> {
        self.profile
            .components
            .iter()
            .skip(1)
            .filter(|c| match &c.when {
                None => true,
                Some(k) => self.settings.app.get(k.as_str()).map(String::as_str) == Some("true"),
            })
    }

    /// What the instance's files are rendered from.
    pub fn app_settings(&self) -> crate::deploy::AppSettings<'_> {
        crate::deploy::AppSettings {
            profile: &self.profile,
            name: &self.settings.name,
            settings: &self.settings.app,
            secrets: &self.secrets,
            db: self.db.clone(),
            tls: self.settings.tls.is_some(),
        }
    }

    pub fn secret(&self, key: &str) -> String {
        self.secrets.get(key).cloned().unwrap_or_default()
    }

    pub fn instance_record(&self) -> Instance {
        let s = &self.settings;
        let mut settings: BTreeMap<String, String> = s.app.clone();
        settings.insert("database".into(), s.database.label().into());
        if crate::database::adapter(s.database).slot_databases() {
            // The local user was made with readWrite on both slots' databases (an external
            // server's admin grants both: the docs and the update's error say so).
            settings.insert(crate::database::SLOT_DBS.into(), "separate".into());
        }
        settings.insert("os".into(), s.os.label().into());
        if s.tls.is_some() || matches!(self.acme_result, Some(Ok(()))) {
            settings.insert("tls".into(), "true".into());
        }
        if let Some(db) = &s.external_db {
            settings.insert("db_host".into(), db.host.clone());
            settings.insert("db_port".into(), db.port.to_string());
            settings.insert("db_user".into(), db.user.clone());
            settings.insert("db_name".into(), db.name.clone());
        }
        let now = timestamp();
        Instance {
            name: s.name.clone(),
            profile: self.profile.name.to_string(),
            app_version: s.version.clone(),
            container: Container {
                node: self.node.clone(),
                vmid: s.vmid,
                hostname: s.hostname.clone(),
                ip: self.ip.clone(),
                storage: s.storage.clone(),
            },
            active_slot: Slot::Blue,
            releases: vec![s.version.clone()],
            previous: None,
            components: self
                .extra_components()
                .filter_map(|c| match &c.install {
                    crate::profile::InstallMethod::Pip { version, .. }
                    | crate::profile::InstallMethod::Npm { version, .. }
                    | crate::profile::InstallMethod::Source { version, .. } => {
                        Some((c.name.to_string(), version.clone()?))
                    }
                    _ => None,
                })
                .collect(),
            settings,
            secrets: self.secrets.clone(),
            created: now.clone(),
            updated: now,
        }
    }
}

pub fn generate(kind: SecretKind, length: u32) -> String {
    match kind {
        SecretKind::Alnum => Alphanumeric.sample_string(&mut rand::rng(), length as usize),
        SecretKind::Hex => {
            let mut b = vec![0u8; length as usize];
            rand::rng().fill_bytes(&mut b);
            hex::encode(b)
        }
    }
}

/// What the node offers for an install's defaults and checks (also the TUI's install form).
pub fn facts(client: &Client, node: &str) -> Result<NodeFacts> {
    let resources = client.cluster_resources(Some(ResourceType::Vm))?;
    let storages = client.storages(node, &[ContentType::Rootdir])?;
    let templates = client.storages(node, &[ContentType::Vztmpl])?;
    let status = client.node_status(node)?;
    let mut offered: Vec<String> = client
        .appliances(node)?
        .into_iter()
        .map(|a| a.template)
        .collect();
    for st in &templates {
        for item in client.storage_content(node, &st.storage, Some(ContentType::Vztmpl))? {
            if let Some((_, file)) = item.volid.split_once("vztmpl/") {
                offered.push(file.to_string());
            }
        }
    }
    Ok(NodeFacts {
        templates: offered,
        node: node.to_string(),
        next_id: client.next_id()?,
        taken_ids: resources.iter().filter_map(|r| r.vmid).collect(),
        taken_hostnames: resources.iter().filter_map(|r| r.name.clone()).collect(),
        rootdir_storages: storages
            .into_iter()
            .filter(|s| s.active != Some(false) && s.enabled != Some(false))
            .map(|s| (s.storage, s.avail.unwrap_or(0)))
            .collect(),
        template_storages: templates.into_iter().map(|s| s.storage).collect(),
        bridges: client.bridges(node)?.into_iter().map(|(b, _)| b).collect(),
        free_memory_mib: status
            .memory
            .and_then(|m| m.free.or(m.avail))
            .map(|b| b / 1024 / 1024)
            .unwrap_or(0),
    })
}

/// The privileges an install needs, by ACL path (see ../shared/notes/proxmox-api.md, "Minimal
/// role for a token"); `A|B` means either. The paths are those PVE checks when creating a CT
/// (pve-container's API2/LXC.pm create, pve-storage's check_volume_access for the template,
/// pve-guest-common's check_vnet_access for the bridge and its VLAN tag).
fn required_privileges(
    client: &Client,
    s: &InstallSettings,
    node: &str,
) -> Result<Vec<(String, &'static str)>> {
    let zone = client.bridge_zone(node, &s.bridge)?;
    Ok(privileges_for(&Placement {
        vmid: s.vmid,
        storage: &s.storage,
        template_storage: &s.template_storage,
        bridge: &s.bridge,
        zone: &zone,
        vlan: s.vlan,
        node,
    }))
}

/// Where a new container goes, as far as privileges are concerned.
pub(crate) struct Placement<'a> {
    pub vmid: u32,
    pub storage: &'a str,
    pub template_storage: &'a str,
    pub bridge: &'a str,
    /// The SDN zone of `bridge`: `localnetwork` for a plain bridge, the vnet's own zone.
    pub zone: &'a str,
    pub vlan: Option<u16>,
    pub node: &'a str,
}

pub(crate) fn privileges_for(p: &Placement) -> Vec<(String, &'static str)> {
    let mut need: Vec<(String, &'static str)> = [
        "VM.Allocate",
        "VM.Audit",
        "VM.PowerMgmt",
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Disk",
        "VM.Config.Network",
        "VM.Config.Options",
    ]
    .into_iter()
    .map(|priv_| (format!("/vms/{}", p.vmid), priv_))
    .collect();
    need.push((format!("/storage/{}", p.storage), "Datastore.AllocateSpace"));
    need.push((
        format!("/storage/{}", p.template_storage),
        "Datastore.AllocateTemplate",
    ));
    need.push((
        format!("/storage/{}", p.template_storage),
        "Datastore.AllocateSpace|Datastore.Audit",
    ));
    need.push((format!("/nodes/{}", p.node), "Sys.Audit"));
    let bridge = match p.vlan {
        Some(tag) => format!("/sdn/zones/{}/{}/{tag}", p.zone, p.bridge),
        None => format!("/sdn/zones/{}/{}", p.zone, p.bridge),
    };
    need.push((bridge, "SDN.Use"));
    need
}

/// The required privileges the caller lacks, asking PVE once per path.
pub(crate) fn missing_privileges(
    client: &Client,
    need: &[(String, &'static str)],
) -> Result<Vec<(String, &'static str)>> {
    let mut missing = Vec::new();
    let mut paths: Vec<&String> = Vec::new();
    for (p, _) in need {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    for path in paths {
        let here = client.permissions(Some(path))?;
        let set = here.get(path.as_str());
        for (_, want) in need.iter().filter(|(p, _)| p == path) {
            let ok = want
                .split('|')
                .any(|w| set.is_some_and(|s| s.contains_key(w)));
            if !ok {
                missing.push((path.clone(), *want));
            }
        }
    }
    Ok(missing)
}

/// Checks made before anything is created that need the node: the PVE version and the token's
/// privileges (every missing one listed, with the command that grants it).
fn preflight(client: &Client, s: &InstallSettings, node: &str) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let version = client.version()?;
    match version.major() {
        Some(8) | Some(9) => {}
        Some(n) if n > 9 => warnings.push(format!(
            "Proxmox VE {} is newer than the versions Launch was tested with (8.x, 9.x); continuing",
            version.version
        )),
        _ => {
            return Err(LaunchError::bad_input(
                "Proxmox VE",
                format!("version {} is not supported", version.version),
                "Launch needs Proxmox VE 8.x or 9.x; upgrade the node",
            ))
        }
    }
    if let Some(w) = cpu_check(client, s, node)? {
        warnings.push(w);
    }
    let missing: Vec<crate::error::InvalidValue> =
        missing_privileges(client, &required_privileges(client, s, node)?)?
        .into_iter()
        .map(|(path, p)| crate::error::InvalidValue {
            field: "privilege".into(),
            value: format!("{p} on {path}"),
            problem: "the API token lacks it".into(),
            help: format!("pveum acl modify {path} --tokens USER@REALM!TOKENID --roles ROLE_WITH_{p}  (or use an admin token)"),
        })
        .collect();
    if !missing.is_empty() {
        return Err(LaunchError::InvalidValues(missing));
    }
    Ok(warnings)
}

/// The CPU features the database's server needs (MongoDB ≥ 5: AVX on x86_64), from the node's
/// `cpuinfo.flags`: a node without them is refused before anything is created; flags that
/// cannot be read are a warning.
fn cpu_check(client: &Client, s: &InstallSettings, node: &str) -> Result<Option<String>> {
    let adapter = crate::database::adapter(s.database);
    let need = adapter.cpu_flags();
    if need.is_empty() {
        return Ok(None);
    }
    let flags = client
        .node_status(node)?
        .cpuinfo
        .and_then(|c| c.flags)
        .unwrap_or_default();
    let have: std::collections::BTreeSet<&str> = flags.split_whitespace().collect();
    // Only an x86 CPU is asked for x86 features (every x86_64 CPU has SSE2).
    if !have.contains("sse2") {
        return Ok(Some(format!(
            "could not tell whether node {node}'s CPU has {} (its flags say no x86_64 CPU); a local {} needs it",
            need.join(", "),
            adapter.label()
        )));
    }
    let missing: Vec<&str> = need.iter().copied().filter(|f| !have.contains(f)).collect();
    if missing.is_empty() {
        return Ok(None);
    }
    Err(LaunchError::bad_input(
        format!("database: {}", adapter.label()),
        format!(
            "node {node}'s CPU lacks {}, which a local {} server needs",
            missing.join(", "),
            s.database.label()
        ),
        adapter.cpu_help(),
    ))
}

/// An instance installed and answering through nginx.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InstallReport {
    pub instance: String,
    #[serde(skip)]
    pub title: String,
    pub vmid: u32,
    pub ip: String,
    /// Where people open it: the public URL, else the container's address.
    pub url: String,
    pub version: String,
    /// The instance's record, which holds its credentials (0600).
    #[serde(skip)]
    pub record: PathBuf,
    pub log: PathBuf,
    /// The daily health check on the host, when install offered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSetup>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthCheckSetup {
    pub enabled: bool,
    pub message: String,
}

impl Report for InstallReport {
    fn text(&self) -> String {
        let mut text = format!(
            "{title} {version} is running in CT {vmid}.\n  open:        {url}  (from this host: http://{ip}/)\n  credentials: {record} (mode 0600)\n  log:         {log}\n  next:        launch-tui status {name} · launch-tui backup {name} · launch-tui update {name}",
            title = self.title,
            version = self.version,
            vmid = self.vmid,
            url = self.url,
            ip = self.ip,
            record = self.record.display(),
            log = self.log.display(),
            name = self.instance,
        );
        if let Some(h) = &self.health_check {
            text.push_str(&format!("\n  daily check: {}", h.message));
        }
        text
    }
}

/// What to install, as plain data (no clap types): the CLI builds it from its flags and
/// answers file, `restore --to-new` from an archive's record.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// A profile's name, or a profile's directory (`./myapp/`); None: the only profile there is.
    pub profile: Option<String>,
    /// Answers to the profile's questions and the container's fields (`LAUNCH_<KEY>` variables
    /// override them). None: the wizard asks, on a terminal.
    pub answers: Option<BTreeMap<String, String>>,
    pub name: Option<String>,
    /// Accept values the checks would refuse (the wizard's and the resolver's `force`).
    pub force: bool,
    /// Keep a failed install's container for debugging instead of undoing it.
    pub keep_on_failure: bool,
    /// The settings are confirmed (`--yes`); an unattended install needs it.
    pub confirmed: bool,
}

/// Installs what `req` says. Without answers the wizard asks through `ask` (the front end's
/// prompter; None when nobody can be asked), which also offers to keep a failed container.
pub fn run(
    g: &Site,
    req: &InstallRequest,
    mut ask: Option<&mut dyn Prompter>,
    out: &Output,
) -> Result<Outcome> {
    let catalog = Catalog::new(&g.config);
    // Without an answers file the wizard asks, when someone can be asked; it needs the node's
    // facts (free IDs, storages) first, so its answers come after connecting.
    let interactive = req.answers.is_none();
    if interactive && ask.is_none() {
        return Err(LaunchError::bad_input(
            "install",
            "no --answers file and no terminal to run the wizard on",
            "run it on a terminal, or pass --answers FILE --yes for an unattended install",
        ));
    }
    let mut adopt_from = None;
    let loaded = match &req.profile {
        // A path (`./myapp/`): the profile is copied into CONFIG/profiles/NAME/ first, so
        // update, status, backup and restore find the same profile by its name later.
        Some(arg) if arg.contains('/') => {
            let from_path = catalog.load_arg(arg)?;
            catalog.check_adoptable(&from_path)?;
            adopt_from = Some(from_path.clone());
            from_path
        }
        Some(name) => catalog.load(name)?,
        None => {
            let names = catalog.names();
            match names.as_slice() {
                [only] => catalog.load(only)?,
                _ => {
                    return Err(LaunchError::bad_input(
                        "install",
                        "no app named",
                        format!(
                            "name one: launch-tui install APP (one of: {}), or a profile's directory: launch-tui install ./myapp/",
                            names.join(", ")
                        ),
                    ))
                }
            }
        }
    };
    let profile = loaded.profile;
    let mut answers = BTreeMap::new();
    if let Some(given) = &req.answers {
        answers = given.clone();
        let known: Vec<String> = settings::CONTAINER_KEYS
            .iter()
            .map(|k| k.to_string())
            .chain(profile.questions.iter().map(|q| q.key.to_string()))
            .collect();
        answers.extend(crate::answers::env_answers(&known)?);
    }
    if let Some(n) = &req.name {
        crate::instance::check_instance_name(n)?;
        answers.insert("name".into(), n.clone());
    }
    if !interactive && !req.confirmed {
        return Err(LaunchError::bad_input(
            "--answers",
            "an unattended install needs --yes to confirm",
            "add --yes (the settings are checked before anything is created)",
        ));
    }
    let store = InstanceStore::new(&g.config);
    let conn = connect(g)?;
    if let Some(w) = conn.warning {
        out.warn(w);
    }
    let client = conn.client;
    let node = crate::connect::pick_node(&client, g)?;
    let facts = facts(&client, &node)?;
    if let (true, Some(prompter)) = (interactive, ask.as_deref_mut()) {
        let mut saved = wizard::SavedDefaults::load(&g.config, &profile)?;
        saved.values.extend(answers.clone());
        let asked = wizard::ask(&profile, &facts, &saved, req.force, prompter)?;
        match asked {
            Some(m) => answers = m,
            None => {
                return Ok(Outcome::new(
                    "Cancelled; nothing was created.",
                    json!({ "cancelled": true }),
                ))
            }
        }
    }
    let settings = settings::resolve(&profile, &facts, &answers, req.force)
        .map_err(LaunchError::InvalidValues)?;
    for w in preflight(&client, &settings, &node)? {
        out.warn(w);
    }
    if store.path_of(&settings.name).exists() {
        return Err(LaunchError::bad_input(
            format!("instance `{}`", settings.name),
            "an instance with this name is already installed",
            format!(
                "choose another name (name: {}-2 in the answers, or --name), or remove it first",
                settings.name
            ),
        ));
    }
    let ct: Box<dyn CtAccess> = Box::new(Pct::find()?);
    let mut secrets = BTreeMap::new();
    for s in &profile.secrets {
        secrets.insert(s.key.to_string(), generate(s.kind, s.length));
    }
    secrets.insert("db_password".into(), generate(SecretKind::Alnum, 32));
    for svc in &profile.services {
        // Generated for every service the profile lists, so a reconfigure can turn one on.
        let key = crate::service::adapter(svc.kind).secret_key();
        secrets.insert(key.into(), generate(SecretKind::Alnum, 32));
    }
    if let Some(e) = &settings.external_db {
        // The record keeps the external server's password, so update, backup and restore can
        // reach the same database the app uses.
        secrets.insert("db_password".into(), e.password.clone());
    }
    let db = match &settings.external_db {
        Some(e) => {
            let mut db = DbContext {
                kind: settings.database.label().into(),
                host: e.host.clone(),
                port: e.port,
                name: e.name.clone(),
                user: e.user.clone(),
                password: e.password.clone(),
                local_unit: None,
                url: String::new(),
            };
            db.url = crate::database::adapter(settings.database).url(&db);
            db
        }
        None => DbContext::sqlite(),
    };
    {
        // Values the bootstrap prints later stand in as placeholders for this check.
        let mut trial = secrets.clone();
        for o in profile.bootstrap.iter().flat_map(|b| &b.outputs) {
            trial.insert(o.to_string(), "placeholder".into());
        }
        let a = crate::deploy::AppSettings {
            profile: &profile,
            name: &settings.name,
            settings: &settings.app,
            secrets: &trial,
            db: db.clone(),
            tls: settings.tls.is_some(),
        };
        crate::deploy::check_renders(&a, &settings.version).map_err(|e| {
            LaunchError::InvalidValues(vec![crate::error::InvalidValue {
                field: "answers".into(),
                value: e.template.clone(),
                problem: e.detail,
                help: "change the value the message names; nothing was created".into(),
            }])
        })?;
    }
    // Every check passed: a profile given by path is now copied into CONFIG/profiles/NAME/.
    let profile = match adopt_from {
        Some(from_path) => catalog.adopt(&from_path)?.profile,
        None => profile,
    };
    let name = settings.name.clone();
    let log_path = operation_log_path(&name, "install");
    let mut ctx = InstallCtx {
        client,
        ct,
        node,
        profile,
        settings,
        releases: ReleaseCache::new(cache_dir().join("releases")),
        store,
        secrets,
        db,
        template_volid: None,
        created: false,
        ever_created: false,
        ip: None,
        acme_result: None,
    };
    let plan = steps::plan(&ctx);
    crate::engine::handle_interrupts();
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    // On a terminal the user chooses after a failure whether to keep the container for
    // debugging; unattended runs remove it unless --keep-on-failure.
    let keep_first = req.keep_on_failure || interactive;
    match execute(plan, &mut ctx, &mut views.all(), keep_first) {
        Ok(()) => {
            // The timer is host-wide and comes after the instance works: a failure to set it
            // up is a warning with the way to do it, never a reason to undo the install.
            let health =
                ctx.settings
                    .health_check
                    .then(|| match crate::status::health::install_timer(g) {
                        Ok(t) if t.enabled => (true, t.message),
                        Ok(t) => (false, t.message),
                        Err(e) => (
                            false,
                            format!("the daily health check was not set up: {e:#}"),
                        ),
                    });
            if let Some((false, m)) = &health {
                out.warn(m.clone());
            }
            let ip = ctx.ip.clone().unwrap_or_default();
            let url = ctx
                .profile
                .role_value(crate::profile::Role::PublicUrl, &ctx.settings.app)
                .map(str::to_string)
                .unwrap_or_else(|| format!("http://{ip}/"));
            if let Some(Err(m)) = &ctx.acme_result {
                let r = ctx.settings.acme.as_ref();
                return Err(LaunchError::Failed(anyhow::anyhow!(
                    "{title} {version} is installed in CT {vmid} and serves HTTP (http://{ip}/), but HTTPS is not on: {m}\n  retry once fixed: launch-tui reconfigure {name} --set tls=acme --set acme_email={email}{dir}\n  log: {log}",
                    title = ctx.profile.title,
                    version = ctx.settings.version,
                    vmid = ctx.settings.vmid,
                    email = r.map(|r| r.email.as_str()).unwrap_or("ADDRESS"),
                    dir = r
                        .filter(|r| r.directory != crate::acme::LETS_ENCRYPT)
                        .map(|r| format!(" --set acme_directory={}", r.directory))
                        .unwrap_or_default(),
                    log = log_path.display(),
                )));
            }
            Ok(Outcome::of(&InstallReport {
                instance: name.clone(),
                title: ctx.profile.title.clone(),
                vmid: ctx.settings.vmid,
                ip,
                url,
                version: ctx.settings.version.clone(),
                record: ctx.store.path_of(&name),
                log: log_path,
                health_check: health
                    .map(|(enabled, message)| HealthCheckSetup { enabled, message }),
            }))
        }
        Err(e) => {
            let vmid = ctx.settings.vmid;
            if let (true, false, true, Some(prompter)) =
                (interactive, req.keep_on_failure, ctx.created, ask)
            {
                let remove = prompter
                    .confirm(
                        "remove_on_failure",
                        &format!(
                            "Remove the half-made container {vmid}? (no keeps it for debugging)"
                        ),
                        true,
                    )
                    .unwrap_or(true);
                if remove {
                    if let Err(err) =
                        steps::destroy_container(&mut ctx, &crate::engine::Reporter::discard())
                    {
                        out.warn(format!("could not remove CT {vmid}: {err:#}"));
                    }
                }
            }
            let kept = if ctx.created {
                format!(
                    "\n  the container {vmid} was kept (remove it with `pct destroy {vmid} --purge`)"
                )
            } else if ctx.ever_created {
                format!("\n  the container {vmid} was removed")
            } else {
                String::new()
            };
            Err(LaunchError::Failed(anyhow::anyhow!(
                "install of {name} failed: {e}{kept}\n  log: {}",
                log_path.display()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pve::{ApiRequest, PveError, Transport};

    /// Answers `/access/permissions?path=P` as PVE does for a token whose grants come from a
    /// pool or a non-propagating ACL: every privilege present with flag 0, but for `lacking`.
    struct Perms {
        lacking: (&'static str, &'static str),
    }

    impl Transport for Perms {
        fn call(&self, req: &ApiRequest) -> std::result::Result<serde_json::Value, PveError> {
            let path = req
                .params
                .iter()
                .find(|(k, _)| k == "path")
                .map(|(_, v)| v.clone())
                .expect("the pre-flight asks per path");
            let privs: serde_json::Map<String, serde_json::Value> = [
                "VM.Allocate",
                "VM.Audit",
                "VM.PowerMgmt",
                "VM.Config.CPU",
                "VM.Config.Memory",
                "VM.Config.Disk",
                "VM.Config.Network",
                "VM.Config.Options",
                "Datastore.AllocateSpace",
                "Datastore.AllocateTemplate",
                "Sys.Audit",
                "SDN.Use",
            ]
            .iter()
            .filter(|p| (path.as_str(), **p) != self.lacking)
            .map(|p| (p.to_string(), json!(0)))
            .collect();
            Ok(json!({ path: privs }))
        }
    }

    #[test]
    fn privileges_present_with_flag_0_are_granted_and_the_vlan_path_is_checked() {
        let need = vec![
            ("/vms/120".to_string(), "VM.Allocate"),
            ("/storage/local".to_string(), "Datastore.AllocateTemplate"),
            (
                "/storage/local".to_string(),
                "Datastore.AllocateSpace|Datastore.Audit",
            ),
            ("/sdn/zones/localnetwork/vmbr0/20".to_string(), "SDN.Use"),
        ];
        let client = Client::new(Box::new(Perms {
            lacking: ("/nope", ""),
        }));
        assert!(missing_privileges(&client, &need).unwrap().is_empty());
        let client = Client::new(Box::new(Perms {
            lacking: ("/sdn/zones/localnetwork/vmbr0/20", "SDN.Use"),
        }));
        assert_eq!(
            missing_privileges(&client, &need).unwrap(),
            vec![("/sdn/zones/localnetwork/vmbr0/20".to_string(), "SDN.Use")]
        );
    }
}
