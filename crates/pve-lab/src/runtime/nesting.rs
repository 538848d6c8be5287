//! PVE's `nesting=0` in the lab. On PVE an unprivileged container without nesting may create a
//! mount namespace (it holds CAP_SYS_ADMIN in its user namespace) but AppArmor denies the
//! mounts that follow, so systemd fails units with namespace sandboxing (ProtectSystem,
//! PrivateTmp, ...) with 226/NAMESPACE. Landlock gives the same verdict here: a landlocked
//! process may `unshare`, and every `mount` it tries is refused with EPERM. The container's
//! init is started through `pve-lab __nesting0-init`, which restricts itself and execs
//! systemd; nspawn has mounted the container's API filesystems by then.
//!
//! Hand-written: two syscalls (landlock_create_ruleset, landlock_restrict_self) that no
//! maintained crate in this workspace wraps.

use std::ffi::OsString;

const SYS_LANDLOCK_CREATE_RULESET: libc::c_long = 444;
const SYS_LANDLOCK_RESTRICT_SELF: libc::c_long = 446;
/// The one access right the ruleset handles (and so forbids): making block devices, which a
/// container has no business doing. Every other file access stays as it was; what matters is
/// Landlock's rule that a restricted process cannot change the mount topology.
const LANDLOCK_ACCESS_FS_MAKE_BLOCK: u64 = 1 << 10;

/// The argv[1] that selects this entry point (see `cli::run`).
pub const INIT_ARG: &str = "__nesting0-init";

/// Restricts this process with Landlock, then execs `argv` (systemd). Returns only on error.
pub fn landlock_exec(argv: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let Some((prog, rest)) = argv.split_first() else {
        return std::io::Error::other("nothing to run");
    };
    let attr: u64 = LANDLOCK_ACCESS_FS_MAKE_BLOCK;
    // SAFETY: the attribute is a valid `struct landlock_ruleset_attr` (ABI 1: one u64) that
    // outlives the call; the kernel copies it.
    let fd = unsafe {
        libc::syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            &attr as *const u64,
            std::mem::size_of::<u64>(),
            0u32,
        )
    };
    if fd < 0 {
        return std::io::Error::last_os_error();
    }
    // SAFETY: plain prctl and syscall on our own process with a ruleset fd we own.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return std::io::Error::last_os_error();
        }
        if libc::syscall(SYS_LANDLOCK_RESTRICT_SELF, fd as libc::c_int, 0u32) != 0 {
            return std::io::Error::last_os_error();
        }
        libc::close(fd as libc::c_int);
    }
    std::process::Command::new(prog).args(rest).exec()
}
