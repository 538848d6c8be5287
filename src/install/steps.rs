//! The install plan's steps. Each does one thing and logs what it did; only the container's
//! creation needs an undo, because everything after it lives inside the container.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::settings::Ipv4Setting;
use super::InstallCtx;
use crate::ct::sh;
use crate::engine::{FnStep, Plan, Reporter};
use crate::instance::Slot;
use crate::profile::InstallMethod;
use crate::pve::{ContentType, CreateCt, Features, IpConfig, NetConfig, RootFs, TaskProgress};
use crate::render::{self, Layout, RenderContext};

const TASK_TIMEOUT: Duration = Duration::from_secs(20 * 60);

fn wait(ctx: &InstallCtx, upid: &crate::pve::Upid, rep: &Reporter) -> Result<()> {
    let outcome = ctx
        .client
        .wait_task(upid, TASK_TIMEOUT, &mut |p: &TaskProgress| {
            for line in &p.new_lines {
                rep.debug(format!("task: {line}"));
            }
        })?;
    for w in outcome.warning_lines {
        rep.warn(w);
    }
    Ok(())
}

pub fn plan(ctx: &InstallCtx) -> Plan<InstallCtx> {
    let s = &ctx.settings;
    let p = &ctx.profile;
    let mut plan = Plan::new("install", Some(s.name.clone()));
    if matches!(
        p.components[0].install,
        InstallMethod::Release { .. } | InstallMethod::Source { .. }
    ) || ctx
        .extra_components()
        .any(|c| matches!(c.install, InstallMethod::Source { .. }))
    {
        // First, before any container exists: a wrong sum or an unreachable URL changes nothing.
        plan = plan.step(FnStep::new(
            "fetch",
            format!(
                "Downloading and verifying {} {} on the host",
                p.title, s.version
            ),
            fetch,
        ));
    }
    plan = plan
        .step(FnStep::new(
            "template",
            format!("Finding the {} template", s.os.label()),
            template,
        ))
        .step(
            FnStep::new(
                "create-container",
                format!("Creating container {} ({})", s.vmid, s.hostname),
                create_container,
            )
            .with_undo(destroy_container),
        )
        .step(FnStep::new(
            "start-container",
            format!("Starting container {} and waiting for its network", s.vmid),
            start_container,
        ));
    if s.root_password.is_some() {
        plan = plan.step(FnStep::new(
            "root-password",
            "Setting the root password in the container",
            root_password,
        ));
    }
    plan = plan.step(FnStep::new(
        "base-packages",
        "Installing base packages from Debian",
        base_packages,
    ));
    if !p.apt_sources.is_empty() {
        plan = plan.step(FnStep::new(
            "apt-sources",
            "Adding the profile's apt repositories and installing its packages",
            apt_sources,
        ));
    }
    let db = crate::database::adapter(s.database);
    if db.is_server() && !db.is_external() {
        plan = plan.step(FnStep::new(
            "database",
            format!("Setting up a local {} database", s.database.label()),
            local_database,
        ));
    }
    let services: Vec<&str> = crate::service::enabled(p, &s.app)
        .map(|a| a.title())
        .collect();
    if !services.is_empty() {
        plan = plan.step(FnStep::new(
            "services",
            format!("Setting up {}", services.join(", ")),
            services_step,
        ));
    }
    plan = plan
        .step(FnStep::new(
            "release",
            match p.components[0].install {
                InstallMethod::Source { .. } => format!(
                    "Downloading, verifying and building {} {} from its source",
                    p.title, s.version
                ),
                _ => format!("Downloading and verifying {} {}", p.title, s.version),
            },
            release,
        ))
        .step(FnStep::new(
            "app",
            format!("Installing {} as hardened systemd units", p.title),
            app,
        ));
    if let Some(b) = &p.bootstrap {
        plan = plan.step(FnStep::new(
            "bootstrap",
            b.title
                .clone()
                .unwrap_or_else(|| format!("Running {}'s first-start script", p.title)),
            bootstrap,
        ));
    }
    if ctx.extra_components().next().is_some() {
        plan = plan.step(FnStep::new(
            "components",
            "Installing extra components",
            extra_components,
        ));
    }
    plan = plan
        .step(FnStep::new("nginx", "Configuring nginx", nginx))
        .step(FnStep::new(
            "verify",
            "Checking the app through nginx",
            verify,
        ));
    if s.acme.is_some() {
        plan = plan.step(FnStep::new(
            "acme",
            "Obtaining the HTTPS certificate from the CA",
            acme,
        ));
    }
    plan.step(FnStep::new("record", "Recording the instance", record))
}

fn template(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let s = &ctx.settings;
    let prefix = format!("{}-standard_", s.os.label());
    let items =
        ctx.client
            .storage_content(&ctx.node, &s.template_storage, Some(ContentType::Vztmpl))?;
    let mut found: Vec<String> = items
        .into_iter()
        .map(|i| i.volid)
        .filter(|v| v.contains(&format!("vztmpl/{prefix}")))
        .collect();
    found.sort_by(|a, b| natural_cmp(a, b));
    if let Some(v) = found.pop() {
        rep.info(format!("found {v}"));
        ctx.template_volid = Some(v);
        return Ok(());
    }
    let appliances = ctx.client.appliances(&ctx.node)?;
    let mut names: Vec<String> = appliances
        .into_iter()
        .map(|a| a.template)
        .filter(|t| t.starts_with(&prefix))
        .collect();
    names.sort_by(|a, b| natural_cmp(a, b));
    let Some(name) = names.pop() else {
        bail!(
            "no {} template is in storage `{}` and the appliance index offers none\n  help: run `pveam update` on the node, then try again",
            s.os.label(),
            s.template_storage
        );
    };
    rep.info(format!("downloading {name} to {}", s.template_storage));
    let upid = ctx
        .client
        .download_appliance(&ctx.node, &s.template_storage, &name)?;
    wait(ctx, &upid, rep)?;
    ctx.template_volid = Some(format!("{}:vztmpl/{name}", s.template_storage));
    Ok(())
}

/// Orders template names with their numbers compared as numbers, so
/// `debian-12-standard_12.12-1` comes after `..._12.7-1` (a plain string sort says otherwise).
/// By hand: the dozen lines do not justify a dependency.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for ((da, x), (db, y)) in ca.iter().zip(cb.iter()) {
        let ord = if *da && *db {
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    ca.len().cmp(&cb.len())
}

fn create_container(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let s = &ctx.settings;
    let p = &ctx.profile;
    let ip = match &s.ipv4 {
        Ipv4Setting::Dhcp => IpConfig::Dhcp,
        Ipv4Setting::Static { addr, prefix, gw } => IpConfig::Static {
            cidr: format!("{addr}/{prefix}"),
            gw: Some(*gw),
        },
    };
    let description = format!(
        "{title} {version}, installed by launch-tui\nURL: {url}\n\nManage it on the Proxmox VE host:\n  launch-tui status {name}\n  launch-tui update {name}\n  launch-tui backup {name}\n",
        title = p.title,
        version = s.version,
        url = p
            .role_value(crate::profile::Role::PublicUrl, &s.app)
            .unwrap_or_default(),
        name = s.name
    );
    let create = CreateCt {
        vmid: s.vmid,
        ostemplate: ctx.template_volid.clone().context("no template found")?,
        hostname: s.hostname.clone(),
        cores: s.cores,
        memory: s.memory_mib,
        swap: s.swap_mib,
        rootfs: RootFs {
            storage: s.storage.clone(),
            size_gib: s.disk_gib,
        },
        net0: NetConfig {
            name: "eth0".into(),
            bridge: s.bridge.clone(),
            ip,
            tag: s.vlan,
            mtu: s.mtu,
            firewall: false,
        },
        features: Features { nesting: true },
        tags: vec!["launch".into(), p.name.to_string()],
        description: Some(description),
        onboot: true,
        start: false,
        nameserver: s.dns.iter().cloned().collect(),
        searchdomain: s.searchdomain.clone(),
        ssh_public_keys: s.ssh_public_keys.clone(),
        // Set after the start through chpasswd (the `root-password` step): pvesh, the transport
        // on a node, could carry it only on argv, where every local user can read it.
        password: None,
        // The container follows the node's clock and zone (as the helper scripts do); the app's own
        // timezone setting goes into its config. PVE accepts only zone.tab names here.
        timezone: Some("host".into()),
    };
    let upid = ctx.client.create_ct(&ctx.node, &create)?;
    // From here on the container exists: a failure must remove it (the undo below).
    ctx.created = true;
    ctx.ever_created = true;
    wait(ctx, &upid, rep)?;
    rep.info(format!("created CT {} on {}", s.vmid, s.storage));
    Ok(())
}

pub(super) fn destroy_container(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    if !ctx.created {
        return Ok(());
    }
    let vmid = ctx.settings.vmid;
    if let Ok(st) = ctx.client.ct_status(&ctx.node, vmid) {
        if st.status == "running" {
            let upid = ctx.client.stop_ct(&ctx.node, vmid)?;
            wait(ctx, &upid, rep)?;
        }
    }
    let upid = ctx.client.delete_ct(&ctx.node, vmid, true, false)?;
    wait(ctx, &upid, rep)?;
    ctx.created = false;
    rep.info(format!("removed CT {vmid}"));
    Ok(())
}

fn start_container(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let vmid = ctx.settings.vmid;
    let upid = ctx.client.start_ct(&ctx.node, vmid)?;
    wait(ctx, &upid, rep)?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let ip = loop {
        let ifs = ctx.client.ct_interfaces(&ctx.node, vmid)?;
        let inet = ifs
            .iter()
            .filter(|i| i.name != "lo")
            .find_map(|i| i.inet.clone());
        if let Some(inet) = inet {
            break inet.split('/').next().unwrap_or_default().to_string();
        }
        if Instant::now() > deadline {
            bail!("CT {vmid} has no IPv4 address after 90 s\n  help: check the bridge and DHCP on the node (`pct config {vmid}`)");
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    rep.info(format!("CT {vmid} is at {ip}"));
    ctx.ip = Some(ip);
    // systemd inside must be up before packages and units are managed.
    let out = ctx
        .ct
        .exec(vmid, &["systemctl", "is-system-running", "--wait"])?;
    rep.info(format!("systemd in CT {vmid}: {}", out.stdout.trim()));
    Ok(())
}

/// Sets root's password with `chpasswd` reading `root:PASSWORD` on its stdin through `pct exec`,
/// as PVE's docs suggest for scripted setups: the password is in no argv, request or log.
fn root_password(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let Some(password) = ctx.settings.root_password.as_deref() else {
        return Ok(());
    };
    let vmid = ctx.settings.vmid;
    let mut run = ctx.ct.spawn(vmid, &["chpasswd"], true)?;
    let written = match run.stdin() {
        Some(mut stdin) => stdin.write_all(format!("root:{password}\n").as_bytes()),
        None => Err(std::io::Error::other("no stdin")),
    };
    if let Err(e) = written {
        run.kill();
        bail!("cannot hand the root password to chpasswd in CT {vmid}: {e}");
    }
    run.finish()?;
    rep.info(format!(
        "root password set in CT {vmid} (chpasswd, from stdin)"
    ));
    Ok(())
}

fn apt(ctx: &InstallCtx, packages: &[&str]) -> Result<()> {
    let vmid = ctx.settings.vmid;
    let ct = ctx.ct.as_ref();
    crate::ct::run(
        ct,
        vmid,
        &[
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "update",
            "-qq",
        ],
    )?;
    apt_install(ctx, packages)
}

fn apt_install(ctx: &InstallCtx, packages: &[&str]) -> Result<()> {
    let vmid = ctx.settings.vmid;
    let ct = ctx.ct.as_ref();
    // Package names reach apt-get as arguments (the profile's are checked names too).
    let mut argv = vec![
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
    ];
    argv.extend_from_slice(packages);
    crate::ct::run(ct, vmid, &argv)?;
    Ok(())
}

fn base_packages(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    // nginx's Lua module: the site switches slots and holds writes per request, without a
    // reload (see the update's `proxy` step).
    let mut pkgs = vec![
        "nginx-light",
        "libnginx-mod-http-lua",
        "ca-certificates",
        "curl",
    ];
    // The database's: a local server, the client of an external one (dumps and restores),
    // the SQLite shell (consistent online copies).
    pkgs.extend(crate::database::adapter(ctx.settings.database).packages());
    // With apt sources of its own, the profile's packages and its services' servers come
    // after them (`apt-sources`): pgvector, say, is PGDG's on Debian 12.
    let profile_pkgs = profile_packages(ctx);
    if ctx.profile.apt_sources.is_empty() {
        pkgs.extend(profile_pkgs.iter().map(String::as_str));
    }
    rep.info(format!("apt-get install {}", pkgs.join(" ")));
    apt(ctx, &pkgs)
}

/// The runtimes' packages and the profile's own `packages:`.
fn profile_packages(ctx: &InstallCtx) -> Vec<String> {
    let mut pkgs: Vec<String> = Vec::new();
    // Runtimes: those the profile names, and those its components' kinds need.
    let mut runtimes: Vec<crate::profile::Runtime> = ctx.profile.runtimes.clone();
    runtimes.extend(
        std::iter::once(ctx.main_component())
            .chain(ctx.extra_components())
            .filter_map(|c| c.install.runtime()),
    );
    runtimes.sort();
    runtimes.dedup();
    for r in runtimes {
        pkgs.extend(r.packages().iter().map(|p| p.to_string()));
    }
    // The profile's own packages.
    pkgs.extend(ctx.profile.packages.iter().map(|p| p.as_str().to_string()));
    // The services' servers (Redis, PostgreSQL with pgvector).
    for a in crate::service::enabled(&ctx.profile, &ctx.settings.app) {
        pkgs.extend(a.packages().iter().map(|p| p.to_string()));
    }
    pkgs
}

/// The profile's apt repositories (key, deb822 file, an update that must accept them), then
/// its runtimes and packages, which may come from them.
fn apt_sources(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    crate::apt_source::apply(ctx.ct.as_ref(), ctx.settings.vmid, &ctx.profile, rep)?;
    let pkgs = profile_packages(ctx);
    if pkgs.is_empty() {
        return Ok(());
    }
    rep.info(format!("apt-get install {}", pkgs.join(" ")));
    let refs: Vec<&str> = pkgs.iter().map(String::as_str).collect();
    apt_install(ctx, &refs)
}

fn local_database(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let password = ctx.secret("db_password");
    let db = crate::deploy::create_local_database(
        ctx.ct.as_ref(),
        ctx.settings.vmid,
        ctx.settings.database,
        ctx.profile.name.as_str(),
        &password,
    )?;
    rep.info(format!("database {} and its user created", db.name));
    ctx.db = db;
    Ok(())
}

fn services_step(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let adapters: Vec<_> = crate::service::enabled(&ctx.profile, &ctx.settings.app).collect();
    crate::service::setup(
        ctx.ct.as_ref(),
        ctx.settings.vmid,
        &ctx.profile,
        &adapters,
        &ctx.secrets,
    )?;
    for a in adapters {
        rep.info(format!(
            "{} answers on 127.0.0.1:{} with credentials of its own",
            a.title(),
            a.port()
        ));
    }
    Ok(())
}

/// The release's archive into the host's release cache, checked against its pinned sum.
fn fetch(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let version = ctx.settings.version.as_str();
    let rel = ctx
        .profile
        .release(version)
        .with_context(|| format!("release {version} is not in the profile"))?;
    if let Some((artifact, archive)) =
        crate::deploy::fetch_release(&ctx.releases, &ctx.profile, rel, rep)?
    {
        crate::deploy::check_tree(&ctx.releases, &ctx.profile, &artifact, &archive, rep)?;
    }
    // Extra components built from a source of their own: fetched and checked now too.
    for c in ctx.extra_components() {
        if let InstallMethod::Source {
            version: Some(v),
            source: Some(src),
            strip_components,
            ..
        } = &c.install
        {
            let artifact = src.artifact();
            let archive = ctx.releases.fetch(
                ctx.profile.name.as_str(),
                &format!("{}-{v}", c.name),
                &artifact,
                &mut |_, _| {},
            )?;
            let staging = tempfile::tempdir()?;
            let tree = ctx.releases.repack_tree(
                &archive,
                &artifact,
                *strip_components,
                None,
                staging.path(),
            )?;
            rep.info(format!(
                "{} {v}'s source checked: {} files ({} MiB), every entry inside its directory",
                c.name,
                tree.files,
                tree.bytes >> 20
            ));
        }
    }
    Ok(())
}

fn release(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    if let InstallMethod::Source { .. } = &ctx.main_component().install {
        // The build runs as the app's user: it exists before the source is unpacked.
        let comp = ctx.main_component().clone();
        ensure_user(
            ctx,
            comp.user.as_str(),
            &format!("/var/lib/{}", ctx.profile.name),
        )?;
    }
    crate::deploy::install_release(
        ctx.ct.as_ref(),
        ctx.settings.vmid,
        &ctx.releases,
        &ctx.profile,
        &ctx.settings.version,
        rep,
    )
}

/// The render context for a component in a slot.
fn render_ctx(
    ctx: &InstallCtx,
    component: &crate::profile::Component,
    slot: Slot,
) -> RenderContext {
    ctx.app_settings()
        .render_context(component, slot, &ctx.settings.version)
}

fn install_component_files(
    ctx: &InstallCtx,
    component: &crate::profile::Component,
    slot: Option<Slot>,
) -> Result<String> {
    let rc = render_ctx(ctx, component, slot.unwrap_or(Slot::Blue));
    crate::deploy::write_component_files(
        ctx.ct.as_ref(),
        ctx.settings.vmid,
        &ctx.profile,
        component,
        &rc,
        slot,
    )
}

fn ensure_user(ctx: &InstallCtx, user: &str, home: &str) -> Result<()> {
    sh(
        ctx.ct.as_ref(),
        ctx.settings.vmid,
        &format!(
            "id -u {user} >/dev/null 2>&1 || useradd --system --user-group --home-dir {home} --no-create-home --shell /usr/sbin/nologin {user}; mkdir -p {home} && chown {user}:{user} {home} && chmod 0750 {home}"
        ),
    )?;
    Ok(())
}

/// Waits for `comp`'s health check on `port`; what passed, for the log.
fn wait_healthy(
    ctx: &InstallCtx,
    unit: &str,
    comp: &crate::profile::Component,
    port: u16,
) -> Result<String> {
    let t = crate::health::Target {
        ct: ctx.ct.as_ref(),
        vmid: ctx.settings.vmid,
        component: comp,
        port,
    };
    crate::health::wait_healthy(
        &t,
        unit,
        Duration::from_secs(1),
        Duration::from_secs(comp.health.deadline_s as u64),
    )?;
    Ok(format!("{} answers {}", t.what(), t.expected()))
}

fn app(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let vmid = ctx.settings.vmid;
    let comp = ctx.main_component().clone();
    let p = ctx.profile.name.to_string();
    let data_root = format!("/var/lib/{p}");
    ensure_user(ctx, comp.user.as_str(), &data_root)?;
    let data = Layout::data_dir(&p, Slot::Blue);
    sh(
        ctx.ct.as_ref(),
        vmid,
        &format!(
            "mkdir -p {data} && chown -R {u}:{u} {data} && chmod 0750 {data}",
            u = comp.user
        ),
    )?;
    if let Some((cert, key)) = ctx.settings.tls.clone() {
        sh(ctx.ct.as_ref(), vmid, &format!("mkdir -p /etc/{p}/tls"))?;
        ctx.ct.push(
            vmid,
            std::path::Path::new(&cert),
            &format!("/etc/{p}/tls/cert.pem"),
            0o644,
            None,
        )?;
        ctx.ct.push(
            vmid,
            std::path::Path::new(&key),
            &format!("/etc/{p}/tls/key.pem"),
            0o600,
            None,
        )?;
    }
    let unit = install_component_files(ctx, &comp, Some(Slot::Blue))?;
    sh(
        ctx.ct.as_ref(),
        vmid,
        &format!("systemctl daemon-reload && systemctl enable --now {unit}"),
    )?;
    rep.info(format!("{unit} started"));
    let passed = wait_healthy(ctx, &unit, &comp, comp.port.get())?;
    rep.info(passed);
    Ok(())
}

fn bootstrap(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let Some(b) = ctx.profile.bootstrap.clone() else {
        return Ok(());
    };
    let vmid = ctx.settings.vmid;
    let comp = ctx.main_component().clone();
    let rc = render_ctx(ctx, &comp, Slot::Blue);
    let script = render::file(&ctx.profile, &b.script, &rc)?;
    // Answers and secrets reach the script as files (one per key, 0600) in a private
    // directory named by its one argument: data, never shell text, never on a command line.
    let dir = "/run/launch-bootstrap";
    sh(
        ctx.ct.as_ref(),
        vmid,
        &format!("rm -rf {dir} && mkdir -m 0700 {dir} {dir}/in"),
    )?;
    let inputs: Vec<(String, String)> = ctx
        .settings
        .app
        .iter()
        .chain(ctx.secrets.iter())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &inputs {
        ctx.ct
            .write(vmid, &format!("{dir}/in/{k}"), v.as_bytes(), 0o600, None)?;
    }
    ctx.ct.write(
        vmid,
        &format!("{dir}/run.sh"),
        script.as_bytes(),
        0o700,
        None,
    )?;
    let out = ctx.ct.exec(
        vmid,
        &["/bin/sh", &format!("{dir}/run.sh"), &format!("{dir}/in")],
    );
    let _ = ctx.ct.exec(vmid, &["rm", "-rf", dir]);
    let out = out?;
    if !out.ok() {
        // The script's own output may hold secrets: show only stderr's last lines.
        let tail: Vec<&str> = out.stderr.lines().rev().take(8).collect();
        bail!(
            "the bootstrap script failed (exit {}):\n{}",
            out.code,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let mut got = BTreeMap::new();
    for line in out.stdout.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if b.outputs.iter().any(|o| o.as_str() == k) {
                got.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    for o in &b.outputs {
        let v = got
            .remove(o.as_str())
            .with_context(|| format!("the bootstrap script did not print {o}=..."))?;
        ctx.secrets.insert(o.to_string(), v);
    }
    rep.info(format!(
        "bootstrap done ({} value(s) kept)",
        b.outputs.len()
    ));
    Ok(())
}

fn extra_components(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let vmid = ctx.settings.vmid;
    let p = ctx.profile.name.to_string();
    let comps: Vec<_> = ctx.extra_components().cloned().collect();
    for c in comps {
        let home = format!("/var/lib/{p}-{}", c.name);
        ensure_user(ctx, c.user.as_str(), &home)?;
        if let InstallMethod::Pip {
            version: Some(version),
            ..
        }
        | InstallMethod::Npm {
            version: Some(version),
            ..
        } = &c.install
        {
            let dir = Layout::venv(&p, c.name.as_str());
            crate::deploy::install_package(
                ctx.ct.as_ref(),
                vmid,
                &ctx.profile,
                &c.install,
                &dir,
                version,
                rep,
            )?;
        }
        if let InstallMethod::Source { .. } = &c.install {
            crate::deploy::install_extra_source(
                ctx.ct.as_ref(),
                vmid,
                &ctx.releases,
                &ctx.profile,
                &c,
                rep,
            )?;
        }
        // Extra components take no part in blue-green: one unit, no slot.
        let unit = install_component_files(ctx, &c, None)?;
        sh(
            ctx.ct.as_ref(),
            vmid,
            &format!(
                "chown {u}:{u} {home}; systemctl daemon-reload && systemctl enable --now {unit}",
                u = c.user
            ),
        )?;
        wait_healthy(ctx, &unit, &c, c.port.get())?;
        rep.info(if c.location.is_empty() {
            format!(
                "{unit} started and answers on 127.0.0.1:{} (the app's only; nginx does not serve it)",
                c.port.get()
            )
        } else {
            format!("{unit} started and answers at {}", c.location)
        });
    }
    Ok(())
}

fn nginx(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let vmid = ctx.settings.vmid;
    let p = ctx.profile.name.to_string();
    let comp = ctx.main_component().clone();
    let rc = render_ctx(ctx, &comp, Slot::Blue);
    let site = render::nginx_site(&ctx.profile, &rc)?;
    let upstream = render::nginx_upstream(&Layout::upstream_name(&p), comp.port.get());
    sh(ctx.ct.as_ref(), vmid, "mkdir -p /etc/nginx/launch")?;
    // Old workers get the drain time to finish after a reload, then let go (an update's switch).
    crate::update::proxy::Proxy {
        ct: ctx.ct.as_ref(),
        vmid,
        profile: &p,
        http_port: 80,
    }
    .ensure_shutdown_timeout(comp.drain_s)?;
    ctx.ct.write(
        vmid,
        &Layout::upstream_include(&p),
        upstream.as_bytes(),
        0o644,
        None,
    )?;
    ctx.ct
        .write(vmid, &Layout::nginx_site(&p), site.as_bytes(), 0o644, None)?;
    sh(
        ctx.ct.as_ref(),
        vmid,
        &format!(
            "rm -f /etc/nginx/sites-enabled/default && ln -sf {site} /etc/nginx/sites-enabled/{p}.conf && systemctl enable nginx >/dev/null 2>&1; true",
            site = Layout::nginx_site(&p)
        ),
    )?;
    // Done only when nginx serves this site and nothing else can answer: the workers that
    // served the default site have exited, and a probe through nginx reaches the app.
    let proxy = crate::update::proxy::Proxy {
        ct: ctx.ct.as_ref(),
        vmid,
        profile: &p,
        http_port: 80,
    };
    let took = proxy.reload_proven(Duration::from_secs(comp.drain_s as u64 + 30))?;
    proxy.prove_upstream(comp.port.get())?;
    rep.info(format!(
        "nginx -t ok; reloaded, its old workers gone after {} ms, the site proven by a probe",
        took.as_millis()
    ));
    Ok(())
}

/// The app through nginx, checked inside the container (as the update's health gate does): a
/// container on a VLAN or bridge this node cannot reach is still installed correctly. Whether
/// this node reaches it is then only reported.
fn verify(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let ip = ctx
        .ip
        .clone()
        .context("the container's address is unknown")?;
    let vmid = ctx.settings.vmid;
    let comp = ctx.main_component().clone();
    let port = crate::deploy::http_port(&ctx.settings.app);
    let nginx_check = crate::health::ThroughNginx::of(&comp);
    let inside = format!("http://127.0.0.1:{port}{}", nginx_check.path);
    let want = nginx_check.expected();
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let got = crate::deploy::http_status(ctx.ct.as_ref(), vmid, &inside)?;
        if nginx_check.accepts(&got) {
            break;
        }
        if Instant::now() > end {
            bail!("{inside} answered {got} through nginx in CT {vmid}, expected {want}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    rep.info(format!(
        "{inside} answers {want} through nginx in CT {vmid}"
    ));
    // The version as the active slot reports it (a command probe runs beside the slot, not
    // through nginx).
    let t = crate::health::Target {
        ct: ctx.ct.as_ref(),
        vmid,
        component: &comp,
        port: comp.port.get(),
    };
    if let Some(running) = crate::health::running_version(&t)? {
        if running != ctx.settings.version {
            bail!(
                "the app reports version {running:?}, expected {}",
                ctx.settings.version
            );
        }
        rep.info(format!("the app reports version {running}"));
    }
    let outside = format!("http://{ip}{}", nginx_check.path);
    let reached = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .and_then(|c| c.get(&outside).send());
    match reached {
        Ok(r) => rep.info(format!("{outside} answers {} from this node", r.status())),
        Err(e) => rep.warn(format!(
            "this node cannot reach {outside} ({e}); the app answers inside the container\n  help: check the bridge, VLAN and firewall between this node and {ip}"
        )),
    }
    Ok(())
}

/// `tls: acme`: lego and the renewal timer, the certificate, then the site with TLS. A CA's
/// refusal is kept for the end of the install (exit 1 with its message), not undone: the app
/// works over HTTP, and `reconfigure --set tls=acme` retries.
fn acme(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let Some(r) = ctx.settings.acme.clone() else {
        return Ok(());
    };
    let vmid = ctx.settings.vmid;
    let p = ctx.profile.name.to_string();
    crate::acme::setup(ctx.ct.as_ref(), vmid, &p, &r)?;
    if let Err(e) = crate::acme::obtain(ctx.ct.as_ref(), vmid, &p, &r, "run") {
        rep.warn(format!("{e:#}"));
        ctx.acme_result = Some(Err(format!("{e:#}")));
        return Ok(());
    }
    let comp = ctx.main_component().clone();
    let mut app = ctx.app_settings();
    app.tls = true;
    let rc = app.render_context(&comp, Slot::Blue, &ctx.settings.version);
    let site = render::nginx_site(&ctx.profile, &rc)?;
    ctx.ct
        .write(vmid, &Layout::nginx_site(&p), site.as_bytes(), 0o644, None)?;
    crate::update::proxy::Proxy {
        ct: ctx.ct.as_ref(),
        vmid,
        profile: &p,
        http_port: crate::deploy::http_port(&ctx.settings.app),
    }
    .reload_proven(Duration::from_secs(u64::from(comp.drain_s) + 30))?;
    ctx.acme_result = Some(Ok(()));
    rep.info(format!(
        "certificate for {} obtained; nginx serves HTTPS; renewal: {}.timer",
        r.domain,
        crate::acme::AcmePaths::of(&p).unit
    ));
    Ok(())
}

fn record(ctx: &mut InstallCtx, rep: &Reporter) -> Result<()> {
    let inst = ctx.instance_record();
    ctx.store.save(&inst)?;
    let text = serde_yaml_ng::to_string(&inst)?;
    sh(
        ctx.ct.as_ref(),
        ctx.settings.vmid,
        "mkdir -p /etc/launch && chmod 0700 /etc/launch",
    )?;
    ctx.ct.write(
        ctx.settings.vmid,
        "/etc/launch/instance.yaml",
        text.as_bytes(),
        0o600,
        None,
    )?;
    rep.info(format!(
        "recorded {}",
        ctx.store.path_of(&inst.name).display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    #[test]
    fn templates_sort_by_version_numbers() {
        let mut names = vec![
            "debian-12-standard_12.12-1_amd64.tar.zst",
            "debian-12-standard_12.7-1_amd64.tar.zst",
            "debian-12-standard_12.2-1_amd64.tar.zst",
            "debian-12-standard_12.12-2_amd64.tar.zst",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            [
                "debian-12-standard_12.2-1_amd64.tar.zst",
                "debian-12-standard_12.7-1_amd64.tar.zst",
                "debian-12-standard_12.12-1_amd64.tar.zst",
                "debian-12-standard_12.12-2_amd64.tar.zst",
            ]
        );
    }
}
