//! Renderers of the files Launch writes into a container: pure functions from a profile's
//! templates and an instance's settings to the text of a systemd unit, an app config or an
//! nginx site. Undefined template variables are errors, never empty strings.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

use crate::escape::{escape, Syntax};
use crate::instance::Slot;
use crate::profile::{Assets, Component, Profile};

/// Database settings as templates see them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DbContext {
    /// `none`, `sqlite`, `postgres`, `mariadb`, `mongodb`, `external-postgres`, `external-mariadb`, `external-mongodb`.
    pub kind: String,
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: String,
    /// The local database server's unit, ordered before the app's (`postgresql.service`).
    pub local_unit: Option<String>,
    /// A connection string for apps that take one (MongoDB's `mongodb://USER:PASSWORD@HOST:PORT/NAME?authSource=admin`,
    /// user and password percent-encoded); empty for kinds whose apps are given the parts.
    pub url: String,
}

impl DbContext {
    /// A database with no server: files in the data directory (`kind` is the adapter's label).
    pub fn files(kind: &str) -> Self {
        DbContext {
            kind: kind.into(),
            host: String::new(),
            port: 0,
            name: String::new(),
            user: String::new(),
            password: String::new(),
            local_unit: None,
            url: String::new(),
        }
    }

    pub fn sqlite() -> Self {
        crate::database::default_context()
    }

    /// The database of an installed instance, from its record (the same values the install
    /// wrote into the app's config): `settings.database` picks the adapter, which reads the
    /// rest (a local server's database and user are named after the profile; the password is
    /// `secrets.db_password`). A record without a kind is a format-1 SQLite instance.
    /// The database the instance's active slot runs on.
    pub fn for_instance(inst: &crate::instance::Instance) -> Self {
        Self::for_slot(inst, inst.active_slot)
    }

    /// The database `slot` runs on: the one database, or the slot's own when the instance
    /// gives each slot one ([`crate::database::separate_slots`]).
    pub fn for_slot(inst: &crate::instance::Instance, slot: crate::instance::Slot) -> Self {
        crate::database::in_slot(&Self::base(inst), &inst.settings, slot)
    }

    /// The blue slot's database (the only one, unless each slot has its own).
    pub fn base(inst: &crate::instance::Instance) -> Self {
        let adapter = crate::database::of_settings(&inst.settings);
        let password = inst.secrets.get("db_password").cloned().unwrap_or_default();
        adapter.context(&inst.settings, &inst.profile, &password)
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TlsContext {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExtraLocation {
    pub path: String,
    pub port: u16,
}

/// Everything a template may use. Paths are inside the container.
#[derive(Debug, Clone, Serialize)]
pub struct RenderContext {
    pub instance: String,
    pub slot: String,
    pub port: u16,
    pub user: String,
    pub release_dir: String,
    pub data_dir: String,
    pub env_file: String,
    pub venv: String,
    pub drain_s: u32,
    /// The instance's settings, typed by the profile's questions (a `bool` question is a
    /// boolean, an `integer` a number, `old_hosts` a list), so a YAML template writes
    /// `enableregistration: false`, not the string `"false"`.
    pub settings: BTreeMap<String, serde_json::Value>,
    pub secrets: BTreeMap<String, String>,
    pub db: DbContext,
    /// Every service the profile lists, by kind (`services.redis.enabled`, `.host`, `.port`,
    /// `.password`, `.unit`).
    pub services: BTreeMap<String, crate::service::ServiceContext>,
    pub tls: Option<TlsContext>,
    pub server_name: String,
    /// The public URL (the answer to the profile's `roles.public_url` question), "" without one.
    pub public_url: String,
    /// nginx's `client_max_body_size` in MiB (the `roles.upload_limit_mib` answer; 100 without one).
    pub upload_limit_mib: u64,
    pub upstream_include: String,
    pub upstream_name: String,
    /// nginx's public ports (80 and 443 unless reconfigured).
    pub http_port: u16,
    pub https_port: u16,
    /// The write hold's flag file: while it exists, nginx (Lua) holds requests that could write.
    pub hold_flag: String,
    /// How long a held write waits at most before it is answered 503 with `Retry-After`.
    pub hold_max_wait_s: u32,
    /// Methods that pass during the hold (the profile's `update.safe_methods`).
    pub safe_methods: Vec<String>,
    /// The Lua shared dict counting writes in flight (one per site).
    pub lua_dict: String,
    /// Set by [`nginx_site`]: the hash of the site's text, answered in `X-Launch-Config`.
    pub config_id: String,
    pub extra_locations: Vec<ExtraLocation>,
    /// With `tls=acme` and HTTP-01: the directory nginx serves `/.well-known/acme-challenge/`
    /// from, in every rendering of the site, so updates and reconfigures keep renewals working.
    pub acme_webroot: Option<String>,
}

/// Where a profile's component lives in the container. One layout for every profile, so the
/// update, backup and status code needs no per-app knowledge.
pub struct Layout;

impl Layout {
    pub fn app_dir(profile: &str) -> String {
        format!("/opt/{profile}")
    }
    pub fn release_dir(profile: &str, version: &str) -> String {
        format!("/opt/{profile}/releases/{version}")
    }
    pub fn data_dir(profile: &str, slot: Slot) -> String {
        // Blue and green keep their own data directory, so an app that migrates its database
        // on start never touches the other slot's copy.
        format!("/var/lib/{profile}/{}", slot.as_str())
    }
    pub fn venv(profile: &str, component: &str) -> String {
        format!("/opt/{profile}/{component}-venv")
    }
    pub fn unit_name(profile: &str, component: &str, slot: Option<Slot>) -> String {
        match slot {
            Some(s) => format!("{profile}-{component}-{}.service", s.as_str()),
            None => format!("{profile}-{component}.service"),
        }
    }
    pub fn upstream_include(profile: &str) -> String {
        format!("/etc/nginx/launch/{profile}-upstream.conf")
    }
    /// The write hold's flag (present only while an update holds writes). nginx's Lua checks
    /// it per request, so setting or lifting the hold needs no reload.
    pub fn hold_file(profile: &str) -> String {
        format!("/etc/nginx/launch/{profile}.hold")
    }
    /// The write hold of sites written before the Lua hold (an nginx include); an update
    /// removes it when it re-renders such a site.
    pub fn legacy_hold_file(profile: &str) -> String {
        format!("/etc/nginx/launch/{profile}-hold.conf")
    }
    /// The Lua shared dict of a site (counts the writes in flight).
    pub fn lua_dict(profile: &str) -> String {
        format!("launch_{}", profile.replace('-', "_"))
    }
    pub fn upstream_name(profile: &str) -> String {
        format!("{profile}_active")
    }
    pub fn nginx_site(profile: &str) -> String {
        format!("/etc/nginx/sites-available/{profile}.conf")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render template `{template}`: {detail}\n  help: fix the template in the profile's directory or the profile's settings")]
pub struct RenderError {
    pub template: String,
    pub detail: String,
}

fn render(
    assets: &Assets,
    template_name: &str,
    ctx: &RenderContext,
) -> Result<String, RenderError> {
    let source = assets.text(template_name).map_err(|e| RenderError {
        template: assets.shown_path(template_name).display().to_string(),
        detail: e.to_string(),
    })?;
    // Named by where it lives, so an error points at the file to fix.
    let shown = assets.shown_path(template_name).display().to_string();
    render_in(assets, &shown, &source, ctx)
}

/// Renders a template's text; every printed value goes through the escaping filter of the
/// template's syntax ([`Syntax::of`] its name), whatever the template asks (`|safe` and
/// `autoescape` blocks change nothing), so a template cannot write a raw value.
pub fn render_source<S: Serialize>(
    template_name: &str,
    source: &str,
    ctx: &S,
) -> Result<String, RenderError> {
    render_in(&Assets::default(), template_name, source, ctx)
}

/// [`render_source`], with `{% include %}` reading the profile's own files and the engine's
/// fragments (`launch/...`); included text is printed through the same escaping filter.
pub fn render_in<S: Serialize>(
    assets: &Assets,
    template_name: &str,
    source: &str,
    ctx: &S,
) -> Result<String, RenderError> {
    let err = |detail: String| RenderError {
        template: template_name.to_string(),
        detail,
    };
    let syntax = Syntax::of(template_name).ok_or_else(|| {
        err(format!(
            "its file name says no syntax Launch can escape values for; name it after one of: {}",
            Syntax::KNOWN
        ))
    })?;
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_formatter(move |out, _state, value| {
        use minijinja::value::ValueKind;
        let text = match value.kind() {
            ValueKind::Bool => (if value.is_true() { "true" } else { "false" }).to_string(),
            ValueKind::Number => value.to_string(),
            ValueKind::String => {
                let s = value.as_str().unwrap_or_default();
                escape(syntax, s).map_err(|problem| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("a value cannot be written safely into {syntax}: {problem}"),
                    )
                })?
            }
            kind => {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("cannot print a {kind} into {syntax}; print its items one by one"),
                ))
            }
        };
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    let loader_assets = assets.clone();
    env.set_loader(move |name| match loader_assets.text(name) {
        Ok(text) => Ok(Some(text)),
        Err(crate::profile::AssetError::Missing) => Ok(None),
        Err(e) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("template `{name}`: {e}"),
        )),
    });
    env.add_template_owned(template_name.to_string(), source.to_string())
        .map_err(|e| err(format!("{e:#}")))?;
    let tmpl = env
        .get_template(template_name)
        .map_err(|e| err(format!("{e:#}")))?;
    tmpl.render(ctx).map_err(|e| err(format!("{e:#}")))
}

/// The instance's settings as templates see them: typed by the profile's questions.
pub fn typed_settings(
    profile: &Profile,
    settings: &BTreeMap<String, String>,
) -> BTreeMap<String, serde_json::Value> {
    use crate::profile::QuestionKind;
    use serde_json::Value;
    settings
        .iter()
        .map(|(k, v)| {
            let typed = match profile.question(k).map(|q| q.kind) {
                Some(QuestionKind::Bool) => Value::Bool(v == "true"),
                Some(QuestionKind::Integer) => v
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| Value::String(v.clone())),
                _ if k == "old_hosts" => Value::Array(
                    v.split(',')
                        .filter(|h| !h.is_empty())
                        .map(|h| Value::String(h.to_string()))
                        .collect(),
                ),
                _ => Value::String(v.clone()),
            };
            (k.clone(), typed)
        })
        .collect()
}

pub fn unit(
    profile: &Profile,
    component: &Component,
    ctx: &RenderContext,
) -> Result<String, RenderError> {
    render(&profile.assets, &component.unit, ctx)
}

pub fn file(profile: &Profile, template: &str, ctx: &RenderContext) -> Result<String, RenderError> {
    render(&profile.assets, template, ctx)
}

/// The site, stamped with its configuration id: a hash of its own text that nginx answers in
/// `X-Launch-Config` to launch-tui's probes, so a reload is proven by a request answered by
/// exactly this configuration. The same settings give the same id (no needless reload).
pub fn nginx_site(profile: &Profile, ctx: &RenderContext) -> Result<String, RenderError> {
    use sha2::{Digest, Sha256};
    let mut c = ctx.clone();
    c.config_id = "unstamped".into();
    let text = render(&profile.assets, &profile.nginx.site, &c)?;
    let hash = Sha256::digest(text.as_bytes());
    c.config_id = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    render(&profile.assets, &profile.nginx.site, &c)
}

/// The configuration id a rendered site carries (its `# launch-config: ID` line).
pub fn site_config_id(site: &str) -> Option<&str> {
    site.lines()
        .find_map(|l| l.strip_prefix("# launch-config: "))
        .map(str::trim)
}

/// The include that names the active slot; switching slots rewrites only this file.
pub fn nginx_upstream(upstream_name: &str, port: u16) -> String {
    format!(
        "# Written by launch-tui: the active slot. Replaced atomically on update.\nupstream {upstream_name} {{\n    server 127.0.0.1:{port};\n    keepalive 16;\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Catalog;

    fn ctx(db: DbContext, tls: Option<TlsContext>) -> RenderContext {
        RenderContext {
            instance: "vikunja".into(),
            slot: "blue".into(),
            port: 3456,
            user: "vikunja".into(),
            release_dir: "/opt/vikunja/releases/v2.5.0".into(),
            data_dir: "/var/lib/vikunja/blue".into(),
            env_file: "/etc/vikunja/mcp.env".into(),
            venv: "/opt/vikunja/mcp-venv".into(),
            drain_s: 10,
            settings: typed_settings(
                &vikunja(),
                &[
                    ("public_url", "https://tasks.example.com/"),
                    ("timezone", "Europe/Berlin"),
                    ("registration", "false"),
                    ("max_upload_mib", "20"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            secrets: [("service_secret".to_string(), "SECRET".to_string())]
                .into_iter()
                .collect(),
            db,
            services: [(
                "redis".to_string(),
                crate::service::adapter(crate::profile::ServiceKind::Redis).context(false, ""),
            )]
            .into(),
            tls,
            server_name: "tasks.example.com".into(),
            public_url: "https://tasks.example.com/".into(),
            upload_limit_mib: 20,
            upstream_include: "/etc/nginx/launch/vikunja-upstream.conf".into(),
            upstream_name: "vikunja_active".into(),
            http_port: 80,
            https_port: 443,
            hold_flag: "/etc/nginx/launch/vikunja.hold".into(),
            hold_max_wait_s: 30,
            safe_methods: vec!["GET".into(), "HEAD".into(), "OPTIONS".into()],
            lua_dict: "launch_vikunja".into(),
            config_id: String::new(),
            acme_webroot: None,
            extra_locations: vec![ExtraLocation {
                path: "/mcp".into(),
                port: 8800,
            }],
        }
    }

    fn vikunja() -> Profile {
        Catalog::new(std::path::Path::new("/nonexistent"))
            .load("vikunja")
            .unwrap()
            .profile
    }

    #[test]
    fn vikunja_files_render() {
        let p = vikunja();
        let c = ctx(DbContext::sqlite(), None);
        insta::assert_snapshot!("vikunja_unit", unit(&p, &p.components[0], &c).unwrap());
        insta::assert_snapshot!("vikunja_mcp_unit", unit(&p, &p.components[1], &c).unwrap());
        insta::assert_snapshot!(
            "vikunja_config_sqlite",
            file(&p, &p.components[0].files[0].template, &c).unwrap()
        );
        insta::assert_snapshot!("vikunja_nginx_http", nginx_site(&p, &c).unwrap());
    }

    #[test]
    fn vikunja_with_redis() {
        let p = vikunja();
        let mut c = ctx(DbContext::sqlite(), None);
        c.services.insert(
            "redis".into(),
            crate::service::adapter(crate::profile::ServiceKind::Redis)
                .context(true, "Pw0rd: with \"yaml\" #syntax"),
        );
        let config = file(&p, &p.components[0].files[0].template, &c).unwrap();
        let tree: serde_yaml_ng::Value = serde_yaml_ng::from_str(&config).unwrap();
        assert_eq!(tree["keyvalue"]["type"].as_str(), Some("redis"), "{config}");
        assert_eq!(tree["redis"]["enabled"].as_bool(), Some(true));
        assert_eq!(tree["redis"]["host"].as_str(), Some("127.0.0.1:6379"));
        // A value, never syntax, whatever it holds.
        assert_eq!(
            tree["redis"]["password"].as_str(),
            Some("Pw0rd: with \"yaml\" #syntax")
        );
        let u = unit(&p, &p.components[0], &c).unwrap();
        assert!(
            u.contains("After=network-online.target redis-server.service"),
            "{u}"
        );
        assert!(
            u.contains("Wants=network-online.target redis-server.service"),
            "{u}"
        );
    }

    #[test]
    fn vikunja_config_postgres_and_tls_site() {
        let p = vikunja();
        let db = DbContext {
            kind: "postgres".into(),
            host: "127.0.0.1".into(),
            port: 5432,
            name: "vikunja".into(),
            user: "vikunja".into(),
            password: "pw".into(),
            local_unit: Some("postgresql.service".into()),
            url: String::new(),
        };
        let tls = TlsContext {
            cert: "/etc/launch/tls/cert.pem".into(),
            key: "/etc/launch/tls/key.pem".into(),
        };
        let c = ctx(db, Some(tls));
        insta::assert_snapshot!(
            "vikunja_config_postgres",
            file(&p, &p.components[0].files[0].template, &c).unwrap()
        );
        insta::assert_snapshot!("vikunja_nginx_tls", nginx_site(&p, &c).unwrap());
    }

    #[test]
    fn undefined_variable_is_an_error() {
        let p = vikunja();
        let mut c = ctx(DbContext::sqlite(), None);
        c.settings.remove("timezone");
        let e = file(&p, &p.components[0].files[0].template, &c).unwrap_err();
        assert!(e.to_string().contains("vikunja/config.yml.j2"), "{e}");
    }

    /// The rendered site passes the real `nginx -t` (with the upstream include written beside it).
    #[test]
    fn nginx_accepts_rendered_sites() {
        let nginx = which("nginx")
            .expect("nginx must be installed (scripts/test-all.sh installs nginx-light and libnginx-mod-http-lua)");
        let p = vikunja();
        for tls in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let upstream = d.join("upstream.conf");
            std::fs::write(&upstream, nginx_upstream("vikunja_active", 3456)).unwrap();
            let mut c = ctx(DbContext::sqlite(), None);
            c.upstream_include = upstream.display().to_string();
            c.hold_flag = d.join("hold").display().to_string();
            if tls {
                let cert =
                    rcgen::generate_simple_self_signed(vec!["tasks.example.com".into()]).unwrap();
                std::fs::write(d.join("cert.pem"), cert.cert.pem()).unwrap();
                std::fs::write(d.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
                c.tls = Some(TlsContext {
                    cert: d.join("cert.pem").display().to_string(),
                    key: d.join("key.pem").display().to_string(),
                });
                // tls=acme: the HTTP-01 location next to the TLS server.
                c.acme_webroot = Some(d.join("acme-webroot").display().to_string());
            }
            let site = nginx_site(&p, &c).unwrap();
            assert_eq!(
                site.contains("location ^~ /.well-known/acme-challenge/"),
                tls,
                "{site}"
            );
            std::fs::write(d.join("site.conf"), site).unwrap();
            let main = format!(
                "{LUA_MODULES}pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  include {d}/site.conf;\n}}\n",
                d = d.display()
            );
            std::fs::write(d.join("nginx.conf"), main).unwrap();
            let out = std::process::Command::new(&nginx)
                .arg("-t")
                .arg("-p")
                .arg(d)
                .arg("-c")
                .arg(d.join("nginx.conf"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "nginx -t failed (tls={tls}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The site needs nginx's Lua module (Debian's libnginx-mod-http-lua), loaded as Debian's
    /// modules-enabled does.
    pub(crate) const LUA_MODULES: &str = "load_module /usr/lib/nginx/modules/ndk_http_module.so;\nload_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n";

    /// The rendered units pass the real `systemd-analyze verify` (pointing at executables that
    /// exist, as they will in the container).
    #[test]
    fn systemd_accepts_rendered_units() {
        let p = vikunja();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("release")).unwrap();
        std::fs::create_dir_all(d.join("venv/bin")).unwrap();
        std::fs::copy("/bin/true", d.join("release/vikunja")).unwrap();
        std::fs::copy("/bin/true", d.join("venv/bin/vikunja-mcp")).unwrap();
        std::fs::write(d.join("mcp.env"), "VIKUNJA_URL=http://127.0.0.1/\n").unwrap();
        let mut c = ctx(DbContext::sqlite(), None);
        c.release_dir = d.join("release").display().to_string();
        c.venv = d.join("venv").display().to_string();
        c.env_file = d.join("mcp.env").display().to_string();
        c.data_dir = d.display().to_string();
        c.user = "root".into();
        for comp in &p.components {
            let path = d.join(Layout::unit_name("vikunja", comp.name.as_str(), None));
            std::fs::write(&path, unit(&p, comp, &c).unwrap()).unwrap();
            let out = std::process::Command::new("systemd-analyze")
                .arg("verify")
                .arg(&path)
                .output()
                .expect("systemd-analyze must be installed");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && !stderr.contains("Unknown"),
                "systemd-analyze verify {}: {stderr}",
                path.display()
            );
        }
    }

    fn which(cmd: &str) -> Option<std::path::PathBuf> {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .map(|d| std::path::Path::new(d).join(cmd))
            .find(|p| p.exists())
    }
}
