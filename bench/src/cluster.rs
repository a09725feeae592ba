//! A system's cluster for one run, started and stopped by its peer script
//! (`peers/<system>.sh start|stop DIR`). The script records the PIDs it started in
//! DIR/pids and the client endpoints in DIR/endpoints; stopping touches only those PIDs
//! and their children. Dropping a `Cluster` stops it, so an error or Ctrl-C in the middle
//! of a run leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::system::System;

/// Longest a peer script may take to start a cluster (RabbitMQ needs ~30 s on 2 cores).
const START_TIMEOUT: Duration = Duration::from_secs(240);

#[derive(Debug)]
pub struct Cluster {
    system: System,
    script: PathBuf,
    pub dir: PathBuf,
    pub endpoints: Vec<String>,
    /// Roots of the server processes (the server CPU is their trees').
    pub pids: Vec<u32>,
    /// The server's version line, when the script found one.
    pub version: String,
    keep_dir: bool,
    stopped: bool,
}

impl Cluster {
    /// Starts `system` in a new directory under `scratch`.
    pub async fn start(
        peers_dir: &Path,
        system: System,
        scratch: &Path,
        env: &[(String, String)],
        keep_dir: bool,
    ) -> anyhow::Result<Cluster> {
        let script = peers_dir.join(system.script());
        if !script.is_file() {
            bail!("no peer script at {}", script.display());
        }
        let dir = fresh_dir(scratch, system)?;
        let mut cluster = Cluster {
            system,
            script,
            dir,
            endpoints: Vec::new(),
            pids: Vec::new(),
            version: String::new(),
            keep_dir,
            stopped: false,
        };
        match cluster.launch(env).await {
            Ok(()) => Ok(cluster),
            Err(e) => {
                // Dropping it stops whatever did start; the logs stay for a look.
                cluster.keep_dir = true;
                Err(e)
            }
        }
    }

    async fn launch(&mut self, env: &[(String, String)]) -> anyhow::Result<()> {
        let system = self.system;
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg(&self.script)
            .arg("start")
            .arg(&self.dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        let status = tokio::time::timeout(START_TIMEOUT, cmd.status())
            .await
            .with_context(|| format!("{} did not start within {START_TIMEOUT:?}", system.name()))?
            .context("running the peer script")?;
        if !status.success() {
            bail!(
                "{} start failed ({status}); logs in {}",
                system.name(),
                self.dir.display()
            );
        }
        self.endpoints = read_lines(&self.dir.join("endpoints"))?;
        self.pids = read_lines(&self.dir.join("pids"))?
            .iter()
            .map(|p| p.parse().with_context(|| format!("bad pid {p:?}")))
            .collect::<anyhow::Result<_>>()?;
        self.version = read_lines(&self.dir.join("version"))
            .ok()
            .and_then(|l| l.into_iter().next())
            .unwrap_or_default();
        if self.endpoints.is_empty() || self.pids.is_empty() {
            bail!("{} start recorded no endpoints or pids", system.name());
        }
        Ok(())
    }

    /// Keep the directory (data and logs) after stopping, e.g. after a failed run.
    pub fn keep(&mut self) {
        self.keep_dir = true;
    }

    /// Stops every recorded process and removes the directory (unless kept).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let status = std::process::Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("running the peer script's stop")?;
        if !status.success() {
            bail!(
                "{} stop failed ({status}); see {}",
                self.system.name(),
                self.dir.display()
            );
        }
        if !self.keep_dir {
            std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing {}", self.dir.display()))?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("loadgen: {e:#}");
        }
    }
}

/// An empty directory `scratch/<system>-<pid>-<n>` that no earlier run used.
fn fresh_dir(scratch: &Path, system: System) -> anyhow::Result<PathBuf> {
    /// Names tried before giving up (leftovers of earlier runs are skipped, not reused).
    const NAMES_MAX: u32 = 1_000;
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    for n in 0..NAMES_MAX {
        let dir = scratch.join(format!("{}-{}-{n}", system.name(), std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("no free directory name under {}", scratch.display())
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}
