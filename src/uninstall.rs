//! `launch-tui uninstall NAME`: confirm (type the name, or `--yes`), then stop and destroy the
//! instance's container through the API (purge) and remove its record. Logs stay. With
//! `--keep-data` a final backup is taken (and verified) first; nothing is removed without it.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use crate::cli::{Global, UninstallArgs};
use crate::connect::connect;
use crate::engine::render::{log_root, operation_log_path, OperationViews};
use crate::engine::{execute, FnStep, Plan};
use crate::error::{LaunchError, Result};
use crate::instance::{Instance, InstanceStore};
use crate::pve::Client;
use crate::report::{Outcome, Output};

const TASK_TIMEOUT: Duration = Duration::from_secs(10 * 60);

struct Ctx {
    client: Client,
    inst: Instance,
    store: InstanceStore,
    /// For `--keep-data`: the container access, the profile, and the kept archive.
    keep: Option<(Box<dyn crate::ct::CtAccess>, crate::profile::LoadedProfile)>,
    kept: Option<crate::backup::BackupArchive>,
    lock: Option<crate::oplock::InstanceLock>,
}

fn wait(c: &Client, upid: &crate::pve::Upid) -> anyhow::Result<()> {
    c.wait_task(upid, TASK_TIMEOUT, &mut |_| {})?;
    Ok(())
}

fn confirm(g: &Global, name: &str) -> Result<()> {
    if g.yes {
        return Ok(());
    }
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(LaunchError::bad_input(
            format!("uninstall {name}"),
            "removing an instance needs confirmation and there is no terminal to ask on",
            "pass --yes to confirm",
        ));
    }
    let typed = inquire::Text::new(&format!(
        "This destroys the container of `{name}` and everything in it. Type the name to confirm:"
    ))
    .prompt()
    .map_err(|e| LaunchError::Failed(anyhow::anyhow!("cancelled: {e}")))?;
    if typed.trim() != name {
        return Err(LaunchError::bad_input(
            "confirmation",
            format!("`{}` is not `{name}`; nothing was removed", typed.trim()),
            "type the instance's name exactly, or pass --yes",
        ));
    }
    Ok(())
}

pub fn run(g: &Global, a: &UninstallArgs, out: &Output) -> Result<Outcome> {
    let store = InstanceStore::new(&g.config);
    let inst = store.load(&a.name)?;
    confirm(g, &a.name)?;
    let mut keep = None;
    let mut lock = None;
    if a.keep_data {
        let loaded = crate::profile::Catalog::new(&g.config).load(&inst.profile)?;
        let pct = crate::ct::Pct::find()?;
        let vmid = inst.container.vmid;
        lock = Some(
            crate::oplock::lock_instance(
                &a.name,
                "uninstall",
                Duration::ZERO,
                Box::new(crate::ct::Pct::find()?),
                vmid,
            )
            .map_err(|e| match e {
                LaunchError::Locked(_) => e,
                e => LaunchError::Failed(anyhow::anyhow!(
                    "cannot take the final backup, so nothing was removed: {e}\n  help: the container must be running for --keep-data (`pct start {vmid}`); or uninstall without --keep-data"
                )),
            })?,
        );
        keep = Some((Box::new(pct) as Box<dyn crate::ct::CtAccess>, loaded));
    }
    let conn = connect(g)?;
    if let Some(w) = conn.warning {
        eprintln!("{w}");
    }
    let vmid = inst.container.vmid;
    let node = inst.container.node.clone();
    let log_path = operation_log_path(&a.name, "uninstall");
    let mut plan = Plan::new("uninstall", Some(a.name.clone()));
    if a.keep_data {
        plan = plan.step(FnStep::new(
            "final-backup",
            format!("Taking a final backup of {} (--keep-data)", a.name),
            |c: &mut Ctx, rep| {
                let (ct, loaded) = c.keep.as_ref().context("no container access")?;
                let dir = crate::backup::default_dir(&c.inst.name);
                let r = crate::backup::take::take(
                    ct.as_ref(),
                    &c.inst,
                    loaded,
                    &dir,
                    crate::cli::Compression::Zstd,
                    "uninstall --keep-data",
                    rep,
                )
                .context("the final backup failed, so nothing was removed\n  help: fix the cause (is the container running? `pct start VMID`), or uninstall without --keep-data")?;
                rep.info(format!("kept {}", r.path.display()));
                c.kept = Some(r);
                Ok(())
            },
        ));
    }
    let plan = plan
        .step(FnStep::new(
            "stop-container",
            format!("Stopping container {vmid}"),
            move |c: &mut Ctx, rep| {
                match c.client.ct_status(&c.inst.container.node, vmid) {
                    Ok(st) if st.status == "running" => {
                        let upid = c.client.stop_ct(&c.inst.container.node, vmid)?;
                        wait(&c.client, &upid)?;
                        rep.info(format!("CT {vmid} stopped"));
                    }
                    Ok(_) => rep.info(format!("CT {vmid} was not running")),
                    Err(e) if e.to_string().contains("does not exist") => rep.warn(format!(
                        "CT {vmid} no longer exists on {}",
                        c.inst.container.node
                    )),
                    Err(e) => return Err(e.into()),
                }
                Ok(())
            },
        ))
        .step(FnStep::new(
            "destroy-container",
            format!("Destroying container {vmid} (purge)"),
            move |c: &mut Ctx, rep| {
                match c.client.ct_status(&c.inst.container.node, vmid) {
                    Err(e) if e.to_string().contains("does not exist") => return Ok(()),
                    Err(e) => return Err(e.into()),
                    Ok(_) => {}
                }
                let upid = c
                    .client
                    .delete_ct(&c.inst.container.node, vmid, true, false)
                    .context("cannot destroy the container")?;
                wait(&c.client, &upid)?;
                rep.info(format!("CT {vmid} destroyed"));
                Ok(())
            },
        ))
        .step(FnStep::new(
            "remove-record",
            "Removing the instance record",
            |c: &mut Ctx, rep| {
                let path = c.store.path_of(&c.inst.name);
                c.store.remove(&c.inst.name)?;
                rep.info(format!("removed {}", path.display()));
                Ok(())
            },
        ));
    let mut ctx = Ctx {
        client: conn.client,
        inst,
        store,
        keep,
        kept: None,
        lock: None,
    };
    // The lock's file lives in the container, which is gone afterwards: only the host lock
    // matters once the container is destroyed.
    ctx.lock = lock;
    let mut views = OperationViews::open(&log_path, out.json, out.verbose > 0, out.color)?;
    execute(plan, &mut ctx, &mut views.all(), true).map_err(|e| {
        LaunchError::Failed(anyhow::anyhow!(
            "uninstall of {} failed: {e}\n  log: {}",
            a.name,
            log_path.display()
        ))
    })?;
    drop(ctx.lock.take());
    let logs = log_root().join(&a.name);
    let kept = match &ctx.kept {
        Some(k) => format!(
            "\n  kept: the data in {path} ({size} bytes, verified)\n  reinstall from it: launch-tui restore {name} {path} --to-new {name}",
            path = k.path.display(),
            size = k.size,
            name = a.name
        ),
        None => String::new(),
    };
    Ok(Outcome::new(
        format!(
            "Removed {name}: container {vmid} on {node} (destroyed, purged) and its record.\n  kept: the logs in {logs}{kept}",
            name = a.name,
            logs = logs.display()
        ),
        json!({ "instance": a.name, "vmid": vmid, "node": node, "logs": logs,
                "kept_archive": ctx.kept.as_ref().map(|k| k.path.clone()) }),
    ))
}
