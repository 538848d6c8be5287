//! Placing an app version into a slot of an existing container: the render context of a
//! component, its files and unit, its release binary, and waiting for it to answer. Shared by
//! install, update, rollback, reconfigure and restore, so they all write the same files.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ct::{run, sh, CtAccess};
use crate::engine::Reporter;
use crate::instance::{Instance, Slot};
use crate::profile::{Component, InstallMethod, Profile, Role};
use crate::release::ReleaseCache;
use crate::render::{self, DbContext, ExtraLocation, Layout, RenderContext, TlsContext};

/// What the files of an instance are rendered from.
pub struct AppSettings<'a> {
    pub profile: &'a Profile,
    pub name: &'a str,
    /// Answers to the profile's questions (and the install settings kept with them).
    pub settings: &'a BTreeMap<String, String>,
    pub secrets: &'a BTreeMap<String, String>,
    pub db: DbContext,
    pub tls: bool,
}

impl<'a> AppSettings<'a> {
    pub fn of_instance(profile: &'a Profile, inst: &'a Instance) -> Self {
        AppSettings {
            profile,
            name: &inst.name,
            settings: &inst.settings,
            secrets: &inst.secrets,
            db: DbContext::for_instance(inst),
            tls: inst.settings.get("tls").map(String::as_str) == Some("true"),
        }
    }

    pub fn main_component(&self) -> &'a Component {
        &self.profile.components[0]
    }

    /// Components after the main one that are switched on (`when:` answered yes).
    pub fn extra_components(&self) -> Vec<&'a Component> {
        enabled_extras(self.profile, self.settings)
    }

    /// The render context of `component` running `version` in `slot`.
    pub fn render_context(
        &self,
        component: &Component,
        slot: Slot,
        version: &str,
    ) -> RenderContext {
        let p = self.profile.name.as_str();
        let public_url = self
            .profile
            .role_value(Role::PublicUrl, self.settings)
            .unwrap_or_default()
            .to_string();
        let server_name = url::Url::parse(&public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "_".into());
        let mut settings = self.settings.clone();
        // Extra components reach the app through nginx, so they follow the active slot.
        settings.insert("app_url".into(), local_url(self.settings));
        RenderContext {
            instance: self.name.to_string(),
            slot: slot.as_str().into(),
            port: slot_port(component, slot),
            user: component.user.to_string(),
            release_dir: Layout::release_dir(p, version),
            data_dir: Layout::data_dir(p, slot),
            env_file: format!("/etc/{p}/{}.env", component.name),
            venv: Layout::venv(p, component.name.as_str()),
            drain_s: component.drain_s,
            settings: render::typed_settings(self.profile, &settings),
            secrets: self.secrets.clone(),
            db: self.db.clone(),
            tls: self.tls.then(|| TlsContext {
                cert: format!("/etc/{p}/tls/cert.pem"),
                key: format!("/etc/{p}/tls/key.pem"),
            }),
            server_name,
            public_url,
            upload_limit_mib: self
                .profile
                .role_value(Role::UploadLimitMib, self.settings)
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_UPLOAD_LIMIT_MIB),
            upstream_include: Layout::upstream_include(p),
            upstream_name: Layout::upstream_name(p),
            http_port: http_port(self.settings),
            https_port: https_port(self.settings),
            hold_flag: Layout::hold_file(p),
            hold_max_wait_s: self.profile.update.hold_max_wait_s(),
            safe_methods: self.profile.update.safe_methods(),
            lua_dict: Layout::lua_dict(p),
            config_id: String::new(),
            acme_webroot: (crate::acme::enabled(self.settings)
                && self.settings.get("acme_challenge").map(String::as_str)
                    != Some("dns-cloudflare"))
            .then(|| crate::acme::AcmePaths::of(p).webroot),
            extra_locations: self
                .extra_components()
                .into_iter()
                .map(|c| ExtraLocation {
                    path: c.location.clone(),
                    port: c.port.get(),
                })
                .collect(),
        }
    }
}

/// nginx's upload limit for a profile with no `roles.upload_limit_mib` question.
pub const DEFAULT_UPLOAD_LIMIT_MIB: u64 = 100;

/// Renders every file of the instance in memory, so a value that no file can hold safely is
/// refused before anything is created (the filters refuse what they cannot escape).
pub fn check_renders(a: &AppSettings, version: &str) -> Result<(), render::RenderError> {
    let main = a.main_component();
    for comp in std::iter::once(main).chain(a.extra_components()) {
        let rc = a.render_context(comp, Slot::Blue, version);
        render::unit(a.profile, comp, &rc)?;
        for f in &comp.files {
            render::file(a.profile, &f.template, &rc)?;
        }
    }
    let rc = a.render_context(main, Slot::Blue, version);
    render::nginx_site(a.profile, &rc)?;
    if let Some(b) = &a.profile.bootstrap {
        render::file(a.profile, &b.script, &rc)?;
    }
    Ok(())
}

/// nginx's public HTTP port: 80 unless `reconfigure --set http_port=N` moved it.
pub fn http_port(settings: &BTreeMap<String, String>) -> u16 {
    settings
        .get("http_port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(80)
}

pub fn https_port(settings: &BTreeMap<String, String>) -> u16 {
    settings
        .get("https_port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(443)
}

/// The app through nginx, from inside the container (no trailing slash).
pub fn local_url(settings: &BTreeMap<String, String>) -> String {
    match http_port(settings) {
        80 => "http://127.0.0.1".into(),
        p => format!("http://127.0.0.1:{p}"),
    }
}

/// The app through nginx at `host` (an address), from the Proxmox VE host.
pub fn public_base(host: &str, settings: &BTreeMap<String, String>) -> String {
    match http_port(settings) {
        80 => format!("http://{host}"),
        p => format!("http://{host}:{p}"),
    }
}

pub fn enabled_extras<'a>(
    profile: &'a Profile,
    settings: &BTreeMap<String, String>,
) -> Vec<&'a Component> {
    profile
        .components
        .iter()
        .skip(1)
        .filter(|c| match &c.when {
            None => true,
            Some(k) => settings.get(k.as_str()).map(String::as_str) == Some("true"),
        })
        .collect()
}

/// The port a component listens on in a slot (the green port where the profile gives one).
pub fn slot_port(component: &Component, slot: Slot) -> u16 {
    match (slot, component.green_port) {
        (Slot::Green, Some(g)) => g.get(),
        _ => component.port.get(),
    }
}

/// Writes a component's files and its unit (for `slot`, or the slot-less unit of an extra
/// component); returns the unit's name. Does not start it.
pub fn write_component_files(
    ct: &dyn CtAccess,
    vmid: u32,
    profile: &Profile,
    component: &Component,
    rc: &RenderContext,
    slot: Option<Slot>,
) -> Result<String> {
    for f in &component.files {
        let text = render::file(profile, &f.template, rc)?;
        let mode = u32::from_str_radix(&f.mode, 8).unwrap_or(0o640);
        if let Some(dir) = std::path::Path::new(&f.path).parent() {
            sh(ct, vmid, &format!("mkdir -p {}", dir.display()))?;
        }
        // A file owned by the app user's group is readable by it; root keeps write access.
        ct.write(vmid, &f.path, text.as_bytes(), mode, None)?;
        if let Some(o) = &f.owner {
            run(ct, vmid, &["chgrp", o, &f.path])?;
        }
    }
    let unit_name = Layout::unit_name(profile.name.as_str(), component.name.as_str(), slot);
    let unit = render::unit(profile, component, rc)?;
    ct.write(
        vmid,
        &format!("/etc/systemd/system/{unit_name}"),
        unit.as_bytes(),
        0o644,
        None,
    )?;
    Ok(unit_name)
}

/// The file that marks a release directory complete (written last): a crash midway leaves a
/// directory without it, which the next try replaces.
pub const RELEASE_MARK: &str = ".launch-complete";

/// Whether `version`'s release is complete in the container.
pub fn release_ready(
    ct: &dyn CtAccess,
    vmid: u32,
    profile: &Profile,
    version: &str,
) -> Result<bool> {
    let dir = Layout::release_dir(profile.name.as_str(), version);
    let main = &profile.components[0].install;
    // Releases placed before the mark existed: the binary itself says so.
    let probe = match main {
        InstallMethod::Release { binary, .. } => format!("{dir}/{binary}"),
        _ => format!("{dir}/{RELEASE_MARK}"),
    };
    let flag = if matches!(main, InstallMethod::Release { .. }) {
        "-x"
    } else {
        "-f"
    };
    Ok(ct.exec(vmid, &["test", flag, &probe])?.ok())
}

/// Places `version`'s release in the container's release directory: the downloaded and
/// verified archive (`release`), or the package with its dependencies from PyPI (`pip`, in a
/// venv) or the npm registry (`npm`). Everything happens before any write is held; the
/// running slot is never touched.
pub fn install_release(
    ct: &dyn CtAccess,
    vmid: u32,
    releases: &ReleaseCache,
    profile: &Profile,
    version: &str,
    rep: &Reporter,
) -> Result<()> {
    let rel = profile
        .release(version)
        .with_context(|| format!("release {version} is not in the profile"))?;
    let dir = Layout::release_dir(profile.name.as_str(), version);
    let main = &profile.components[0];
    match &main.install {
        InstallMethod::Release { .. } => install_artifact(ct, vmid, releases, profile, rel, rep),
        method => {
            // A directory left by an interrupted try is replaced, never trusted.
            run(ct, vmid, &["rm", "-rf", &dir])?;
            run(ct, vmid, &["mkdir", "-p", &dir])?;
            install_package(
                ct,
                vmid,
                profile,
                method,
                &dir,
                InstallMethod::package_version(version),
                rep,
            )?;
            run(ct, vmid, &["touch", &format!("{dir}/{RELEASE_MARK}")])?;
            rep.info(format!("{} {version} installed in {dir}", main.name));
            Ok(())
        }
    }
}

/// Installs a pip or npm package at `version` into `dir` (pip: `dir/venv`; npm:
/// `dir/node_modules`). Names and versions reach pip and npm as arguments, never shell text.
pub fn install_package(
    ct: &dyn CtAccess,
    vmid: u32,
    profile: &Profile,
    method: &InstallMethod,
    dir: &str,
    version: &str,
    rep: &Reporter,
) -> Result<()> {
    if !crate::profile::check_package_version(version) {
        bail!("`{version}` is not a package version");
    }
    match method {
        InstallMethod::Release { .. } => bail!("a release is not a package"),
        InstallMethod::Pip { package, .. } => {
            let venv = if dir.ends_with("-venv") {
                dir.to_string()
            } else {
                format!("{dir}/venv")
            };
            let spec = format!("{package}=={version}");
            rep.info(format!("pip install {spec} into {venv}"));
            run(ct, vmid, &["python3", "-m", "venv", &venv])?;
            run(
                ct,
                vmid,
                &[
                    &format!("{venv}/bin/pip"),
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "--no-cache-dir",
                    &spec,
                ],
            )?;
        }
        InstallMethod::Npm {
            package, lockfile, ..
        } => {
            let spec = format!("{package}@{version}");
            let npm = |args: &[&str]| -> Result<()> {
                let mut argv = vec![
                    "env",
                    "npm_config_update_notifier=false",
                    "npm_config_fund=false",
                    "npm_config_audit=false",
                    "npm",
                ];
                argv.extend_from_slice(args);
                run(ct, vmid, &argv).map(|_| ())
            };
            match lockfile {
                Some(l) => {
                    // The tree the profile pinned: its package-lock.json, installed by `npm ci`.
                    let name = l.replace("{version}", version);
                    let lock = profile
                        .assets
                        .text(&name)
                        .map_err(|e| anyhow::anyhow!("lockfile `{name}`: {e}"))?;
                    let manifest = serde_json::json!({
                        "name": "launch-release",
                        "private": true,
                        "dependencies": { package.as_str(): version },
                    });
                    ct.write(
                        vmid,
                        &format!("{dir}/package.json"),
                        manifest.to_string().as_bytes(),
                        0o644,
                        None,
                    )?;
                    ct.write(
                        vmid,
                        &format!("{dir}/package-lock.json"),
                        lock.as_bytes(),
                        0o644,
                        None,
                    )?;
                    rep.info(format!("npm ci ({spec}, the profile's lockfile) in {dir}"));
                    npm(&[
                        "ci",
                        "--prefix",
                        dir,
                        "--omit=dev",
                        "--no-audit",
                        "--no-fund",
                    ])?;
                }
                None => {
                    rep.info(format!("npm install {spec} in {dir}"));
                    npm(&[
                        "install",
                        "--prefix",
                        dir,
                        "--omit=dev",
                        "--no-audit",
                        "--no-fund",
                        "--save-exact",
                        &spec,
                    ])?;
                }
            }
        }
    }
    Ok(())
}

/// Downloads (or takes from the cache) and verifies a release's archive, then places its
/// binary in the container's release directory.
fn install_artifact(
    ct: &dyn CtAccess,
    vmid: u32,
    releases: &ReleaseCache,
    profile: &Profile,
    rel: &crate::profile::Release,
    rep: &Reporter,
) -> Result<()> {
    let version = rel.version.as_str();
    let arch = crate::release::host_arch()?;
    let artifact = rel.artifacts.get(arch).with_context(|| {
        format!(
            "{} {version} has no build for {arch}\n  help: choose another version (`launch-tui profiles show {}`)",
            profile.title, profile.name
        )
    })?;
    let mut last = 0u64;
    let archive = releases.fetch(
        profile.name.as_str(),
        version,
        artifact,
        &mut |done, total| {
            if done - last >= 8 << 20 || Some(done) == total {
                last = done;
                rep.progress(done, total, Some(format!("{} MiB", done >> 20)));
            }
        },
    )?;
    rep.info(format!("verified sha256 {}", artifact.sha256.as_str()));
    let InstallMethod::Release {
        binary,
        strip_components,
    } = &profile.components[0].install
    else {
        bail!("the profile's first component must be installed from its release");
    };
    let staging = tempfile::tempdir()?;
    let dir = Layout::release_dir(profile.name.as_str(), version);
    if let Some(strip) = strip_components {
        // A whole tree: checked and repacked on the host, unpacked beside the final name
        // and renamed, so a crash never leaves half a tree that looks installed.
        let tree = releases.repack_tree(&archive, artifact, *strip, binary, staging.path())?;
        let pushed = format!("/tmp/.launch-release-{version}.tar");
        ct.push(vmid, &tree.tar, &pushed, 0o600, None)?;
        sh(
            ct,
            vmid,
            &format!(
                "rm -rf {dir}.new && mkdir -p {dir}.new && tar -xf {pushed} -C {dir}.new && rm -f {pushed} && rm -rf {dir} && mv {dir}.new {dir}"
            ),
        )?;
        rep.info(format!(
            "{} files ({} MiB) of {} {version} installed in {dir}",
            tree.files,
            tree.bytes >> 20,
            profile.title
        ));
        return Ok(());
    }
    let bin = releases.unpack_binary(&archive, artifact, staging.path(), binary)?;
    // Pushed under a temporary name and renamed, so a crash never leaves half a binary that
    // looks installed.
    sh(ct, vmid, &format!("mkdir -p {dir}"))?;
    ct.push(vmid, &bin, &format!("{dir}/.{binary}.new"), 0o755, None)?;
    sh(
        ct,
        vmid,
        &format!("mv -f {dir}/.{binary}.new {dir}/{binary}"),
    )?;
    rep.info(format!("{binary} {version} installed in {dir}"));
    Ok(())
}

/// The HTTP status `url` answers inside the container (5 s timeout), as curl prints it:
/// `000` when nothing answers.
pub fn http_status(ct: &dyn CtAccess, vmid: u32, url: &str) -> Result<String> {
    let out = ct.exec(
        vmid,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "5",
            "-w",
            "%{http_code}",
            url,
        ],
    )?;
    Ok(out.stdout.trim().to_string())
}

/// Polls `url` inside the container (every `interval`, each try with its own 5 s timeout)
/// until it answers `expect`, for up to `deadline`. Gives up at once when the unit keeps
/// failing (restarting), with its journal's last lines.
pub fn wait_healthy(
    ct: &dyn CtAccess,
    vmid: u32,
    unit: &str,
    url: &str,
    expect: u16,
    interval: Duration,
    deadline: Duration,
) -> Result<()> {
    let end = Instant::now() + deadline;
    loop {
        let last = http_status(ct, vmid, url)?;
        if last == expect.to_string() {
            return Ok(());
        }
        let restarts = ct
            .exec(
                vmid,
                &["systemctl", "show", "-p", "NRestarts", "--value", unit],
            )?
            .stdout
            .trim()
            .parse::<u32>()
            .unwrap_or(0);
        if restarts >= 2 || Instant::now() >= end {
            let journal = ct
                .exec(
                    vmid,
                    &[
                        "journalctl",
                        "-u",
                        unit,
                        "-n",
                        "5",
                        "--no-pager",
                        "-o",
                        "cat",
                    ],
                )
                .map(|o| o.stdout.trim().to_string())
                .unwrap_or_default();
            bail!(
                "{unit} did not become healthy: {url} {} (last answer: {}){}\n  help: see `pct exec {vmid} -- journalctl -u {unit}`",
                if restarts >= 2 {
                    format!("kept failing ({restarts} restarts)")
                } else {
                    format!("did not answer {expect} within {} s", deadline.as_secs())
                },
                if last.is_empty() || last == "000" {
                    "no connection".into()
                } else {
                    last
                },
                if journal.is_empty() {
                    String::new()
                } else {
                    format!("\n  its journal ends with:\n    {}", journal.replace('\n', "\n    "))
                }
            );
        }
        std::thread::sleep(interval);
    }
}

/// Reads the version the app reports at its version probe, inside the container.
pub fn running_version(
    ct: &dyn CtAccess,
    vmid: u32,
    component: &Component,
    port: u16,
) -> Result<Option<String>> {
    let Some(v) = &component.health.version else {
        return Ok(None);
    };
    let (headers, body) = probe_in_ct(ct, vmid, &format!("http://127.0.0.1:{port}{}", v.path))?;
    // A profile that names a probe promised a version: an answer without one is an error.
    v.extract(&headers, &body)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e} ({})", v.describe()))
}

/// GETs `url` inside the container; its header lines and body.
pub fn probe_in_ct(ct: &dyn CtAccess, vmid: u32, url: &str) -> Result<(String, String)> {
    let out = ct.exec(vmid, &["curl", "-fsS", "-i", "-m", "5", url])?;
    if !out.ok() {
        bail!(
            "the app's version probe {url} did not answer: {}",
            out.tail(2)
        );
    }
    let text = out.stdout.replace("\r\n", "\n");
    Ok(match text.split_once("\n\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text, String::new()),
    })
}

/// Creates the app's database and its user on a local PostgreSQL or MariaDB in the container
/// (installed and started first if needed). The password travels in a private file, never on
/// a command line. Returns the app's database settings.
pub fn create_local_database(
    ct: &dyn CtAccess,
    vmid: u32,
    kind: crate::profile::DatabaseKind,
    profile: &str,
    password: &str,
) -> Result<DbContext> {
    crate::database::adapter(kind).create_local(ct, vmid, profile, password)
}

/// Runs the app's own command (`migrate`, `dump` ...) as its user with the slot unit's
/// environment and working directory, so it sees the same config and data as the service.
pub fn run_app_command(
    ct: &dyn CtAccess,
    vmid: u32,
    unit: &str,
    user: &str,
    binary: &str,
    args: &[String],
    input: Option<&str>,
) -> Result<crate::ct::ExecOutput> {
    let show = crate::ct::run(
        ct,
        vmid,
        &[
            "systemctl",
            "show",
            "-p",
            "Environment",
            "-p",
            "WorkingDirectory",
            unit,
        ],
    )?;
    let mut env = Vec::new();
    let mut dir = "/".to_string();
    for line in show.stdout.lines() {
        if let Some(v) = line.strip_prefix("Environment=") {
            env.extend(v.split_whitespace().map(str::to_string));
        } else if let Some(v) = line.strip_prefix("WorkingDirectory=") {
            dir = v.trim().to_string();
        }
    }
    const INPUT: &str = "/run/launch-app-input";
    // The command's arguments pass through `sh` as "$@": no quoting to get wrong.
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        format!(
            "exec \"$@\" < {}",
            if input.is_some() { INPUT } else { "/dev/null" }
        ),
        "sh".into(),
        "/usr/sbin/runuser".into(),
        "-u".into(),
        user.into(),
        "--".into(),
        "/usr/bin/env".into(),
        "-C".into(),
        dir,
    ];
    argv.extend(env);
    argv.push(binary.to_string());
    argv.extend(args.iter().cloned());
    if let Some(text) = input {
        ct.write(
            vmid,
            INPUT,
            format!("{text}\n").as_bytes(),
            0o600,
            Some(user),
        )?;
    }
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = crate::ct::run(ct, vmid, &refs);
    let _ = ct.exec(vmid, &["rm", "-f", INPUT]);
    out
}
