//! `profiles lint`: everything a profile can get wrong, found before any container exists.
//! Past the schema and the cross-field checks that loading runs, lint renders every template
//! with sample answers (strict: an undefined value is an error) in every variant the profile
//! allows (each database, with and without TLS, every optional component on), then gives the
//! rendered site to the real `nginx -t` and the rendered units to `systemd-analyze verify`.
//! Each problem names its file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{DatabaseKind, FileDef, LoadedProfile, Profile, QuestionKind, RESERVED_PREFIX};
use crate::deploy::AppSettings;
use crate::error::FileProblem;
use crate::instance::Slot;
use crate::render::{self, DbContext, Layout, RenderError};

/// What one lint run found; `not_checked` says which external checks could not run here.
#[derive(Debug, Default)]
pub struct LintReport {
    pub problems: Vec<FileProblem>,
    pub not_checked: Vec<String>,
    /// How many renderings were checked (variants × files).
    pub rendered: usize,
}

/// A sample answer of each kind, as a user would give it.
fn sample_answer(kind: QuestionKind, q: &super::QuestionDef) -> String {
    if let Some(d) = &q.default {
        return d.clone();
    }
    match kind {
        QuestionKind::Url => "https://app.example.org".into(),
        QuestionKind::Email => "admin@example.org".into(),
        QuestionKind::Bool => "true".into(),
        QuestionKind::Integer => q.min.unwrap_or(1).max(1).to_string(),
        QuestionKind::Timezone => "Etc/UTC".into(),
        QuestionKind::Choice => q.choices.first().cloned().unwrap_or_default(),
        QuestionKind::Text => "sample".into(),
        QuestionKind::Username => "admin".into(),
    }
}

fn sample_settings(profile: &Profile) -> BTreeMap<String, String> {
    let mut s: BTreeMap<String, String> = profile
        .questions
        .iter()
        .map(|q| (q.key.to_string(), sample_answer(q.kind, q)))
        .collect();
    // Optional components on, so their files are rendered too.
    for c in &profile.components {
        if let Some(w) = &c.when {
            s.insert(w.to_string(), "true".into());
        }
    }
    s
}

fn sample_secrets(profile: &Profile) -> BTreeMap<String, String> {
    let mut s: BTreeMap<String, String> = profile
        .secrets
        .iter()
        .map(|d| {
            (
                d.key.to_string(),
                "0".repeat(d.length.clamp(1, 64) as usize),
            )
        })
        .collect();
    if let Some(b) = &profile.bootstrap {
        for o in &b.outputs {
            s.insert(o.to_string(), "sample-output".into());
        }
    }
    s.insert("db_password".into(), "sample-password".into());
    s
}

fn sample_db(profile: &Profile, kind: DatabaseKind) -> DbContext {
    crate::database::adapter(kind).sample(profile.name.as_str())
}

/// `(in NAME:LINE)` in minijinja's message: the line of the template that failed.
fn line_of(e: &RenderError) -> Option<usize> {
    let i = e.detail.find("(in ")?;
    let rest = &e.detail[i + 4..];
    let end = rest.find(')')?;
    rest[..end].rsplit(':').next()?.parse().ok()
}

fn render_problem(e: &RenderError, variant: &str) -> FileProblem {
    let first = e.detail.lines().next().unwrap_or_default().to_string();
    FileProblem {
        file: PathBuf::from(&e.template),
        line: line_of(e),
        column: None,
        field: None,
        message: format!("does not render ({variant}): {first}"),
        help: Some(
            "every value a template prints must exist for every answer; guard optional ones with {% if x is defined %}".into(),
        ),
    }
}

/// Lints a loaded profile. `check_tools` runs nginx and systemd-analyze when they exist.
pub fn lint(loaded: &LoadedProfile, check_tools: bool) -> LintReport {
    let profile = &loaded.profile;
    let mut report = LintReport::default();
    for f in profile.assets.files() {
        if f.starts_with(RESERVED_PREFIX) {
            report.problems.push(FileProblem {
                file: profile.assets.shown_path(&f),
                line: None,
                column: None,
                field: None,
                message: format!(
                    "`{RESERVED_PREFIX}` is launch-tui's own: its fragments are found there"
                ),
                help: Some("move the file out of the launch/ directory".into()),
            });
        }
    }
    let mut settings = sample_settings(profile);
    // Where a database kind can give each slot its own database, the sample does.
    settings.insert(crate::database::SLOT_DBS.into(), "separate".into());
    let secrets = sample_secrets(profile);
    let mut seen = std::collections::BTreeSet::new();
    let mut site_sample = None;
    let mut unit_samples = Vec::new();
    for kind in &profile.databases.supported {
        for tls in [false, true] {
            let variant = format!(
                "database {}, {}",
                kind.label(),
                if tls { "TLS" } else { "HTTP" }
            );
            let a = AppSettings {
                profile,
                name: profile.name.as_str(),
                settings: &settings,
                secrets: &secrets,
                db: sample_db(profile, *kind),
                tls,
            };
            let version = profile
                .versions
                .last()
                .map(|r| r.version.clone())
                .unwrap_or_default();
            let main = a.main_component();
            let mut push = |r: Result<String, RenderError>, report: &mut LintReport| match r {
                Ok(text) => {
                    report.rendered += 1;
                    Some(text)
                }
                Err(e) => {
                    // One problem per template and message, not one per variant.
                    if seen.insert((e.template.clone(), line_of(&e))) {
                        report.problems.push(render_problem(&e, &variant));
                    }
                    None
                }
            };
            for comp in std::iter::once(main).chain(a.extra_components()) {
                let rc = a.render_context(comp, Slot::Blue, &version);
                if let Some(u) = push(render::unit(profile, comp, &rc), &mut report) {
                    if !tls && kind == &profile.databases.supported[0] {
                        unit_samples.push((comp.name.to_string(), u, rc.clone()));
                    }
                }
                for f in &comp.files {
                    push(render::file(profile, &f.template, &rc), &mut report);
                }
            }
            let rc = a.render_context(main, Slot::Blue, &version);
            if let Some(site) = push(render::nginx_site(profile, &rc), &mut report) {
                // The HTTP variant: the TLS lines are the engine's own fragment, and checking
                // them would need a certificate made here.
                if !tls {
                    site_sample = Some(site);
                }
            }
            if let Some(b) = &profile.bootstrap {
                push(render::file(profile, &b.script, &rc), &mut report);
            }
            // A file both slots read must not name a slot's own database: the update writes
            // it for the new slot while the old one still serves (and may be restarted).
            // (A slot's port and data directory may appear in one: its unit sets them over
            // the file.)
            let blue = a.render_context(main, Slot::Blue, &version);
            let mut green = blue.clone();
            green.db = a.render_context(main, Slot::Green, &version).db;
            for (j, f) in main.files.iter().enumerate() {
                if f.per_slot() || f.seed {
                    continue;
                }
                if let (Ok(b), Ok(g)) = (
                    render::file(profile, &f.template, &blue),
                    render::file(profile, &f.template, &green),
                ) {
                    if b != g && seen.insert((f.template.clone(), None)) {
                        report.problems.push(FileProblem {
                            file: profile.assets.shown_path(&f.template),
                            line: None,
                            column: None,
                            field: Some(format!("components[0].files[{j}].path")),
                            message: format!(
                                "names the slot's own database ({variant}: each slot has one, `NAME` and `NAME_green`), but both slots read the one file {}",
                                f.path
                            ),
                            help: Some(format!(
                                "make it a file per slot: a path with `{}` (e.g. /etc/{}/db-{}.env), which the slot's unit reads",
                                FileDef::SLOT, profile.name, FileDef::SLOT
                            )),
                        });
                    }
                }
            }
        }
    }
    if check_tools && report.problems.is_empty() {
        if let Some(site) = &site_sample {
            match nginx_test(profile, site) {
                Ok(()) => {}
                Err(Check::NotHere(why)) => report.not_checked.push(why),
                Err(Check::Failed(msg)) => report.problems.push(FileProblem {
                    file: profile.assets.shown_path(&profile.nginx.site),
                    line: None,
                    column: None,
                    field: None,
                    message: format!("nginx -t refuses the rendered site: {msg}"),
                    help: Some("fix the site template (the message quotes nginx)".into()),
                }),
            }
        }
        for (name, text, _) in &unit_samples {
            let comp = profile
                .components
                .iter()
                .find(|c| c.name.as_str() == name)
                .expect("a rendered component");
            match verify_unit(profile, name, text) {
                Ok(()) => {}
                Err(Check::NotHere(why)) => {
                    if !report.not_checked.contains(&why) {
                        report.not_checked.push(why)
                    }
                }
                Err(Check::Failed(msg)) => report.problems.push(FileProblem {
                    file: profile.assets.shown_path(&comp.unit),
                    line: None,
                    column: None,
                    field: None,
                    message: format!("systemd-analyze verify refuses the rendered unit: {msg}"),
                    help: Some("fix the unit template (the message quotes systemd)".into()),
                }),
            }
        }
    }
    report
}

enum Check {
    NotHere(String),
    Failed(String),
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.exists())
}

/// The modules the site needs, loaded as Debian's modules-enabled does.
const LUA_MODULES: [&str; 2] = [
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
];

/// `nginx -t` of the site in a throwaway prefix, with the upstream include it names written
/// beside it.
fn nginx_test(profile: &Profile, site: &str) -> Result<(), Check> {
    let nginx = which("nginx").ok_or_else(|| {
        Check::NotHere(
            "nginx -t (nginx is not installed here: apt-get install nginx-light libnginx-mod-http-lua)"
                .into(),
        )
    })?;
    if LUA_MODULES.iter().any(|m| !Path::new(m).exists()) {
        return Err(Check::NotHere(
            "nginx -t (nginx's Lua module is not installed here: apt-get install libnginx-mod-http-lua)"
                .into(),
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| Check::NotHere(format!("nginx -t ({e})")))?;
    let d = dir.path();
    let p = profile.name.as_str();
    let mut site = site.to_string();
    let upstream = d.join("upstream.conf");
    let _ = std::fs::write(
        &upstream,
        render::nginx_upstream(&Layout::upstream_name(p), 3000),
    );
    site = site.replace(
        &Layout::upstream_include(p),
        &upstream.display().to_string(),
    );
    let _ = std::fs::write(d.join("site.conf"), &site);
    let main = format!(
        "{mods}pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  include {d}/site.conf;\n}}\n",
        mods = LUA_MODULES
            .iter()
            .map(|m| format!("load_module {m};\n"))
            .collect::<String>(),
        d = d.display()
    );
    let _ = std::fs::write(d.join("nginx.conf"), main);
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .output()
        .map_err(|e| Check::NotHere(format!("nginx -t ({e})")))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let text = text.replace(&d.display().to_string(), "…");
        Err(Check::Failed(text.trim().to_string()))
    }
}

/// `systemd-analyze verify` of one rendered unit. The executables and files it names live in
/// the container, not here: the check is of the unit's syntax and settings, so those paths are
/// stood in for by harmless files of the same names in a throwaway directory.
fn verify_unit(profile: &Profile, component: &str, text: &str) -> Result<(), Check> {
    if which("systemd-analyze").is_none() {
        return Err(Check::NotHere(
            "systemd-analyze verify (systemd-analyze is not installed here)".into(),
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| Check::NotHere(format!("systemd-analyze ({e})")))?;
    let d = dir.path();
    let mut unit = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        // ExecStart=/opt/app/... → a stand-in executable under the throwaway root.
        for key in [
            "ExecStart=",
            "ExecStartPre=",
            "ExecStartPost=",
            "ExecStop=",
            "ExecReload=",
        ] {
            if let Some(cmd) = line.strip_prefix(key) {
                let cmd = cmd.trim_start_matches(['-', '@', ':', '+', '!']);
                if let Some(exe) = cmd.split_whitespace().next().filter(|e| e.starts_with('/')) {
                    let stand_in = d.join(exe.trim_start_matches('/'));
                    if let Some(parent) = stand_in.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    if !Path::new(exe).exists() {
                        let _ = std::fs::copy("/bin/true", &stand_in);
                        l = l.replacen(exe, &stand_in.display().to_string(), 1);
                    }
                }
            }
        }
        for key in ["EnvironmentFile=", "WorkingDirectory="] {
            if let Some(path) = line.strip_prefix(key) {
                let path = path.trim_start_matches('-');
                if path.starts_with('/') && !Path::new(path).exists() {
                    let stand_in = d.join(path.trim_start_matches('/'));
                    if key == "WorkingDirectory=" {
                        let _ = std::fs::create_dir_all(&stand_in);
                    } else {
                        if let Some(parent) = stand_in.parent() {
                            let _ = std::fs::create_dir_all(parent);
                        }
                        let _ = std::fs::write(&stand_in, "");
                    }
                    l = format!("{key}{}", stand_in.display());
                }
            }
        }
        // The app's user exists only in the container.
        if line.starts_with("User=") || line.starts_with("Group=") {
            l = format!("{}root", &line[..line.find('=').unwrap_or(0) + 1]);
        }
        unit.push_str(&l);
        unit.push('\n');
    }
    let path = d.join(Layout::unit_name(profile.name.as_str(), component, None));
    let _ = std::fs::write(&path, unit);
    match crate::status::health::verify_units(&[path]) {
        Ok(()) => Ok(()),
        Err(e) => Err(Check::Failed(
            e.to_string().replace(&d.display().to_string(), "…"),
        )),
    }
}
