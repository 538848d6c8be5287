//! The lab's stand-in for a PVE bridge: a Linux bridge holding the gateway address, NAT to
//! the outside through an nft table, and per container a netns plus a veth pair on the bridge.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::cmd::{self, tool};
use super::state::RuntimeConfig;
use super::{Runtime, RuntimeError, StartSpec};

impl Runtime {
    pub(crate) fn net_up(&self) -> Result<()> {
        self.net.validate()?;
        let _lock = cmd::FileLock::acquire(
            &self.state_dir.join("locks").join("net.lock"),
            Duration::from_secs(60),
            "the lab network",
        )?;
        let br = self.net.bridge();
        if !link_exists(&br) {
            cmd::run(tool("ip").args(["link", "add", &br, "type", "bridge"]))?;
        }
        let cidr = format!("{}/{}", self.net.gateway(), self.net.prefix_len);
        let addrs = cmd::stdout_str(&cmd::run(
            tool("ip").args(["-o", "-4", "addr", "show", "dev", &br]),
        )?);
        if !addrs.split_whitespace().any(|w| w == cidr) {
            cmd::run(tool("ip").args(["addr", "add", &cidr, "dev", &br]))?;
        }
        cmd::run(tool("ip").args(["link", "set", &br, "up"]))?;
        // Forwarding is a host-wide switch that other labs and the host may rely on, so
        // network_down leaves it on.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1\n")
            .context("enabling IPv4 forwarding (/proc/sys/net/ipv4/ip_forward)")?;
        // One nft transaction that (re)creates the table: idempotent and never half-applied.
        let t = &self.net.prefix;
        let subnet = format!("{}/{}", self.net.subnet, self.net.prefix_len);
        let script = format!(
            "table ip {t} {{}}\n\
             delete table ip {t}\n\
             table ip {t} {{\n\
             \tchain post {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr {subnet} ip daddr != {subnet} masquerade\n\
             \t}}\n\
             }}\n"
        );
        nft_apply(&script)?;
        let node = self.read_config().and_then(|c| c.node);
        self.write_config(&RuntimeConfig {
            net: self.net.clone(),
            cache_dir: self.cache_dir.clone(),
            node,
        })
    }

    pub(crate) fn net_block_host(&self, block: bool) -> Result<()> {
        let t = &self.net.prefix;
        let br = self.net.bridge();
        // `add` makes the chain exist, so flushing (and deleting) it never fails.
        let mut script = format!(
            "add chain ip {t} hostout {{ type filter hook output priority filter; policy accept; }}\n\
             flush chain ip {t} hostout\n"
        );
        if block {
            // DHCP answers still go out: on a real LAN they come from the router, which the
            // blocked path (node to CT) does not involve.
            script.push_str(&format!(
                "add rule ip {t} hostout oifname \"{br}\" udp sport 67 accept\n\
                 add rule ip {t} hostout oifname \"{br}\" ct state new drop\n"
            ));
        } else {
            script.push_str(&format!("delete chain ip {t} hostout\n"));
        }
        nft_apply(&script)
    }

    pub(crate) fn read_config(&self) -> Option<RuntimeConfig> {
        let text = std::fs::read_to_string(Runtime::config_path(&self.state_dir)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub(crate) fn write_config(&self, cfg: &RuntimeConfig) -> Result<()> {
        cmd::write_atomic(
            &Runtime::config_path(&self.state_dir),
            &serde_json::to_vec_pretty(cfg).context("serializing runtime.json")?,
            0o644,
        )
    }

    pub(crate) fn net_down(&self) -> Result<()> {
        self.net.validate()?;
        let _lock = cmd::FileLock::acquire(
            &self.state_dir.join("locks").join("net.lock"),
            Duration::from_secs(60),
            "the lab network",
        )?;
        let mut errors = Vec::new();
        // A crashed container (nspawn gone) still has its mount and cgroups.
        for vmid in self.known_vmids() {
            if self.read_run_state(vmid).is_some() && self.live_run_state(vmid).is_none() {
                let reaped = self.lock_ct(vmid).and_then(|_lock| self.reap(vmid));
                if let Err(e) = reaped {
                    errors.push(format!("cleaning up after CT {vmid}: {e:#}"));
                }
            }
        }
        for ns in self.lab_netns() {
            if let Err(e) = cmd::run(tool("ip").args(["netns", "del", &ns])) {
                errors.push(format!("{e:#}"));
            }
        }
        for link in self.lab_links() {
            if let Err(e) = cmd::run(tool("ip").args(["link", "del", &link])) {
                // A veth disappears with its netns peer; only report links still there.
                if link_exists(&link) {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        if nft_table_exists(&self.net.prefix) {
            if let Err(e) = cmd::run(tool("nft").args(["delete", "table", "ip", &self.net.prefix]))
            {
                errors.push(format!("{e:#}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("network_down left things behind:\n{}", errors.join("\n"))
        }
    }

    /// Network namespaces named like this lab's containers.
    pub(crate) fn lab_netns(&self) -> Vec<String> {
        let pre = format!("{}-", self.net.prefix);
        std::fs::read_dir("/run/netns")
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.strip_prefix(&pre).is_some_and(all_digits))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The bridge and the container veths of this lab present in the host namespace.
    pub(crate) fn lab_links(&self) -> Vec<String> {
        let br = self.net.bridge();
        let p = &self.net.prefix;
        let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| {
                        n.strip_prefix(p.as_str()).is_some_and(|rest| {
                            rest.strip_prefix('v').is_some_and(all_digits)
                                || rest.strip_prefix('x').is_some_and(|r| {
                                    !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric())
                                })
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The bridge last, after its ports.
        if link_exists(&br) {
            v.push(br);
        }
        v
    }

    /// Netns, veth pair, addresses and routes for one container. The container side is
    /// named eth0 as in PVE's `net0: name=eth0,...`.
    pub(crate) fn ct_net_up(&self, spec: &StartSpec) -> Result<(String, String)> {
        let br = self.net.bridge();
        if !link_exists(&br) {
            return Err(RuntimeError::NetworkDown { bridge: br }.into());
        }
        let ns = self.netns_name(spec.vmid);
        let veth = self.veth_name(spec.vmid);
        self.ct_net_down(spec.vmid);
        cmd::run(tool("ip").args(["netns", "add", &ns]))?;
        cmd::run(tool("ip").args([
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]))?;
        if let Some(mtu) = spec.mtu {
            let mtu = mtu.to_string();
            cmd::run(tool("ip").args(["link", "set", &veth, "mtu", &mtu]))?;
            cmd::run(tool("ip").args(["-n", &ns, "link", "set", "eth0", "mtu", &mtu]))?;
        }
        cmd::run(tool("ip").args(["link", "set", &veth, "master", &br, "up"]))?;
        cmd::run(tool("ip").args(["-n", &ns, "link", "set", "lo", "up"]))?;
        if let Some(hw) = &spec.hwaddr {
            validate_mac(hw)?;
            cmd::run(tool("ip").args(["-n", &ns, "link", "set", "eth0", "address", hw]))?;
        }
        cmd::run(tool("ip").args(["-n", &ns, "link", "set", "eth0", "up"]))?;
        if let Some((ip, len)) = spec.ip {
            if len > 32 {
                return Err(RuntimeError::InvalidSpec {
                    field: "ip",
                    value: format!("{ip}/{len}"),
                    help: "the prefix length of an IPv4 address is 0..=32, e.g. 10.77.0.100/24",
                }
                .into());
            }
            cmd::run(tool("ip").args([
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ip}/{len}"),
                "dev",
                "eth0",
            ]))?;
            if let Some(gw) = spec.gw {
                let gw = gw.to_string();
                cmd::run(tool("ip").args([
                    "-n", &ns, "route", "add", "default", "via", &gw, "dev", "eth0",
                ]))?;
            }
        }
        Ok((ns, veth))
    }

    /// Best effort: removes a container's netns and veth if present.
    pub(crate) fn ct_net_down(&self, vmid: u32) {
        let ns = self.netns_name(vmid);
        let veth = self.veth_name(vmid);
        if Path::new("/run/netns").join(&ns).exists() {
            let _ = cmd::run(tool("ip").args(["netns", "del", &ns]));
        }
        if link_exists(&veth) {
            let _ = cmd::run(tool("ip").args(["link", "del", &veth]));
        }
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn ct_ipv4(&self, vmid: u32) -> Result<Vec<(String, String, Vec<(Ipv4Addr, u8)>)>> {
        let ns = self.netns_name(vmid);
        let out = cmd::run(tool("ip").args(["-n", &ns, "-j", "addr", "show"]))?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("parsing `ip -j addr show` output")?;
        let mut res = Vec::new();
        for link in v.as_array().map(|a| a.as_slice()).unwrap_or_default() {
            let name = link["ifname"].as_str().unwrap_or_default().to_string();
            let hw = link["address"].as_str().unwrap_or_default().to_string();
            let addrs = link["addr_info"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .filter(|a| a["family"] == "inet")
                .filter_map(|a| {
                    let ip: Ipv4Addr = a["local"].as_str()?.parse().ok()?;
                    let len = u8::try_from(a["prefixlen"].as_u64()?).ok()?;
                    Some((ip, len))
                })
                .collect();
            res.push((name, hw, addrs));
        }
        Ok(res)
    }

    /// (into the container, out of the container) bytes, seen from the host veth.
    pub(crate) fn ct_net_counters(&self, vmid: u32) -> (u64, u64) {
        let base = Path::new("/sys/class/net")
            .join(self.veth_name(vmid))
            .join("statistics");
        let read = |f: &str| -> u64 {
            std::fs::read_to_string(base.join(f))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        (read("tx_bytes"), read("rx_bytes"))
    }
}

pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub(crate) fn nft_table_exists(name: &str) -> bool {
    let mut c = tool("nft");
    c.args(["list", "tables"]);
    cmd::output(&mut c)
        .map(|o| {
            cmd::stdout_str(&o)
                .lines()
                .any(|l| l.trim() == format!("table ip {name}"))
        })
        .unwrap_or(false)
}

fn nft_apply(script: &str) -> Result<()> {
    use std::io::Write;
    let mut c = tool("nft");
    c.args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| cmd::spawn_error(&c, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("writing the ruleset to `nft -f -`")?;
    }
    let out = child.wait_with_output().context("waiting for `nft -f -`")?;
    if !out.status.success() {
        return Err(cmd::failed(&c, &out).into());
    }
    Ok(())
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn validate_mac(hw: &str) -> Result<(), RuntimeError> {
    let ok = hw.len() == 17
        && hw.split(':').count() == 6
        && hw
            .split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        // The I/G bit set would make it a multicast address, which a NIC cannot have.
        && u8::from_str_radix(&hw[..2], 16).is_ok_and(|b| b & 1 == 0);
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidSpec {
            field: "hwaddr",
            value: hw.to_string(),
            help: "use a unicast MAC like BC:24:11:2A:3B:4C (6 hex pairs, first octet even)",
        })
    }
}
