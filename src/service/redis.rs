//! Redis from Debian (`redis-server`), for the app alone: a password (`requirepass`), loopback
//! only, its data in `/var/lib/redis/dump.rdb`. launch-tui's settings are one file,
//! `/etc/redis/launch.conf` (0640, owned by redis), included at the end of Debian's
//! `redis.conf`, so they win over it and Debian's file stays as the package left it.
//!
//! Clients (the dump, the check) read the password from that file into `REDISCLI_AUTH`, never
//! from their arguments.

use super::{Adapter, RestoreScripts};
use crate::database::q;
use crate::profile::ServiceKind;

pub const SECRET_KEY: &str = "redis_password";

const CONF: &str = "/etc/redis/launch.conf";
const RDB: &str = "/var/lib/redis/dump.rdb";
const UNIT: &str = "redis-server.service";

/// Shell lines that set `rc` to a redis-cli authenticated from launch.conf.
fn client() -> String {
    format!(
        "REDISCLI_AUTH=$(sed -n 's/^requirepass //p' {CONF})\nexport REDISCLI_AUTH\nrc() {{ redis-cli --no-auth-warning -h 127.0.0.1 -p 6379 \"$@\"; }}\n"
    )
}

/// Waits (at most 30 s) until the server answers PONG.
fn wait_ping() -> String {
    "i=0\nuntil rc ping 2>/dev/null | grep -qx PONG; do i=$((i+1)); if [ \"$i\" -ge 300 ]; then echo 'Redis does not answer PING after 30 s (journalctl -u redis-server)' >&2; exit 1; fi; sleep 0.1; done\n".into()
}

pub struct Redis;

impl Adapter for Redis {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Redis
    }

    fn title(&self) -> &'static str {
        "Redis"
    }

    fn packages(&self) -> &'static [&'static str] {
        &["redis-server"]
    }

    fn unit(&self) -> &'static str {
        UNIT
    }

    fn port(&self) -> u16 {
        6379
    }

    fn secret_key(&self) -> &'static str {
        SECRET_KEY
    }

    fn setup_script(&self, secret_file: &str) -> String {
        // The password is generated (letters and digits); anything else is refused rather than
        // written into redis.conf's syntax.
        format!(
            "set -eu\npw=$(cat {f})\ncase \"$pw\" in ''|*[!A-Za-z0-9]*) echo 'the Redis password must be letters and digits' >&2; exit 1;; esac\numask 077\n\
             printf '# Written by launch-tui for the app; replaced by reconfigure.\\nrequirepass %s\\nbind 127.0.0.1 -::1\\nprotected-mode yes\\nport 6379\\ndir /var/lib/redis\\ndbfilename dump.rdb\\nappendonly no\\n' \"$pw\" > {CONF}.new\n\
             chown redis:redis {CONF}.new\nchmod 0640 {CONF}.new\nmv -f {CONF}.new {CONF}\n\
             grep -qxF 'include {CONF}' /etc/redis/redis.conf || printf '\\ninclude {CONF}\\n' >> /etc/redis/redis.conf\n\
             systemctl enable {UNIT} >/dev/null 2>&1\nsystemctl restart {UNIT}\n{client}{wait}",
            f = q(secret_file),
            client = client(),
            wait = wait_ping(),
        )
    }

    fn dump_entry(&self) -> &'static str {
        "db/redis.rdb"
    }

    fn dump_script(&self) -> String {
        // A background save (Redis keeps answering), waited for, then its file copied.
        format!(
            "{client}i=0\nuntil rc BGSAVE 2>/dev/null | grep -q 'Background saving started'; do i=$((i+1)); if [ \"$i\" -ge 600 ]; then echo 'Redis does not start a background save' >&2; exit 1; fi; sleep 0.1; done\n\
             i=0\nwhile rc INFO persistence | grep -q '^rdb_bgsave_in_progress:1'; do i=$((i+1)); if [ \"$i\" -ge 36000 ]; then echo 'the Redis save took over an hour' >&2; exit 1; fi; sleep 0.1; done\n\
             rc INFO persistence | grep -q '^rdb_last_bgsave_status:ok' || {{ echo 'Redis could not save its data (journalctl -u redis-server)' >&2; exit 1; }}\n\
             cp {RDB} \"$S\"/{entry}\nunset REDISCLI_AUTH\n",
            client = client(),
            entry = q(self.dump_entry()),
        )
    }

    fn restore_scripts(&self, dump: &str) -> RestoreScripts {
        RestoreScripts {
            // Stopping saves the current data: that is what is kept aside.
            restore: format!(
                "set -e\nsystemctl stop {UNIT}\nrm -f {RDB}.launch-old\nif [ -e {RDB} ]; then mv {RDB} {RDB}.launch-old; fi\ninstall -o redis -g redis -m 0660 {dump} {RDB}\nsystemctl start {UNIT}\n{client}{wait}",
                dump = q(dump),
                client = client(),
                wait = wait_ping(),
            ),
            undo: format!(
                "if [ -e {RDB}.launch-old ]; then systemctl stop {UNIT}; mv -f {RDB}.launch-old {RDB}; systemctl start {UNIT}; fi"
            ),
            cleanup: format!("rm -f {RDB}.launch-old"),
        }
    }

    fn ping_script(&self) -> String {
        format!("{}rc ping | grep -qx PONG", client())
    }
}
