//! Meilisearch, for the app alone. It is not in Debian: its release binary (pinned by the
//! profile's `services[].release`, downloaded and checked on the host) is installed as
//! `/usr/local/bin/meilisearch` and run by a hardened unit of launch-tui's as the `meilisearch`
//! system user, on 127.0.0.1:7700 only, with its data in `/var/lib/meilisearch`.
//!
//! Its settings are Meilisearch's own configuration file, `/etc/meilisearch.toml` (0640, group
//! meilisearch): `env = "production"` (Meilisearch then refuses requests without the master
//! key), the master key, the paths, no analytics. Clients (the dump, the check) read the key
//! from that file into a shell variable and hand curl the header on its standard input
//! (`-H @-`), never in argv.
//!
//! Backup is Meilisearch's own dump (`POST /dumps`, the task waited for), which its
//! `import_dump` setting loads back into an empty database: the restored index is the one that
//! was saved, whatever the app would or would not re-index by itself.

use super::{Adapter, RestoreScripts};
use crate::database::q;
use crate::profile::ServiceKind;

pub const SECRET_KEY: &str = "meili_master_key";

const BIN: &str = "/usr/local/bin/meilisearch";
const CONF: &str = "/etc/meilisearch.toml";
const HOME: &str = "/var/lib/meilisearch";
const DATA: &str = "/var/lib/meilisearch/data";
const DUMPS: &str = "/var/lib/meilisearch/dumps";
const IMPORT: &str = "/var/lib/meilisearch/import.dump";
const UNIT: &str = "meilisearch.service";
const DROP_IN: &str = "/run/systemd/system/meilisearch.service.d/launch-import.conf";
const BASE: &str = "http://127.0.0.1:7700";

/// The unit: the server alone, with nothing but its data directory writable.
const UNIT_FILE: &str =
    "# Written by launch-tui: Meilisearch for the app (replaced by reconfigure).
[Unit]
Description=Meilisearch (search for the app)
After=network.target

[Service]
Type=simple
User=meilisearch
Group=meilisearch
WorkingDirectory=/var/lib/meilisearch
ExecStart=/usr/local/bin/meilisearch --config-file-path /etc/meilisearch.toml
Restart=on-failure
RestartSec=2s
LimitNOFILE=65535
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true
ReadWritePaths=/var/lib/meilisearch

[Install]
WantedBy=multi-user.target
";

/// Shell lines that define `ms`: curl with the master key read from the configuration file,
/// the header given on curl's standard input.
fn client() -> String {
    format!(
        "MEILI_KEY=$(sed -n 's/^master_key = \"\\([A-Za-z0-9]*\\)\"$/\\1/p' {CONF})\n\
         ms() {{ printf 'Authorization: Bearer %s\\n' \"$MEILI_KEY\" | curl -fsS --max-time 60 -H @- \"$@\"; }}\n"
    )
}

/// Waits (at most `limit_s`) until the server answers `/health`, failing early when its unit
/// has stopped or systemd had to restart it (an explicit start resets `NRestarts`).
fn wait_health(limit_s: u32) -> String {
    format!(
        "i=0\nuntil curl -fsS --max-time 5 {BASE}/health 2>/dev/null | grep -q available; do\n\
         st=$(systemctl is-active {UNIT} || true); nr=$(systemctl show -p NRestarts --value {UNIT})\n\
         if [ \"$st\" = failed ] || [ \"$st\" = inactive ] || [ \"${{nr:-0}}\" != 0 ]; then echo 'Meilisearch stopped (journalctl -u meilisearch)' >&2; exit 1; fi\n\
         i=$((i+1)); if [ \"$i\" -ge {n} ]; then echo 'Meilisearch does not answer after {limit_s} s (journalctl -u meilisearch)' >&2; exit 1; fi; sleep 0.1; done\n",
        n = limit_s * 10
    )
}

pub struct Meilisearch;

impl Adapter for Meilisearch {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Meilisearch
    }

    fn title(&self) -> &'static str {
        "Meilisearch"
    }

    fn packages(&self) -> &'static [&'static str] {
        // curl (the dump, the check) is among the base packages.
        &[]
    }

    fn binary(&self) -> Option<&'static str> {
        Some(BIN)
    }

    fn unit(&self) -> &'static str {
        UNIT
    }

    fn port(&self) -> u16 {
        7700
    }

    fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    fn setup_script(&self, secret_file: &str) -> String {
        // The key is generated (letters and digits, 32: Meilisearch wants at least 16 bytes);
        // anything else is refused rather than written into TOML.
        format!(
            "set -eu\nkey=$(cat {f})\ncase \"$key\" in ''|*[!A-Za-z0-9]*) echo 'the Meilisearch master key must be letters and digits' >&2; exit 1;; esac\n\
             if [ \"${{#key}}\" -lt 16 ]; then echo 'the Meilisearch master key must be at least 16 characters' >&2; exit 1; fi\n\
             getent group meilisearch >/dev/null || groupadd --system meilisearch\n\
             getent passwd meilisearch >/dev/null || useradd --system --gid meilisearch --home-dir {HOME} --no-create-home --shell /usr/sbin/nologin meilisearch\n\
             install -d -o meilisearch -g meilisearch -m 0750 {HOME} {DATA} {DUMPS}\n\
             umask 027\n\
             printf '# Written by launch-tui for the app; replaced by reconfigure.\\nenv = \"production\"\\nhttp_addr = \"127.0.0.1:7700\"\\ndb_path = \"{DATA}\"\\ndump_dir = \"{DUMPS}\"\\nno_analytics = true\\nmaster_key = \"%s\"\\n' \"$key\" > {CONF}.new\n\
             chown root:meilisearch {CONF}.new\nchmod 0640 {CONF}.new\nmv -f {CONF}.new {CONF}\n\
             cat > /etc/systemd/system/{UNIT}.new <<'LAUNCH_UNIT'\n{UNIT_FILE}LAUNCH_UNIT\n\
             mv -f /etc/systemd/system/{UNIT}.new /etc/systemd/system/{UNIT}\n\
             systemctl daemon-reload\nsystemctl enable {UNIT} >/dev/null 2>&1\nsystemctl restart {UNIT}\n\
             {wait}{client}ms {BASE}/version >/dev/null || {{ echo 'Meilisearch refuses its master key (journalctl -u meilisearch)' >&2; exit 1; }}\n",
            f = q(secret_file),
            wait = wait_health(60),
            client = client(),
        )
    }

    fn dump_entry(&self) -> &'static str {
        "db/meilisearch.dump"
    }

    fn dump_script(&self) -> String {
        // Meilisearch's own dump: a task, waited for; its file moved into the staging area.
        format!(
            "{client}r=$(ms -X POST {BASE}/dumps) || {{ echo 'Meilisearch refused to make a dump' >&2; exit 1; }}\n\
             t=$(printf '%s' \"$r\" | sed -n 's/.*\"taskUid\":\\([0-9][0-9]*\\).*/\\1/p')\n\
             if [ -z \"$t\" ]; then echo \"Meilisearch's answer to POST /dumps has no task: $r\" >&2; exit 1; fi\n\
             i=0\nwhile :; do\n  r=$(ms {BASE}/tasks/\"$t\")\n  case \"$r\" in\n    *'\"status\":\"succeeded\"'*) break;;\n    *'\"status\":\"failed\"'*|*'\"status\":\"canceled\"'*) echo \"Meilisearch could not make its dump: $r\" >&2; exit 1;;\n  esac\n  i=$((i+1)); if [ \"$i\" -ge 36000 ]; then echo 'the Meilisearch dump took over an hour' >&2; exit 1; fi; sleep 0.1\ndone\n\
             u=$(printf '%s' \"$r\" | sed -n 's/.*\"dumpUid\":\"\\([A-Za-z0-9._-]*\\)\".*/\\1/p')\n\
             if [ -z \"$u\" ] || [ ! -f {DUMPS}/\"$u\".dump ]; then echo \"Meilisearch's dump file is missing: $r\" >&2; exit 1; fi\n\
             mv {DUMPS}/\"$u\".dump \"$S\"/{entry}\nunset MEILI_KEY\n",
            client = client(),
            entry = q(self.dump_entry()),
        )
    }

    fn restore_scripts(&self, dump: &str) -> RestoreScripts {
        let drop_in_dir = DROP_IN.rsplit_once('/').map(|(d, _)| d).unwrap_or(DROP_IN);
        RestoreScripts {
            // Meilisearch loads a dump only into an empty database, at start: the current data
            // is kept aside, and a runtime drop-in names the dump for this one start.
            restore: format!(
                "set -e\nsystemctl stop {UNIT}\nrm -rf {DATA}.launch-old\nif [ -e {DATA} ]; then mv {DATA} {DATA}.launch-old; fi\n\
                 install -d -o meilisearch -g meilisearch -m 0750 {DATA}\n\
                 install -o meilisearch -g meilisearch -m 0600 {dump} {IMPORT}\n\
                 mkdir -p {drop_in_dir}\nprintf '[Service]\\nEnvironment=MEILI_IMPORT_DUMP={IMPORT}\\n' > {DROP_IN}\n\
                 systemctl daemon-reload\nsystemctl start {UNIT}\n{wait}\
                 rm -f {DROP_IN} {IMPORT}\nsystemctl daemon-reload\n{client}ms {BASE}/version >/dev/null\nunset MEILI_KEY\n",
                dump = q(dump),
                wait = wait_health(600),
                client = client(),
            ),
            undo: format!(
                "rm -f {DROP_IN} {IMPORT}\nif [ -e {DATA}.launch-old ]; then systemctl stop {UNIT}; rm -rf {DATA}; mv -f {DATA}.launch-old {DATA}; systemctl daemon-reload; systemctl start {UNIT}; fi"
            ),
            cleanup: format!("rm -rf {DATA}.launch-old"),
        }
    }

    fn ping_script(&self) -> String {
        format!(
            "{}curl -fsS --max-time 5 {BASE}/health | grep -q available && ms {BASE}/version >/dev/null",
            client()
        )
    }
}
