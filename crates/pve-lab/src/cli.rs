//! The `pve-lab` command line: parses arguments and hands each command to the library
//! (`daemon`, `pct`, `pvesh`), turning its result into an exit code and a readable error.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::daemon::{self, UpOptions};

#[derive(Parser, Debug)]
#[command(
    name = "pve-lab",
    version,
    about = "A local Proxmox VE stand-in: PVE's HTTPS API (validated against the official schema), pct and pvesh, with real Debian containers"
)]
pub struct Cli {
    /// State directory of this lab (configs, images, tokens, logs).
    #[arg(
        long,
        global = true,
        env = "PVE_LAB_STATE",
        default_value = "/var/lib/pve-lab"
    )]
    pub state: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// Prefix of every host-side name (bridge, veths, netns, nft table); at most 6 chars.
    #[arg(long, default_value = "plab0")]
    pub prefix: String,
    /// The lab's container network.
    #[arg(long, default_value = "10.77.0.0/24")]
    pub subnet: String,
    /// Template cache shared by labs.
    #[arg(long, default_value = "/var/cache/pve-lab")]
    pub cache: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the lab: network, API daemon, tokens, pct/pvesh wrappers.
    Up {
        #[arg(long, default_value_t = 8006)]
        port: u16,
        /// PVE version to pretend to be (picks the schema): 8, 9, or 8.0 (pve-container 5.0.8,
        /// whose `pct exec` has no `--keep-env`).
        #[arg(long, default_value = "8")]
        pve: String,
        /// API schema file (default: shared/pve-api/apidata.json or apidata-pve9.json).
        #[arg(long)]
        schema: Option<PathBuf>,
        /// Serve in this process instead of starting a background daemon.
        #[arg(long)]
        foreground: bool,
        /// Install missing host packages without asking.
        #[arg(long)]
        yes: bool,
        /// Delay of a failed authentication, as PVE's 3 s.
        #[arg(long, default_value_t = 3000)]
        auth_fail_delay_ms: u64,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Stop every container, the daemon and the network; check nothing remains.
    Down {
        #[command(flatten)]
        net: NetArgs,
    },
    /// Is the daemon running, and which containers exist.
    Status {
        #[command(flatten)]
        net: NetArgs,
    },
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Cluster nodes besides the lab's own.
    #[command(subcommand)]
    Node(NodeCmd),
    /// SDN: vnets of simple zones, carried by the lab's bridge.
    #[command(subcommand)]
    Sdn(SdnCmd),
    /// Inject failures into the running lab.
    #[command(subcommand)]
    Fault(FaultCmd),
    /// The lab's `pct` (exec, push, pull, status, enter).
    #[command(disable_help_flag = true)]
    Pct {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
    /// The lab's `pvesh` (get, create, set, delete).
    #[command(disable_help_flag = true)]
    Pvesh {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<OsString>,
    },
}

#[derive(Subcommand, Debug)]
pub enum SdnCmd {
    /// Adds the vnet NAME in ZONE: listed by the node's network (type vnet) and
    /// /cluster/sdn/vnets; a NIC on it needs SDN.Use on /sdn/zones/ZONE/NAME.
    Vnet {
        name: String,
        #[arg(long)]
        zone: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCmd {
    /// Adds a second, config-only cluster node: listed in the cluster, holds the configs of
    /// containers migrated to it (`POST .../migrate`), runs none of them.
    Add { name: String },
    /// Sets the CPU flags the node reports in `cpuinfo.flags` (as an older CPU, one without
    /// AVX, would); `--host` goes back to the host's own.
    CpuFlags {
        /// Space-separated flags, as in /proc/cpuinfo.
        #[arg(required_unless_present = "host")]
        flags: Option<String>,
        #[arg(long)]
        host: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Add a privilege-separated token `root@pam!NAME`; writes STATE/token-NAME.
    Add {
        name: String,
        /// Comma-separated PVE privileges granted on `/` (propagating), e.g. VM.Audit,Sys.Audit.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        privs: Vec<String>,
        /// PATH=PRIV,PRIV: granted on PATH and below (repeatable).
        #[arg(long, value_name = "PATH=PRIVS")]
        acl: Vec<String>,
        /// PATH=PRIV,PRIV: granted on PATH only, not propagated (repeatable).
        #[arg(long, value_name = "PATH=PRIVS")]
        acl_here: Vec<String>,
    },
    /// Set a resource pool's members: privileges on `/pool/NAME` reach them.
    Pool {
        name: String,
        /// Comma-separated CT IDs.
        #[arg(long, value_delimiter = ',')]
        vms: Vec<u32>,
        /// Comma-separated storage IDs.
        #[arg(long, value_delimiter = ',')]
        storage: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum FaultCmd {
    /// The next COUNT tasks of TYPE fail with EXITSTATUS.
    FailTask {
        #[arg(long = "type")]
        task_type: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long)]
        exitstatus: String,
    },
    /// Tasks of TYPE wait MS milliseconds before running (until `fault clear`).
    DelayTask {
        #[arg(long = "type")]
        task_type: String,
        #[arg(long)]
        ms: u64,
    },
    /// The next COUNT API requests (under PATH_PREFIX) get STATUS.
    Http {
        #[arg(long)]
        status: u16,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long)]
        path_prefix: Option<String>,
    },
    /// Fill the container's filesystem.
    FillDisk { vmid: u32 },
    /// Remove what fill-disk wrote.
    ClearDisk { vmid: u32 },
    /// SIGKILL the container's init.
    KillInit { vmid: u32 },
    /// Drop new connections from this host to the containers (a VLAN or firewall between them).
    BlockHost,
    /// Undo block-host.
    UnblockHost,
    /// Move every DHCP reservation (a router that lost its leases): each `ip=dhcp` container
    /// gets a new address the next time it asks (its restart, or its 2-minute lease's end).
    RenumberDhcp,
    /// Disarm every fault.
    Clear,
    /// Show armed faults.
    List,
}

fn fault_call(state: &std::path::Path, cmd: FaultCmd) -> anyhow::Result<()> {
    let p = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let (method, what, params) = match cmd {
        FaultCmd::FailTask {
            task_type,
            count,
            exitstatus,
        } => (
            "POST",
            "fault/fail-task",
            p(&[
                ("type", task_type),
                ("count", count.to_string()),
                ("exitstatus", exitstatus),
            ]),
        ),
        FaultCmd::DelayTask { task_type, ms } => (
            "POST",
            "fault/delay-task",
            p(&[("type", task_type), ("ms", ms.to_string())]),
        ),
        FaultCmd::Http {
            status,
            count,
            path_prefix,
        } => {
            let mut v = p(&[("status", status.to_string()), ("count", count.to_string())]);
            if let Some(pp) = path_prefix {
                v.push(("path-prefix".into(), pp));
            }
            ("POST", "fault/http", v)
        }
        FaultCmd::FillDisk { vmid } => {
            ("POST", "fault/fill-disk", p(&[("vmid", vmid.to_string())]))
        }
        FaultCmd::ClearDisk { vmid } => {
            ("POST", "fault/clear-disk", p(&[("vmid", vmid.to_string())]))
        }
        FaultCmd::KillInit { vmid } => {
            ("POST", "fault/kill-init", p(&[("vmid", vmid.to_string())]))
        }
        FaultCmd::BlockHost => ("POST", "fault/block-host", Vec::new()),
        FaultCmd::UnblockHost => ("POST", "fault/unblock-host", Vec::new()),
        FaultCmd::RenumberDhcp => ("POST", "fault/renumber-dhcp", Vec::new()),
        FaultCmd::Clear => ("POST", "fault/clear", Vec::new()),
        FaultCmd::List => ("GET", "faults", Vec::new()),
    };
    daemon::fault(state, method, what, &params)
}

/// Runs the command line; returns the process exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    if args
        .get(1)
        .is_some_and(|a| a == crate::runtime::nesting::INIT_ARG)
    {
        let e = crate::runtime::nesting::landlock_exec(&args[2..]);
        eprintln!("pve-lab: starting the container's init under Landlock failed: {e}");
        return 1;
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let state = cli.state;
    let result =
        match cli.command {
            Command::Pct { args } => return crate::pct::main(&state, args),
            Command::Pvesh { args } => return crate::pvesh::main(&state, args),
            Command::Up {
                port,
                pve,
                schema,
                foreground,
                yes,
                auth_fail_delay_ms,
                net,
            } => daemon::up(&UpOptions {
                state: state.clone(),
                port,
                cache: net.cache,
                pve,
                schema,
                foreground,
                yes,
                prefix: net.prefix,
                subnet: net.subnet,
                auth_fail_delay_ms,
            }),
            Command::Down { net } => daemon::down(&state, &net.cache, &net.prefix, &net.subnet),
            Command::Status { net } => daemon::status(&state, &net.cache, &net.prefix, &net.subnet),
            Command::Sdn(SdnCmd::Vnet { name, zone }) => {
                crate::api::sdn::add_vnet(&state, &name, &zone).map(|()| {
                    println!("vnet '{name}' in zone '{zone}' added (on the lab's bridge)");
                })
            }
            Command::Node(NodeCmd::CpuFlags { flags, host }) => {
                crate::api::node::set_cpu_flags(&state, if host { None } else { flags.as_deref() })
                    .map(|()| {
                        println!(
                            "the node reports {}",
                            if host {
                                "the host's CPU flags"
                            } else {
                                "the given CPU flags"
                            }
                        )
                    })
            }
            Command::Node(NodeCmd::Add { name }) => crate::api::cluster::add_peer(&state, &name)
                .map(|()| {
                    println!("node '{name}' added: config-only, it runs no container");
                }),
            Command::Token(TokenCmd::Add {
                name,
                privs,
                acl,
                acl_here,
            }) => daemon::token_add(&state, &name, &privs, &acl, &acl_here),
            Command::Token(TokenCmd::Pool { name, vms, storage }) => {
                crate::auth::set_pool(&state, &name, crate::auth::Pool { vms, storage })
            }
            Command::Fault(cmd) => fault_call(&state, cmd),
        };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pve-lab: error: {e:#}");
            1
        }
    }
}
