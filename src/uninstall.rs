//! `launch-tui uninstall NAME`: confirm (type the name, or `--yes`), then stop and destroy the
//! instance's container through the API (purge) and remove its record. Logs stay. With
//! `--keep-data` a final backup is taken (and verified) first; nothing is removed without it.

use std::time::Duration;

use anyhow::Context;

use crate::connect::connect;
use crate::engine::render::{log_root, operation_log_path, OperationViews};
use crate::engine::{execute, FnStep, Plan};
use crate::error::{LaunchError, Result};
use crate::instance::{Instance, InstanceStore};
use crate::prompt::{Prompter, Question};
use crate::pve::Client;
use crate::report::{Outcome, Output, Report};
use crate::site::Site;

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

/// What to remove, as plain data (no clap types): the CLI builds it from its flags, the
/// dashboard from its typed confirmation.
#[derive(Debug, Clone)]
pub struct UninstallRequest {
    pub name: String,
    /// Take (and verify) a final backup first; nothing is removed without it.
    pub keep_data: bool,
    /// Confirmed already (`--yes`, or the name typed in the dashboard): nothing is asked.
    pub confirmed: bool,
}

/// The name typed out, asked through `ask` (the front end's way of asking; None when nobody
/// can be asked, e.g. no terminal).
fn confirm(req: &UninstallRequest, ask: Option<&mut dyn Prompter>) -> Result<()> {
    let name = req.name.as_str();
    if req.confirmed {
        return Ok(());
    }
    let Some(ask) = ask else {
        return Err(LaunchError::bad_input(
            format!("uninstall {name}"),
            "removing an instance needs confirmation and there is no terminal to ask on",
            "pass --yes to confirm",
        ));
    };
    let prompt = format!(
        "This destroys the container of `{name}` and everything in it. Type the name to confirm:"
    );
    let typed = ask
        .text(&Question::new("confirm_name", &prompt))
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

/// Uninstalls `req.name`; a confirmation it still needs is asked through `ask`.
pub fn run(
    g: &Site,
    req: &UninstallRequest,
    ask: Option<&mut dyn Prompter>,
    out: &Output,
) -> Result<Outcome> {
    let store = InstanceStore::new(&g.config);
    let inst = store.load(&req.name)?;
    confirm(req, ask)?;
    let mut keep = None;
    let mut lock = None;
    if req.keep_data {
        let loaded = crate::profile::Catalog::new(&g.config).load(&inst.profile)?;
        let pct = crate::ct::Pct::find()?;
        let vmid = inst.container.vmid;
        lock = Some(
            crate::oplock::lock_instance(
                &req.name,
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
        out.warn(w);
    }
    let vmid = inst.container.vmid;
    let node = inst.container.node.clone();
    let log_path = operation_log_path(&req.name, "uninstall");
    let mut plan = Plan::new("uninstall", Some(req.name.clone()));
    if req.keep_data {
        plan = plan.step(FnStep::new(
            "final-backup",
            format!("Taking a final backup of {} (--keep-data)", req.name),
            |c: &mut Ctx, rep| {
                let (ct, loaded) = c.keep.as_ref().context("no container access")?;
                let dir = crate::backup::default_dir(&c.inst.name);
                let r = crate::backup::take::take(
                    ct.as_ref(),
                    &c.inst,
                    loaded,
                    &dir,
                    crate::backup::archive::Compression::Zstd,
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
            req.name,
            log_path.display()
        ))
    })?;
    drop(ctx.lock.take());
    let logs = log_root().join(&req.name);
    Ok(Outcome::of(&UninstallReport {
        instance: req.name.clone(),
        vmid,
        node,
        logs,
        kept_archive: ctx.kept.as_ref().map(|k| k.path.clone()),
        kept_size: ctx.kept.as_ref().map(|k| k.size),
    }))
}

/// An instance removed: its container destroyed and purged, its record gone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UninstallReport {
    pub instance: String,
    pub vmid: u32,
    pub node: String,
    /// The operation logs, which stay.
    pub logs: std::path::PathBuf,
    /// The final, verified backup `--keep-data` took.
    pub kept_archive: Option<std::path::PathBuf>,
    #[serde(skip)]
    pub kept_size: Option<u64>,
}

impl Report for UninstallReport {
    fn text(&self) -> String {
        let mut text = format!(
            "Removed {name}: container {vmid} on {node} (destroyed, purged) and its record.\n  kept: the logs in {logs}",
            name = self.instance,
            vmid = self.vmid,
            node = self.node,
            logs = self.logs.display()
        );
        if let Some(path) = &self.kept_archive {
            text.push_str(&format!(
                "\n  kept: the data in {path} ({size} bytes, verified)\n  reinstall from it: launch-tui restore {name} {path} --to-new {name}",
                path = path.display(),
                size = self.kept_size.unwrap_or(0),
                name = self.instance
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Types what it was given, and remembers that it was asked.
    struct Typist(&'static str, bool);

    impl Prompter for Typist {
        fn text(&mut self, _q: &Question) -> anyhow::Result<String> {
            self.1 = true;
            Ok(self.0.into())
        }
        fn select(&mut self, _q: &Question, _o: &[String]) -> anyhow::Result<String> {
            anyhow::bail!("not asked")
        }
        fn confirm(&mut self, _k: &str, _p: &str, _d: bool) -> anyhow::Result<bool> {
            anyhow::bail!("not asked")
        }
    }

    fn req(confirmed: bool) -> UninstallRequest {
        UninstallRequest {
            name: "tasks".into(),
            keep_data: false,
            confirmed,
        }
    }

    #[test]
    fn the_confirmation_is_asked_through_the_front_ends_prompter() {
        let mut t = Typist("tasks", false);
        confirm(&req(false), Some(&mut t)).unwrap();
        assert!(t.1, "the name was not asked for");

        let mut wrong = Typist("taskz", false);
        let e = confirm(&req(false), Some(&mut wrong)).unwrap_err();
        assert_eq!(e.exit_code() as i32, 2);
        assert!(e.to_string().contains("nothing was removed"), "{e}");

        let e = confirm(&req(false), None).unwrap_err();
        assert!(e.to_string().contains("pass --yes"), "{e}");

        let mut never = Typist("", false);
        confirm(&req(true), Some(&mut never)).unwrap();
        assert!(!never.1, "a confirmed request asked again");
    }
}
