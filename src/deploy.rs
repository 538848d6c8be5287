//! Placing an app version into a slot of an existing container: the render context of a
//! component, its files and unit, its release binary, and waiting for it to answer. Shared by
//! install, update, rollback, reconfigure and restore, so they all write the same files.

use std::collections::BTreeMap;
use std::time::Instant;

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
    /// The blue slot's database; [`Self::render_context`] gives each slot its own.
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
            db: DbContext::base(inst),
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
            db: crate::database::in_slot(&self.db, self.settings, slot),
            services: crate::service::contexts(self.profile, self.settings, self.secrets),
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
                // One only the app reaches is not served.
                .filter(|c| !c.location.is_empty())
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
        let path = f.path_in(slot);
        if f.seed && ct.exec(vmid, &["test", "-e", &path])?.ok() {
            // The admin's file now: never replaced.
            continue;
        }
        let mode = u32::from_str_radix(&f.mode, 8).unwrap_or(0o640);
        if let Some(dir) = std::path::Path::new(&path).parent() {
            sh(ct, vmid, &format!("mkdir -p {}", dir.display()))?;
        }
        // A file owned by the app user's group is readable by it; root keeps write access.
        ct.write(vmid, &path, text.as_bytes(), mode, None)?;
        if let Some(o) = &f.owner {
            run(ct, vmid, &["chgrp", o, &path])?;
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
        InstallMethod::Source { .. } => install_source(ct, vmid, releases, profile, rel, rep),
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
        InstallMethod::Release { .. } | InstallMethod::Source { .. } => {
            bail!("a release is not a package")
        }
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
/// The archive a release of the profile's first component installs from, fetched on the host
/// into the release cache and checked against its pinned sha256 (`release`: the build for this
/// host's architecture; `source`: the source archive). None for the kinds that install from a
/// registry inside the container (pip, npm). Install calls it before any container exists, so
/// a wrong sum or an unreachable URL changes nothing; the later step finds the file cached and
/// checks its sum again.
pub fn fetch_release(
    releases: &ReleaseCache,
    profile: &Profile,
    rel: &crate::profile::Release,
    rep: &Reporter,
) -> Result<Option<(crate::profile::Artifact, std::path::PathBuf)>> {
    let version = rel.version.as_str();
    let (artifact, what) = match &profile.components[0].install {
        InstallMethod::Release { .. } => {
            let arch = crate::release::host_arch()?;
            let artifact = rel.artifacts.get(arch).with_context(|| {
                format!(
                    "{} {version} has no build for {arch}\n  help: choose another version (`launch-tui profiles show {}`)",
                    profile.title, profile.name
                )
            })?;
            (artifact.clone(), "")
        }
        InstallMethod::Source { .. } => {
            let source = rel.source.as_ref().with_context(|| {
                format!(
                    "{} {version} has no source archive in the profile\n  help: add `source: {{url, sha256}}` to this version",
                    profile.title
                )
            })?;
            (source.artifact(), " of the source")
        }
        _ => return Ok(None),
    };
    let mut last = 0u64;
    let archive = releases.fetch(
        profile.name.as_str(),
        version,
        &artifact,
        &mut |done, total| {
            if done - last >= 8 << 20 || Some(done) == total {
                last = done;
                rep.progress(done, total, Some(format!("{} MiB", done >> 20)));
            }
        },
    )?;
    rep.info(format!(
        "verified sha256 {}{what}",
        artifact.sha256.as_str()
    ));
    Ok(Some((artifact, archive)))
}

/// Checks a whole-tree release or a source archive entry by entry on the host, as the release
/// step does again when it unpacks it: a hostile archive (an entry climbing out with `..`, an
/// absolute link) is refused before any container exists.
pub fn check_tree(
    releases: &ReleaseCache,
    profile: &Profile,
    artifact: &crate::profile::Artifact,
    archive: &std::path::Path,
    rep: &Reporter,
) -> Result<()> {
    let (strip, binary) = match &profile.components[0].install {
        InstallMethod::Release {
            binary,
            strip_components: Some(strip),
        } => (*strip, Some(binary.as_str())),
        InstallMethod::Source {
            strip_components, ..
        } => (*strip_components, None),
        _ => return Ok(()),
    };
    let staging = tempfile::tempdir()?;
    let tree = releases.repack_tree(archive, artifact, strip, binary, staging.path())?;
    rep.info(format!(
        "{} files ({} MiB): every entry stays inside the release directory",
        tree.files,
        tree.bytes >> 20
    ));
    Ok(())
}

fn install_artifact(
    ct: &dyn CtAccess,
    vmid: u32,
    releases: &ReleaseCache,
    profile: &Profile,
    rel: &crate::profile::Release,
    rep: &Reporter,
) -> Result<()> {
    let version = rel.version.as_str();
    let Some((artifact, archive)) = fetch_release(releases, profile, rel, rep)? else {
        bail!("the profile's first component must be installed from its release");
    };
    let artifact = &artifact;
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
        let tree =
            releases.repack_tree(&archive, artifact, *strip, Some(binary), staging.path())?;
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

/// The environment of a source build: nothing from launch-tui's own, nothing from an answer.
const BUILD_PATH: &str = "PATH=/usr/local/bin:/usr/bin:/bin";

/// The main component's source release, built in its release directory (see
/// [`build_source`]).
fn install_source(
    ct: &dyn CtAccess,
    vmid: u32,
    releases: &ReleaseCache,
    profile: &Profile,
    rel: &crate::profile::Release,
    rep: &Reporter,
) -> Result<()> {
    let version = rel.version.as_str();
    let Some((artifact, archive)) = fetch_release(releases, profile, rel, rep)? else {
        bail!("the profile's first component is not built from source");
    };
    let dir = Layout::release_dir(profile.name.as_str(), version);
    build_source(
        ct,
        vmid,
        releases,
        profile,
        &profile.components[0],
        version,
        (&artifact, &archive),
        &dir,
        rep,
    )
}

/// An extra component built from its own pinned source (`install.source`, `install.version`)
/// in its own directory (`/opt/PROFILE/NAME-venv`), as the main component's is: fetched and
/// checked on the host through the release cache, then built in the container.
pub fn install_extra_source(
    ct: &dyn CtAccess,
    vmid: u32,
    releases: &ReleaseCache,
    profile: &Profile,
    comp: &Component,
    rep: &Reporter,
) -> Result<String> {
    let InstallMethod::Source {
        version: Some(version),
        source: Some(source),
        ..
    } = &comp.install
    else {
        bail!("{} is not built from a source of its own", comp.name);
    };
    let artifact = source.artifact();
    let archive = releases.fetch(
        profile.name.as_str(),
        &format!("{}-{version}", comp.name),
        &artifact,
        &mut |_, _| {},
    )?;
    let dir = Layout::venv(profile.name.as_str(), comp.name.as_str());
    build_source(
        ct,
        vmid,
        releases,
        profile,
        comp,
        version,
        (&artifact, &archive),
        &dir,
        rep,
    )?;
    Ok(dir)
}

/// A source archive (checked already by the release cache) is repacked on the host as a
/// checked tree (no `..`, absolute paths, links leaving the tree, hard links or devices),
/// unpacked in `dir` and built in place (builds record their own paths) by the component's
/// `build` commands, one by one, as the component's user, with `HOME` inside the tree. The
/// mark that makes the tree ready is written only after every command succeeded and the entry
/// exists; a failed build removes the directory.
#[allow(clippy::too_many_arguments)]
fn build_source(
    ct: &dyn CtAccess,
    vmid: u32,
    releases: &ReleaseCache,
    profile: &Profile,
    comp: &Component,
    version: &str,
    (artifact, archive): (&crate::profile::Artifact, &std::path::Path),
    dir: &str,
    rep: &Reporter,
) -> Result<()> {
    let InstallMethod::Source {
        entry,
        strip_components,
        build,
        build_disk_mib,
        ..
    } = &comp.install
    else {
        bail!("{} is not built from source", comp.name);
    };
    let staging = tempfile::tempdir()?;
    let tree = releases.repack_tree(archive, artifact, *strip_components, None, staging.path())?;
    let dir = dir.to_string();
    let user = comp.user.as_str();
    let title = if comp.name == profile.components[0].name {
        profile.title.to_string()
    } else {
        format!("{} ({})", comp.name, profile.title)
    };
    let free = build_disk(ct, vmid, profile, version, build_disk_mib.unwrap_or(0))?;
    rep.info(free);
    let pushed = format!("/tmp/.launch-source-{}-{version}.tar", comp.name);
    ct.push(vmid, &tree.tar, &pushed, 0o600, None)?;
    // A directory left by an interrupted try is replaced, never trusted. The component's user
    // owns the tree while it builds; it never owns the running slot's.
    sh(
        ct,
        vmid,
        &format!(
            "rm -rf {dir} && mkdir -p {dir} && tar -xf {pushed} -C {dir} && rm -f {pushed} && mkdir -p {dir}/.home && chown -R {user}:{user} {dir}"
        ),
    )?;
    rep.info(format!(
        "{} files ({} MiB) of the {title} {version} source unpacked in {dir}",
        tree.files,
        tree.bytes >> 20,
    ));
    let failed = |message: String| -> anyhow::Error {
        // Nothing of a failed build may look installed, nor fill the disk.
        let _ = ct.exec(vmid, &["rm", "-rf", &dir]);
        anyhow::anyhow!(message)
    };
    let home = format!("HOME={dir}/.home");
    for (n, command) in build.iter().enumerate() {
        let mut argv: Vec<String> = [
            "/usr/sbin/runuser",
            "-u",
            user,
            "--",
            "/usr/bin/env",
            "-i",
            "-C",
            &dir,
            &home,
            BUILD_PATH,
            "LANG=C.UTF-8",
        ]
        .map(str::to_string)
        .to_vec();
        // Profile text only, as arguments: no answer or secret is in it, nothing is quoted.
        argv.extend(command.argv());
        let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = ct.exec(vmid, &refs);
        let step = format!("build command {} of {}", n + 1, build.len());
        match out {
            Ok(o) if o.ok() => rep.info(format!(
                "{step} `{}` done in {:.1} s",
                command.shown(),
                started.elapsed().as_secs_f64()
            )),
            Ok(o) => {
                return Err(failed(format!(
                    "the build of {} {version} failed: {step} `{}` exited {} after {:.1} s; its output ends with:\n    {}\n  help: it ran in {dir} as {user} with HOME={dir}/.home; fix the profile's `build:` (or what the build needs: packages, runtimes, network). The release was removed; nothing else changed",
                    title,
                    command.shown(),
                    o.code,
                    started.elapsed().as_secs_f64(),
                    crate::escape::terminal_safe(&o.tail(15)).replace('\n', "\n    ")
                )))
            }
            Err(e) => {
                return Err(failed(format!(
                    "the build of {} {version} failed: {step} `{}` could not run: {e:#}",
                    title,
                    command.shown()
                )))
            }
        }
    }
    let exe = format!("{dir}/{entry}");
    if !ct.exec(vmid, &["test", "-f", &exe, "-a", "-x", &exe])?.ok() {
        return Err(failed(format!(
            "the build of {} {version} left no executable {exe}\n  help: `entry:` names the file the unit runs, relative to the release directory; the build must make it (and make it executable)",
            title
        )));
    }
    run(ct, vmid, &["touch", &format!("{dir}/{RELEASE_MARK}")])?;
    rep.info(format!("{title} {version} built in {dir}"));
    Ok(())
}

/// Enough free disk for a build (`build_disk_mib`), checked before anything is unpacked.
fn build_disk(
    ct: &dyn CtAccess,
    vmid: u32,
    profile: &Profile,
    version: &str,
    need_mib: u64,
) -> Result<String> {
    let root = format!("/opt/{}/releases", profile.name);
    let out = sh(
        ct,
        vmid,
        &format!("mkdir -p {root} && df -Pk {root} | tail -1"),
    )?;
    let avail = out
        .stdout
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse::<u64>().ok())
        .with_context(|| {
            format!(
                "cannot read the free space in CT {vmid} (df said `{}`)",
                out.stdout.trim()
            )
        })?
        / 1024;
    if avail < need_mib {
        bail!(
            "CT {vmid} has {avail} MiB free in {root}; building {} {version} needs {need_mib} MiB (the profile's build_disk_mib). Nothing was built.\n  help: free space in the container, or grow its disk: `pct resize {vmid} rootfs +{}G`, then try again",
            profile.title,
            (need_mib - avail).div_ceil(1024).max(1)
        );
    }
    Ok(format!(
        "{avail} MiB free in {root}, the build needs {need_mib} MiB"
    ))
}

// Through nginx, operations ask a URL's status; the probing lives with the health checks.
pub use crate::health::http_status;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A container that records every command and answers from a script: `df` reports
    /// `free_kib`, and a command containing `fail` exits 1 with a compiler's complaint.
    struct FakeCt {
        calls: Mutex<Vec<Vec<String>>>,
        free_kib: u64,
        fail: Option<&'static str>,
    }

    impl CtAccess for FakeCt {
        fn exec(&self, _vmid: u32, argv: &[&str]) -> Result<crate::ct::ExecOutput> {
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            self.calls.lock().unwrap().push(argv.clone());
            let line = argv.join(" ");
            let (code, stdout) = if line.contains("df -Pk") {
                (0, format!("/dev/x 9999999 1 {} 1% /\n", self.free_kib))
            } else if self.fail.is_some_and(|f| line.contains(f)) {
                (
                    1,
                    "compiling app.c\napp.c:3: error: expected ';'\n".to_string(),
                )
            } else {
                (0, String::new())
            };
            Ok(crate::ct::ExecOutput {
                code,
                stdout,
                stderr: String::new(),
            })
        }
        fn write(&self, _: u32, dst: &str, _: &[u8], _: u32, _: Option<&str>) -> Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(vec!["<write>".into(), dst.into()]);
            Ok(())
        }
        fn push(
            &self,
            _: u32,
            _: &std::path::Path,
            dst: &str,
            _: u32,
            _: Option<&str>,
        ) -> Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(vec!["<push>".into(), dst.into()]);
            Ok(())
        }
    }

    /// The test profile with version 1.0.0's source archive made here and already in the
    /// cache (so nothing is downloaded), and an answer that must never reach the build.
    fn setup() -> (Profile, ReleaseCache, tempfile::TempDir) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/profiles/srcdemo");
        let mut profile = crate::profile::load_dir(&dir).unwrap().profile;
        let cache = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        tar.append_data(&mut h, "srcdemo-1.0.0/build.sh", &b"x=1"[..])
            .unwrap();
        let bytes = tar.into_inner().unwrap().finish().unwrap();
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        let file = cache.path().join("srcdemo/1.0.0/srcdemo-1.0.0.tar.gz");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &bytes).unwrap();
        profile.versions[0].source = Some(
            serde_yaml_ng::from_str(&format!(
                "{{ url: 'https://src.example.org/srcdemo-1.0.0.tar.gz', sha256: {sha} }}"
            ))
            .unwrap(),
        );
        (
            profile,
            ReleaseCache::new(cache.path().to_path_buf()),
            cache,
        )
    }

    #[test]
    fn a_build_runs_as_the_app_user_with_a_clean_environment_and_is_marked_last() {
        let (profile, releases, _cache) = setup();
        let ct = FakeCt {
            calls: Mutex::new(Vec::new()),
            free_kib: 10 << 20,
            fail: None,
        };
        install_release(&ct, 100, &releases, &profile, "1.0.0", &Reporter::discard()).unwrap();
        let calls = ct.calls.into_inner().unwrap();
        let dir = "/opt/srcdemo/releases/1.0.0";
        let builds: Vec<&Vec<String>> = calls
            .iter()
            .filter(|c| c.first().map(String::as_str) == Some("/usr/sbin/runuser"))
            .collect();
        assert_eq!(builds.len(), 2, "{calls:?}");
        let head = [
            "/usr/sbin/runuser",
            "-u",
            "srcdemo",
            "--",
            "/usr/bin/env",
            "-i",
            "-C",
            dir,
            "HOME=/opt/srcdemo/releases/1.0.0/.home",
            BUILD_PATH,
            "LANG=C.UTF-8",
        ];
        assert_eq!(builds[0][..head.len()], head.map(String::from));
        // An argv entry stays an argv; a shell line is one argument of `sh -ec`.
        assert_eq!(
            builds[0][head.len()..],
            ["sh", "build.sh"].map(String::from)
        );
        assert_eq!(
            builds[1][head.len()..head.len() + 2],
            ["/bin/sh", "-ec"].map(String::from)
        );
        // Profile text exactly: nothing from answers, secrets or templates is in it.
        assert_eq!(
            builds[1][head.len() + 2],
            "id -un > built-by && printf '%s' \"$HOME\" > build-home"
        );
        let mark = calls
            .iter()
            .position(|c| c.join(" ") == format!("touch {dir}/{RELEASE_MARK}"))
            .expect("the release is marked");
        let last_build = calls
            .iter()
            .rposition(|c| c[0] == "/usr/sbin/runuser")
            .unwrap();
        assert!(mark > last_build, "marked only after the build");
    }

    #[test]
    fn a_failed_build_names_its_command_and_leaves_no_release() {
        let (profile, releases, _cache) = setup();
        let ct = FakeCt {
            calls: Mutex::new(Vec::new()),
            free_kib: 10 << 20,
            fail: Some("build.sh"),
        };
        let err = install_release(&ct, 100, &releases, &profile, "1.0.0", &Reporter::discard())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("build command 1 of 2 `sh build.sh` exited 1"),
            "{err}"
        );
        assert!(err.contains("app.c:3: error: expected ';'"), "{err}");
        let calls = ct.calls.into_inner().unwrap();
        assert!(calls
            .iter()
            .any(|c| c.join(" ") == "rm -rf /opt/srcdemo/releases/1.0.0"));
        assert!(!calls.iter().any(|c| c.join(" ").contains(RELEASE_MARK)));
        // The second command never ran.
        assert_eq!(
            calls.iter().filter(|c| c[0] == "/usr/sbin/runuser").count(),
            1
        );
    }

    #[test]
    fn too_little_free_disk_stops_before_anything_is_unpacked() {
        let (profile, releases, _cache) = setup();
        let ct = FakeCt {
            calls: Mutex::new(Vec::new()),
            free_kib: 10 * 1024,
            fail: None,
        };
        let err = install_release(&ct, 100, &releases, &profile, "1.0.0", &Reporter::discard())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CT 100 has 10 MiB free"), "{err}");
        assert!(err.contains("needs 64 MiB"), "{err}");
        assert!(err.contains("pct resize 100 rootfs +1G"), "{err}");
        let calls = ct.calls.into_inner().unwrap();
        assert!(!calls
            .iter()
            .any(|c| c[0] == "<push>" || c[0] == "/usr/sbin/runuser"));
    }
}
