//! The sandbox: the harness re-executes itself inside
//! `unshare --net --mount --pid --fork --kill-child --mount-proc`.
//!
//! Why each flag: `--net` gives a private network (the bridge and veths never appear on
//! the host); `--mount` keeps the tmpfs on /run/netns, and with it every `ip netns`
//! handle, private to the sandbox; `--pid` makes the harness pid 1, so when it exits the
//! kernel kills every node, stopped ones included; `--kill-child` makes the outer
//! `unshare` take the harness down when it is itself killed. The outer process *execs*
//! `unshare` rather than spawning it, so there is no parent to leave an orphaned sandbox
//! behind when it is killed. When the last process of the
//! sandbox is gone its namespaces are freed: there is nothing to clean up, even after a
//! panic or Ctrl-C.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::{cmd, EnvError};

/// Set in the re-executed harness: "you are inside the sandbox".
pub const SANDBOX_ENV: &str = "TASKSWARM_JEPSEN_SANDBOX";
/// Where `ip netns` keeps its handles; a tmpfs private to the sandbox's mount namespace.
pub const NETNS_DIR: &str = "/run/netns";
const UNSHARE_FLAGS: [&str; 8] = [
    "--net",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--propagation",
    "private",
];

pub fn inside() -> bool {
    std::env::var_os(SANDBOX_ENV).is_some()
}

/// Outside the sandbox: replaces the current process by `unshare` running this binary
/// again with the same arguments, and returns only if that exec fails. Inside: prepares
/// the sandbox (tmpfs on /run/netns, loopback up) and returns `Ok`.
pub fn enter() -> Result<(), EnvError> {
    if inside() {
        return prepare();
    }
    let exe = std::env::current_exe()?;
    let source = Command::new("unshare")
        .args(UNSHARE_FLAGS)
        .arg(&exe)
        .args(std::env::args_os().skip(1))
        .env(SANDBOX_ENV, "1")
        .exec();
    Err(EnvError::Spawn {
        cmd: "unshare".into(),
        source,
    })
}

fn prepare() -> Result<(), EnvError> {
    // The mount point itself must exist on the underlying filesystem; the tmpfs on it is
    // only visible in this mount namespace.
    std::fs::create_dir_all(NETNS_DIR)?;
    if !Path::new(NETNS_DIR).exists() {
        return Err(EnvError::NotSandboxed);
    }
    cmd::run("mount", &["-t", "tmpfs", "taskswarm-netns", NETNS_DIR])?;
    cmd::run("ip", &["link", "set", "lo", "up"])?;
    Ok(())
}
