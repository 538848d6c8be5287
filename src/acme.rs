//! Automatic HTTPS (`tls=acme`): certificates from an RFC 8555 CA (Let's Encrypt by default)
//! obtained and renewed INSIDE the container by Debian's `lego`, through HTTP-01 (a webroot
//! location in the instance's nginx site) or DNS-01 (Cloudflare's API with a scoped token).
//!
//! lego, not certbot: a single static binary whose hooks get the new files' paths in the
//! environment. Debian builds it without its cloudflare DNS provider ("unrecognized DNS
//! provider: cloudflare"), so DNS-01 goes through lego's `exec` provider and a small hook
//! written here that calls Cloudflare's API v4 with curl; the ACME side stays lego's. A script
//! written here wraps lego so the install, `reconfigure` and the renewal timer run the same
//! commands; it records each run's result for `launch-tui status`.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{anyhow, bail};

use crate::ct::{sh, CtAccess};
use crate::error::InvalidValue;
use crate::escape::{escape, Syntax};

/// Let's Encrypt's production directory: the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The settings that belong to `tls=acme` (kept in the instance's record).
pub const KEYS: &[&str] = &[
    "acme_email",
    "acme_directory",
    "acme_challenge",
    "acme_ca_file",
    "acme_cloudflare_token_file",
    "acme_dns_resolvers",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Http,
    DnsCloudflare,
}

impl Challenge {
    pub fn as_str(self) -> &'static str {
        match self {
            Challenge::Http => "http",
            Challenge::DnsCloudflare => "dns-cloudflare",
        }
    }
}

/// A validated request for a certificate.
#[derive(Clone)]
pub struct AcmeRequest {
    pub domain: String,
    pub email: String,
    pub directory: String,
    pub challenge: Challenge,
    /// PEM of an extra CA to trust for the directory (a private or test CA), read on the host.
    pub ca_pem: Option<String>,
    /// The Cloudflare API token (DNS-01 only), read from a 0600 file on the host.
    pub cloudflare_token: Option<String>,
    /// DNS-01: the resolvers lego asks to find the zone and see the record (`IP:PORT,...`);
    /// the container's own when absent (split-horizon DNS needs public ones here).
    pub dns_resolvers: Option<String>,
}

impl std::fmt::Debug for AcmeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeRequest")
            .field("domain", &self.domain)
            .field("email", &self.email)
            .field("directory", &self.directory)
            .field("challenge", &self.challenge)
            .field(
                "cloudflare_token",
                &self.cloudflare_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// Files of the ACME setup in the container of instance profile `p`.
pub struct AcmePaths {
    /// lego's state: the account (key, registration) and the certificates.
    pub dir: String,
    /// The settings the script reads (0600: holds the Cloudflare token in DNS-01 mode).
    pub conf: String,
    /// Where nginx serves `/.well-known/acme-challenge/` from.
    pub webroot: String,
    pub script: String,
    /// `ok TIME` or `failed TIME` and the CA's message: the last run's result.
    pub last: String,
    pub unit: String,
    /// DNS-01: lego's `exec` hook that speaks Cloudflare's API.
    pub cloudflare_hook: String,
}

impl AcmePaths {
    pub fn of(p: &str) -> AcmePaths {
        AcmePaths {
            dir: format!("/etc/{p}/acme"),
            conf: format!("/etc/{p}/acme/acme.conf"),
            // Outside /var/lib/{p} (0750, the app's): nginx's workers must read it.
            webroot: format!("/var/www/{p}-acme"),
            script: format!("/usr/local/lib/launch/acme-{p}"),
            last: format!("/etc/{p}/acme/last-result"),
            unit: format!("launch-acme-{p}"),
            cloudflare_hook: format!("/usr/local/lib/launch/acme-{p}-cloudflare"),
        }
    }
}

/// Whether the instance's settings ask for ACME.
pub fn enabled(settings: &BTreeMap<String, String>) -> bool {
    settings.get("acme_email").is_some_and(|e| !e.is_empty())
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

/// An email address as a CA takes it: `local@domain`, ASCII, no spaces or quotes.
pub fn check_email(v: &str) -> Result<(), String> {
    let Some((local, domain)) = v.split_once('@') else {
        return Err("not an email address (no @)".into());
    };
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ is empty or longer than 64 characters".into());
    }
    if !local
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
    {
        return Err("the part before @ may hold only letters, digits and . _ + -".into());
    }
    check_domain(domain).map_err(|e| format!("its domain: {e}"))
}

/// A DNS name a public CA can issue for: letters, digits and hyphens in dot-separated labels,
/// at least two labels, not an IP address, no wildcard.
pub fn check_domain(v: &str) -> Result<(), String> {
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address: ACME certificates are for DNS names".into());
    }
    if v.is_empty() || v.len() > 253 {
        return Err("a DNS name has 1 to 253 characters".into());
    }
    let labels: Vec<&str> = v.split('.').collect();
    if labels.len() < 2 {
        return Err("a single label: give the full name, e.g. tasks.example.org".into());
    }
    for l in &labels {
        let ok = !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(format!(
                "label `{l}` is not a DNS label (letters, digits, inner hyphens, at most 63)"
            ));
        }
    }
    Ok(())
}

/// An ACME directory URL: https, a host, nothing a shell, nginx or systemd could read as syntax.
pub fn check_directory(v: &str) -> Result<(), String> {
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~:/?=&%+".contains(c))
    {
        return Err(
            "holds characters a URL here never needs (spaces, quotes, $, `, \\, ;, ...)".into(),
        );
    }
    let u = url::Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    if u.scheme() != "https" {
        return Err("an ACME directory is served over https".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("no user or password in the URL".into());
    }
    if u.host_str().is_none() {
        return Err("no host".into());
    }
    Ok(())
}

/// Reads a secret file given by the admin: a regular file of root's, mode 0600 or stricter.
fn read_private(field: &str, path: &str) -> Result<String, InvalidValue> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(bad(
            field,
            path,
            "not an absolute path",
            "give the full path, e.g. /root/cloudflare.token",
        ));
    }
    let meta = std::fs::symlink_metadata(p).map_err(|e| {
        bad(
            field,
            path,
            format!("cannot read it ({e})"),
            "give the path of an existing file",
        )
    })?;
    if !meta.file_type().is_file() {
        return Err(bad(
            field,
            path,
            "not a regular file (a symlink, a directory, a device)",
            "give the file itself",
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad(
            field,
            path,
            format!(
                "readable by others (mode {:o})",
                meta.permissions().mode() & 0o777
            ),
            format!("chmod 600 {path}"),
        ));
    }
    if meta.uid() != unsafe_geteuid() {
        return Err(bad(
            field,
            path,
            "owned by another user",
            format!("chown root {path}"),
        ));
    }
    if meta.len() > 64 * 1024 {
        return Err(bad(
            field,
            path,
            "larger than 64 KiB",
            "give the token or PEM file itself",
        ));
    }
    std::fs::read_to_string(p).map_err(|e| {
        bad(
            field,
            path,
            format!("cannot read it ({e})"),
            "give a readable text file",
        )
    })
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The Cloudflare API token in `path` (its value never appears in a message).
pub fn read_cloudflare_token(path: &str) -> Result<String, InvalidValue> {
    let field = "acme_cloudflare_token_file";
    let text = read_private(field, path)?;
    let token = text.trim();
    if token.len() < 20
        || token.len() > 200
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        return Err(bad(
            field,
            path,
            "its content is not a Cloudflare API token (20 to 200 letters, digits, _ or -)",
            "put only the token in the file: My Profile → API Tokens → Create Token, permission Zone:DNS:Edit on the zone",
        ));
    }
    Ok(token.to_string())
}

/// Validates the ACME settings among `sets` (the answers or `--set` values) for an instance
/// whose public URL is `public_url`; every problem is returned, nothing is touched.
pub fn validate(
    sets: &BTreeMap<String, String>,
    url_key: &str,
    public_url: &str,
) -> Result<AcmeRequest, Vec<InvalidValue>> {
    let mut problems = Vec::new();
    let get = |k: &str| sets.get(k).map(String::as_str);
    let domain = url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if let Err(e) = check_domain(&domain) {
        problems.push(bad(
            url_key,
            public_url,
            format!("its host cannot get an ACME certificate: {e}"),
            format!("set {url_key} to the DNS name users reach, e.g. https://app.example.org"),
        ));
    }
    let email = get("acme_email").unwrap_or_default().to_string();
    if email.is_empty() {
        problems.push(bad(
            "acme_email",
            "",
            "the CA needs a contact address (expiry warnings, account recovery)",
            "e.g. acme_email=admin@example.org",
        ));
    } else if let Err(e) = check_email(&email) {
        problems.push(bad(
            "acme_email",
            &email,
            e,
            "e.g. acme_email=admin@example.org",
        ));
    }
    let directory = get("acme_directory").unwrap_or(LETS_ENCRYPT).to_string();
    if let Err(e) = check_directory(&directory) {
        problems.push(bad(
            "acme_directory",
            &directory,
            e,
            format!("leave it out for Let's Encrypt ({LETS_ENCRYPT}), or give your CA's https directory URL"),
        ));
    }
    let challenge = match get("acme_challenge").unwrap_or("http") {
        "http" => Some(Challenge::Http),
        "dns-cloudflare" => Some(Challenge::DnsCloudflare),
        other => {
            problems.push(bad(
                "acme_challenge",
                other,
                "not a challenge Launch knows",
                "http (the name reaches this container on port 80) or dns-cloudflare (the zone is on Cloudflare)",
            ));
            None
        }
    };
    let mut cloudflare_token = None;
    match (challenge, get("acme_cloudflare_token_file")) {
        (Some(Challenge::DnsCloudflare), Some(path)) => match read_cloudflare_token(path) {
            Ok(t) => cloudflare_token = Some(t),
            Err(e) => problems.push(e),
        },
        (Some(Challenge::DnsCloudflare), None) => problems.push(bad(
            "acme_cloudflare_token_file",
            "",
            "DNS-01 through Cloudflare needs an API token",
            "put a token with Zone:DNS:Edit on the zone in a file (chmod 600) and give acme_cloudflare_token_file=PATH",
        )),
        (Some(Challenge::Http), Some(path)) => problems.push(bad(
            "acme_cloudflare_token_file",
            path,
            "only used with acme_challenge=dns-cloudflare",
            "leave it out, or set acme_challenge=dns-cloudflare",
        )),
        _ => {}
    }
    let mut dns_resolvers = None;
    if let Some(v) = get("acme_dns_resolvers") {
        let ok = v
            .split(',')
            .all(|r| r.parse::<std::net::SocketAddr>().is_ok());
        if !ok || challenge != Some(Challenge::DnsCloudflare) {
            problems.push(bad(
                "acme_dns_resolvers",
                v,
                if ok {
                    "only used with acme_challenge=dns-cloudflare"
                } else {
                    "expected IP:PORT, comma-separated"
                },
                "e.g. acme_dns_resolvers=1.1.1.1:53,9.9.9.9:53",
            ));
        } else {
            dns_resolvers = Some(v.to_string());
        }
    }
    let mut ca_pem = None;
    if let Some(path) = get("acme_ca_file") {
        match std::fs::read_to_string(path) {
            Ok(t) if t.contains("-----BEGIN CERTIFICATE-----") && t.len() < 256 * 1024 => {
                ca_pem = Some(t)
            }
            Ok(_) => problems.push(bad(
                "acme_ca_file",
                path,
                "no PEM certificate in it",
                "give the PEM file of the CA that signs your ACME server's HTTPS certificate",
            )),
            Err(e) => problems.push(bad(
                "acme_ca_file",
                path,
                format!("cannot read it ({e})"),
                "give the path of a PEM file",
            )),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(AcmeRequest {
        domain,
        email,
        directory,
        challenge: challenge.unwrap_or(Challenge::Http),
        ca_pem,
        cloudflare_token,
        dns_resolvers,
    })
}

/// The settings file the script sources (shell syntax, every value quoted by the shell filter).
pub fn render_conf(r: &AcmeRequest, p: &str) -> Result<String, String> {
    let paths = AcmePaths::of(p);
    let mut out = String::from(
        "# Written by launch-tui: the ACME settings of this instance. Holds a secret: 0600.\n",
    );
    let mut put = |k: &str, v: &str| -> Result<(), String> {
        out.push_str(&format!("{k}={}\n", escape(Syntax::Shell, v)?));
        Ok(())
    };
    put("ACME_DOMAIN", &r.domain)?;
    put("ACME_EMAIL", &r.email)?;
    put("ACME_DIRECTORY", &r.directory)?;
    put("ACME_CHALLENGE", r.challenge.as_str())?;
    if r.ca_pem.is_some() {
        put("LEGO_CA_CERTIFICATES", &format!("{}/ca.pem", paths.dir))?;
    }
    if let Some(v) = &r.dns_resolvers {
        put("ACME_DNS_RESOLVERS", v)?;
    }
    if let Some(t) = &r.cloudflare_token {
        put("CF_DNS_API_TOKEN", t)?;
    }
    Ok(out)
}

/// The script the install, `reconfigure` and the timer run: `run` (first issuance), `renew`
/// (when due), `force` (renew now), `install` (lego's hook: put the files in place for nginx).
pub fn render_script(p: &str) -> String {
    let a = AcmePaths::of(p);
    format!(
        r#"#!/bin/sh
# Written by launch-tui: obtains and renews the certificate of instance {p} with lego (ACME),
# installs it for nginx and records each run's result for `launch-tui status`.
set -u
set -a
. {conf}
set +a
case "${{1:-renew}}" in
install)
    # lego's hook: LEGO_CERT_PATH (full chain) and LEGO_CERT_KEY_PATH are the new files.
    mkdir -p /etc/{p}/tls
    install -m 0644 "$LEGO_CERT_PATH" /etc/{p}/tls/.cert.pem.new &&
    install -m 0600 "$LEGO_CERT_KEY_PATH" /etc/{p}/tls/.key.pem.new &&
    mv -f /etc/{p}/tls/.key.pem.new /etc/{p}/tls/key.pem &&
    mv -f /etc/{p}/tls/.cert.pem.new /etc/{p}/tls/cert.pem || exit 1
    # A reload keeps open connections: old workers finish their requests.
    if nginx -t -q 2>/dev/null; then systemctl reload nginx; fi
    exit 0 ;;
run) action=run; days=30 ;;
renew) action=renew; days=30 ;;
force) action=renew; days=100000 ;;
*) echo "usage: $0 run|renew|force|install" >&2; exit 2 ;;
esac
# After a restore: the account and certificates come back from the backed-up state.tar
# (regular files and directories only; GNU tar refuses names with `..`).
if [ ! -d {dir}/accounts ] && [ -f {dir}/state.tar ]; then
    if tar -tvf {dir}/state.tar | cut -c1 | grep -qv '^[-d]$'; then
        echo "{dir}/state.tar holds links or devices: not unpacked" >&2
    else
        tar -C {dir} --no-same-owner -xf {dir}/state.tar accounts certificates
    fi
fi
set -- --accept-tos --path {dir} --email "$ACME_EMAIL" --server "$ACME_DIRECTORY" --domains "$ACME_DOMAIN"
case "$ACME_CHALLENGE" in
http) mkdir -p {webroot}; set -- "$@" --http --http.webroot {webroot} ;;
dns-cloudflare)
    # Debian's lego is built without its cloudflare provider: its `exec` provider runs the
    # hook below, which speaks Cloudflare's API (the token from the environment, never argv).
    export EXEC_PATH={hook}
    set -- "$@" --dns exec ${{ACME_DNS_RESOLVERS:+--dns.resolvers "$ACME_DNS_RESOLVERS"}} ;;
esac
if [ "$action" = run ]; then
    set -- "$@" run --run-hook "{script} install"
else
    set -- "$@" renew --days "$days" --no-random-sleep --renew-hook "{script} install"
fi
out=$(lego "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
if [ "$rc" -eq 0 ]; then
    # The account and the certificates in one private file: what `launch-tui backup` carries
    # (its allowlist names files, and lego's names depend on the CA and the email).
    (umask 077 && tar -C {dir} -cf {dir}/.state.tar.new accounts certificates && mv -f {dir}/.state.tar.new {dir}/state.tar)
    printf 'ok %s\n' "$now" > {last}.new
else
    {{ printf 'failed %s\n' "$now"; printf '%s\n' "$out" | grep -E 'urn:ietf|error|Could not' | tail -n 6; }} > {last}.new
fi
mv -f {last}.new {last}
exit "$rc"
"#,
        conf = a.conf,
        dir = a.dir,
        webroot = a.webroot,
        script = a.script,
        last = a.last,
        hook = a.cloudflare_hook,
    )
}

/// lego's `exec` DNS hook for Cloudflare's API v4: `present|cleanup FQDN VALUE`. The zone is
/// found by name (the longest suffix of FQDN Cloudflare knows), the TXT record created, and
/// deleted again by its content. curl reads the token header from stdin (`--config -`).
pub fn render_cloudflare_hook(p: &str) -> String {
    format!(
        r#"#!/bin/sh
# Written by launch-tui for instance {p}: lego's DNS-01 hook for Cloudflare (API v4).
set -eu
api=https://api.cloudflare.com/client/v4
cf() {{
    printf 'header = "Authorization: Bearer %s"\n' "$CF_DNS_API_TOKEN" |
        curl -sS --fail-with-body --max-time 30 --config - -X "$1" -H 'Content-Type: application/json' ${{3:+--data "$3"}} "$api$2"
}}
action=$1
fqdn=${{2%.}}
value=$3
zone=$fqdn
id=
while [ -z "$id" ]; do
    case "$zone" in *.*) ;; *) echo "no Cloudflare zone holds $fqdn for this token" >&2; exit 1 ;; esac
    id=$(cf GET "/zones?name=$zone" | jq -r '.result[0].id // empty')
    [ -n "$id" ] || zone=${{zone#*.}}
done
case "$action" in
present)
    cf POST "/zones/$id/dns_records" "$(jq -nc --arg n "$fqdn" --arg c "$value" '{{type:"TXT",name:$n,content:$c,ttl:120}}')" >/dev/null ;;
cleanup)
    for r in $(cf GET "/zones/$id/dns_records?type=TXT&name=$fqdn" | jq -r --arg c "$value" '.result[] | select(.content == $c) | .id'); do
        cf DELETE "/zones/$id/dns_records/$r" >/dev/null
    done ;;
*) exit 0 ;;
esac
"#
    )
}

pub fn render_service(p: &str) -> String {
    let a = AcmePaths::of(p);
    format!(
        "# Written by launch-tui: renews the certificate of instance {p} when it is due.\n[Unit]\nDescription=Renew the ACME certificate of {p}\nAfter=network-online.target nginx.service\nWants=network-online.target\n\n[Service]\nType=oneshot\nExecStart={} renew\n",
        a.script
    )
}

pub fn render_timer(p: &str) -> String {
    format!(
        "# Written by launch-tui: twice a day, like certbot's timer; lego renews 30 days before expiry.\n[Unit]\nDescription=Renew the ACME certificate of {p} when due\n\n[Timer]\nOnCalendar=*-*-* 00,12:00:00\nRandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
    )
}

/// Installs lego, the settings, the script and the timer in the container. Idempotent.
pub fn setup(ct: &dyn CtAccess, vmid: u32, p: &str, r: &AcmeRequest) -> anyhow::Result<()> {
    let a = AcmePaths::of(p);
    sh(
        ct,
        vmid,
        "command -v lego >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends lego jq curl ca-certificates >/dev/null; }",
    )?;
    sh(
        ct,
        vmid,
        &format!(
            "mkdir -p -m 0700 {} && mkdir -p {} /usr/local/lib/launch",
            a.dir, a.webroot
        ),
    )?;
    let conf = render_conf(r, p).map_err(|e| anyhow!("cannot write the ACME settings: {e}"))?;
    ct.write(vmid, &a.conf, conf.as_bytes(), 0o600, None)?;
    if let Some(pem) = &r.ca_pem {
        ct.write(
            vmid,
            &format!("{}/ca.pem", a.dir),
            pem.as_bytes(),
            0o644,
            None,
        )?;
    }
    ct.write(vmid, &a.script, render_script(p).as_bytes(), 0o755, None)?;
    ct.write(
        vmid,
        &a.cloudflare_hook,
        render_cloudflare_hook(p).as_bytes(),
        0o755,
        None,
    )?;
    ct.write(
        vmid,
        &format!("/etc/systemd/system/{}.service", a.unit),
        render_service(p).as_bytes(),
        0o644,
        None,
    )?;
    ct.write(
        vmid,
        &format!("/etc/systemd/system/{}.timer", a.unit),
        render_timer(p).as_bytes(),
        0o644,
        None,
    )?;
    sh(
        ct,
        vmid,
        &format!(
            "systemctl daemon-reload && systemctl enable --quiet --now {}.timer",
            a.unit
        ),
    )?;
    Ok(())
}

/// Switches renewal off (tls back to off or to the admin's own certificate).
pub fn teardown(ct: &dyn CtAccess, vmid: u32, p: &str) {
    let a = AcmePaths::of(p);
    let _ = ct.exec(
        vmid,
        &[
            "systemctl",
            "disable",
            "--now",
            "--quiet",
            &format!("{}.timer", a.unit),
        ],
    );
}

/// Obtains the certificate now (`run`) or renews it (`force`); on failure the error holds the
/// CA's message and what to check.
pub fn obtain(
    ct: &dyn CtAccess,
    vmid: u32,
    p: &str,
    r: &AcmeRequest,
    action: &str,
) -> anyhow::Result<()> {
    let a = AcmePaths::of(p);
    let out = ct.exec(vmid, &[&a.script, action])?;
    if out.ok() {
        return Ok(());
    }
    let all = format!("{}\n{}", out.stdout, out.stderr);
    bail!("{}", failure_message(&all, r))
}

/// The CA's own words from lego's output, and what to check for this challenge.
pub fn failure_message(output: &str, r: &AcmeRequest) -> String {
    let ca: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("urn:ietf:params:acme:error") || l.contains("acme: error"))
        .collect();
    let said = if ca.is_empty() {
        output
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n    ")
    } else {
        ca.join("\n    ")
    };
    let check = match r.challenge {
        Challenge::Http => format!(
            "check that {d} resolves (public DNS A/AAAA record) to this instance's address, and that port 80 reaches the container from the Internet (the CA fetches http://{d}/.well-known/acme-challenge/...)",
            d = r.domain
        ),
        Challenge::DnsCloudflare => format!(
            "check that the zone of {} is on Cloudflare and that the token has Zone:DNS:Edit on it",
            r.domain
        ),
    };
    format!(
        "the CA ({}) did not issue a certificate for {}:\n    {said}\n  help: {check}; nginx still serves HTTP as before",
        r.directory, r.domain
    )
}

/// `status`'s line on automatic HTTPS: the last run's result (the expiry is the `tls` line's),
/// whether the renewal timer is on, and on failure the CA's words and the command to retry.
pub fn status_check(ct: &dyn CtAccess, vmid: u32, p: &str) -> crate::status::Check {
    use crate::status::Check;
    let a = AcmePaths::of(p);
    let retry = format!(
        "after fixing DNS or port 80 (or the token): pct exec {vmid} -- {} renew",
        a.script
    );
    let last = match ct.exec(vmid, &["cat", &a.last]) {
        Ok(o) if o.ok() => o.stdout,
        Ok(_) => {
            return Check::warn(
                "acme",
                format!(
                    "automatic HTTPS: no renewal has run yet ({} missing)",
                    a.last
                ),
                retry,
            )
        }
        Err(e) => return Check::fail("acme", format!("cannot read {}: {e}", a.last), retry),
    };
    let timer_on = ct
        .exec(
            vmid,
            &[
                "systemctl",
                "is-enabled",
                "--quiet",
                &format!("{}.timer", a.unit),
            ],
        )
        .is_ok_and(|o| o.ok());
    let mut lines = last.lines();
    let first = lines.next().unwrap_or_default();
    let (result, when) = first.split_once(' ').unwrap_or((first, "?"));
    if result == "ok" {
        if !timer_on {
            return Check::warn(
                "acme",
                format!("automatic HTTPS: last renewal ok at {when}, but the renewal timer is off"),
                format!("pct exec {vmid} -- systemctl enable --now {}.timer", a.unit),
            );
        }
        return Check::ok(
            "acme",
            format!(
                "automatic HTTPS: last renewal ok at {when}; {}.timer checks twice a day",
                a.unit
            ),
        );
    }
    let said: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    Check::warn(
        "acme",
        format!(
            "automatic HTTPS: last renewal failed at {when}: {}",
            if said.is_empty() {
                "no message".to_string()
            } else {
                said.join(" | ")
            }
        ),
        retry,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hostile_values_are_refused_naming_the_field() {
        for (k, v) in [
            ("acme_email", "a@b.c\nserver_name evil;"),
            ("acme_email", "x'$(id)'@example.org"),
            ("acme_email", "admin@exa mple.org"),
            ("acme_directory", "https://ca.example/dir;reboot"),
            ("acme_directory", "http://ca.example/dir"),
            ("acme_directory", "https://u:p@ca.example/dir"),
            ("acme_directory", "https://ca.example/$(id)"),
            ("acme_challenge", "tls-alpn"),
        ] {
            let mut s = sets(&[("acme_email", "admin@example.org")]);
            s.insert(k.into(), v.into());
            let err = validate(&s, "public_url", "https://tasks.example.org").unwrap_err();
            assert!(err.iter().any(|p| p.field == k), "{k}={v:?}: {err:?}");
        }
        for url in [
            "http://10.0.0.5",
            "http://localhost",
            "http://-x.example.org",
        ] {
            let err =
                validate(&sets(&[("acme_email", "a@example.org")]), "public_url", url).unwrap_err();
            assert!(err.iter().any(|p| p.field == "public_url"), "{url}");
        }
        let ok = validate(
            &sets(&[("acme_email", "a@example.org")]),
            "public_url",
            "https://tasks.example.org/",
        )
        .unwrap();
        assert_eq!(ok.directory, LETS_ENCRYPT);
        assert_eq!(ok.challenge, Challenge::Http);
        assert_eq!(ok.domain, "tasks.example.org");
    }

    #[test]
    fn the_cloudflare_token_comes_from_a_private_file_and_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cf.token");
        let token = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-ab";
        std::fs::write(&f, format!("{token}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = f.to_str().unwrap();
        let s = sets(&[
            ("acme_email", "a@example.org"),
            ("acme_challenge", "dns-cloudflare"),
            ("acme_cloudflare_token_file", path),
        ]);
        let err = validate(&s, "public_url", "https://tasks.example.org").unwrap_err();
        assert!(err[0].help.contains("chmod 600"), "{err:?}");
        assert!(!format!("{err:?}").contains(token));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = validate(&s, "public_url", "https://tasks.example.org").unwrap();
        assert_eq!(r.cloudflare_token.as_deref(), Some(token));
        assert!(!format!("{r:?}").contains(token));
        let conf = render_conf(&r, "vikunja").unwrap();
        // The shell reads back exactly the values.
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("{conf}\nprintf '%s|%s' \"$CF_DNS_API_TOKEN\" \"$ACME_CHALLENGE\""),
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{token}|dns-cloudflare")
        );
        // Without the file, DNS-01 is refused.
        let s = sets(&[
            ("acme_email", "a@example.org"),
            ("acme_challenge", "dns-cloudflare"),
        ]);
        assert!(validate(&s, "public_url", "https://tasks.example.org").is_err());
    }

    #[test]
    fn the_script_passes_values_only_as_quoted_variables() {
        let s = render_script("vikunja");
        for v in ["$ACME_EMAIL", "$ACME_DIRECTORY", "$ACME_DOMAIN"] {
            assert!(s.contains(&format!("\"{v}\"")), "{v} unquoted");
        }
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &s])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The Cloudflare hook: the token reaches curl on stdin, never as an argument.
        let h = render_cloudflare_hook("vikunja");
        assert!(h.contains("--config -") && !h.contains("-H \"Authorization"));
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &h])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_cas_message_is_kept_and_the_fix_named() {
        let r = validate(
            &sets(&[("acme_email", "a@example.org")]),
            "public_url",
            "https://tasks.example.org",
        )
        .unwrap();
        let out = "2026/12/05 [INFO] [tasks.example.org] acme: Trying to solve HTTP-01\nCould not obtain certificates:\n\terror: one or more domains had a problem:\n[tasks.example.org] acme: error: 403 :: urn:ietf:params:acme:error:connection :: Connection refused\n";
        let m = failure_message(out, &r);
        assert!(
            m.contains("urn:ietf:params:acme:error:connection :: Connection refused"),
            "{m}"
        );
        assert!(m.contains("port 80") && m.contains("HTTP as before"), "{m}");
    }
}
