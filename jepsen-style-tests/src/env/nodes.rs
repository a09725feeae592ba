//! The `taskswarm node` processes, one per namespace, and the process faults on them:
//! SIGKILL + restart, SIGSTOP + SIGCONT, SIGTERM (bounded) + start again, possibly from
//! another binary, and a dead node's disk deleted (it starts again empty).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::history::NemesisType;

use super::faults::FaultEvent;
use super::{cmd, net, EnvError};

/// Nodes run with the default Raft timings (the recovery targets are about defaults);
/// this is the default `--election-max-ms`, which faults must outlast.
pub const ELECTION_MAX_MS: u64 = 800;
/// A write a cut-off leader cannot commit is answered `indeterminate` after this.
pub const WRITE_TIMEOUT_MS: u64 = 2_000;
/// How long SIGSTOP / SIGCONT may take to show in /proc before the fault is "not effective".
pub const SIGNAL_VERIFY_TIMEOUT: Duration = Duration::from_secs(2);
const SIGNAL_VERIFY_POLL: Duration = Duration::from_millis(20);
/// How long a node gets to exit after SIGTERM before it is SIGKILLed: it answers
/// in-flight writes first, and one can wait [`WRITE_TIMEOUT_MS`] for its commit. The same
/// bound `taskswarm dev` gives its nodes.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
const _: () = assert!(STOP_GRACE.as_millis() > WRITE_TIMEOUT_MS as u128);
const STOP_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct NodesConfig {
    pub count: usize,
    /// The `taskswarm` binary every node starts from (see [`Nodes::set_bin`]).
    pub bin: PathBuf,
    /// Data directories (`node-{i}/`) and logs (`node-{i}.log`) go here.
    pub run_dir: PathBuf,
    pub cluster_secret: String,
    /// Appended to every node's command line (e.g. faster snapshots).
    pub extra_args: Vec<String>,
    /// libfaketime's shared object: when set, every node runs under it with its wall
    /// clock offset read from `node-{i}.faketime` (see [`Nodes::set_clock_offset`]).
    pub faketime_lib: Option<PathBuf>,
}

/// Where Debian's `libfaketime` package puts the multithreaded variant (tokio runs
/// threads, so the plain one is not safe).
pub const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
/// libfaketime re-reads the offset file at most this often (seconds): a jump shows
/// within a second without a file read on every clock call.
const FAKETIME_CACHE_S: &str = "1";

/// The cluster's processes. Node ids are 1..=count; node i runs in namespace `n{i}`.
#[derive(Debug)]
pub struct Nodes {
    cfg: NodesConfig,
    procs: Vec<Option<Child>>,
    /// The binary each node starts from, per node: an upgrade (or a rollback) moves one
    /// node at a time, and a node keeps its binary across kills and restarts.
    bins: Vec<PathBuf>,
    epoch: Instant,
}

/// How a graceful stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// From SIGTERM until the process was reaped (SIGKILL included).
    pub exit_ms: u64,
    /// It outlived [`STOP_GRACE`] and was SIGKILLed.
    pub killed: bool,
    /// Reaped: the process is verifiably gone.
    pub effective: bool,
}

/// What a graceful stop does next, `waited` after its SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopStep {
    Done,
    Wait,
    Kill,
}

/// Exited is done, however late; otherwise wait out the grace, then SIGKILL.
pub(crate) fn stop_step(exited: bool, waited: Duration, grace: Duration) -> StopStep {
    if exited {
        StopStep::Done
    } else if waited < grace {
        StopStep::Wait
    } else {
        StopStep::Kill
    }
}

/// Whether `path` can be a node's binary: an existing file with an execute bit. Checked
/// before the cluster starts, so a typo is an argument error, not a node that never
/// comes back mid-run.
pub fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|_| format!("no file at {}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not executable", path.display()));
    }
    Ok(())
}

impl Nodes {
    /// Builds the network (bridge, one namespace per node) and starts every node.
    pub fn create(cfg: NodesConfig) -> Result<Nodes, EnvError> {
        if cfg.count == 0 || cfg.count > net::MAX_NODES {
            return Err(EnvError::NoSuchNode(cfg.count, net::MAX_NODES));
        }
        std::fs::create_dir_all(&cfg.run_dir)?;
        net::create_bridge()?;
        for node in 1..=cfg.count {
            net::create_node_ns(node)?;
        }
        let mut nodes = Nodes {
            procs: (0..cfg.count).map(|_| None).collect(),
            bins: vec![cfg.bin.clone(); cfg.count],
            cfg,
            epoch: Instant::now(),
        };
        for node in 1..=nodes.cfg.count {
            nodes.start(node)?;
        }
        Ok(nodes)
    }

    /// When the environment was created: fault events' `time_ms` count from here.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    pub fn count(&self) -> usize {
        self.cfg.count
    }

    pub fn url(&self, node: usize) -> String {
        net::node_url(node)
    }

    /// Where `node` keeps its Raft log, vote and snapshots (`--data-dir`).
    pub fn data_dir(&self, node: usize) -> PathBuf {
        self.cfg.run_dir.join(format!("node-{node}"))
    }

    /// Node `node`'s log, opened for appending (its stderr, and the harness's own lines).
    fn open_log(&self, node: usize) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(node))
    }

    pub fn log_path(&self, node: usize) -> PathBuf {
        self.cfg.run_dir.join(format!("node-{node}.log"))
    }

    pub fn running(&self) -> Vec<usize> {
        (1..=self.cfg.count)
            .filter(|n| self.procs[n - 1].is_some())
            .collect()
    }

    fn check(&self, node: usize) -> Result<(), EnvError> {
        if node == 0 || node > self.cfg.count {
            return Err(EnvError::NoSuchNode(node, self.cfg.count));
        }
        Ok(())
    }

    fn peers(&self) -> String {
        (1..=self.cfg.count)
            .map(|n| format!("{n}={}", net::node_url(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The binary `node` starts from.
    pub fn bin(&self, node: usize) -> Result<&Path, EnvError> {
        self.check(node)?;
        Ok(&self.bins[node - 1])
    }

    /// The binary every node started from (the way back after an upgrade).
    pub fn initial_bin(&self) -> &Path {
        &self.cfg.bin
    }

    /// Sets the binary `node` starts from at its next start; a running node is not
    /// touched. Its flags and data directory stay the same.
    pub fn set_bin(&mut self, node: usize, bin: &Path) -> Result<(), EnvError> {
        self.check(node)?;
        self.bins[node - 1] = bin.to_path_buf();
        Ok(())
    }

    /// Starts node `node` in its namespace; its data directory survives restarts.
    pub fn start(&mut self, node: usize) -> Result<(), EnvError> {
        self.check(node)?;
        if self.procs[node - 1].is_some() {
            return Err(EnvError::AlreadyRunning(node));
        }
        let bin = self.bins[node - 1].clone();
        let data = self.data_dir(node);
        let mut log = self.open_log(node)?;
        // Which binary wrote what follows: after an upgrade the log holds two.
        {
            use std::io::Write;
            writeln!(
                log,
                "jepsen-run: starting node {node} from {}",
                bin.display()
            )?;
        }
        let listen = format!("{}:{}", net::node_ip(node), net::NODE_PORT);
        let mut command = Command::new("ip");
        if let Some(lib) = &self.cfg.faketime_lib {
            let offset_file = self.clock_file(node);
            if !offset_file.exists() {
                std::fs::write(&offset_file, clock_spec(0))?;
            }
            // Only the wall clock moves: real clocks jump, monotonic ones do not.
            command
                .env("LD_PRELOAD", lib)
                .env("FAKETIME_TIMESTAMP_FILE", &offset_file)
                .env("FAKETIME_CACHE_DURATION", FAKETIME_CACHE_S)
                .env("DONT_FAKE_MONOTONIC", "1");
        }
        // `ip netns exec` execs the program in place, so the child's pid is the node's:
        // signals sent to it reach the node itself.
        let child = command
            .args(["netns", "exec", &net::ns_name(node)])
            .arg(&bin)
            .arg("node")
            .args([
                "--id",
                &node.to_string(),
                "--listen",
                &listen,
                "--peers",
                &self.peers(),
            ])
            .arg("--data-dir")
            .arg(&data)
            .args(["--cluster-secret", &self.cfg.cluster_secret])
            .args(["--write-timeout-ms", &WRITE_TIMEOUT_MS.to_string()])
            .args(&self.cfg.extra_args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| EnvError::Spawn {
                cmd: format!("ip netns exec n{node} {}", bin.display()),
                source,
            })?;
        self.procs[node - 1] = Some(child);
        Ok(())
    }

    fn clock_file(&self, node: usize) -> PathBuf {
        self.cfg.run_dir.join(format!("node-{node}.faketime"))
    }

    /// Moves `node`'s wall clock by `offset_s` from real time (0 puts it back). Takes
    /// effect within libfaketime's cache period; verify from outside (the `wall_ms` of its status).
    pub fn set_clock_offset(&self, node: usize, offset_s: i64) -> Result<(), EnvError> {
        self.check(node)?;
        if self.cfg.faketime_lib.is_none() {
            return Err(EnvError::NoFaketime);
        }
        // Overwritten in place at a fixed width, never renamed or truncated: libfaketime
        // keeps reading the file it first opened, and must never see it empty or half
        // written (it would read "no offset", an unplanned jump).
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.clock_file(node))?;
        file.write_all(clock_spec(offset_s).as_bytes())?;
        Ok(())
    }

    /// SIGKILL: nothing that was not already durable survives.
    pub fn kill(&mut self, node: usize) -> Result<FaultEvent, EnvError> {
        self.check(node)?;
        let mut child = self.procs[node - 1]
            .take()
            .ok_or(EnvError::NotRunning(node))?;
        child.kill()?;
        // Reaped: the process is verifiably gone.
        let effective = child.wait().is_ok();
        Ok(FaultEvent::new(
            NemesisType::Start,
            "kill",
            vec![net::ns_name(node)],
            self.epoch,
            effective,
        ))
    }

    /// Deletes a stopped node's whole data directory: the disk of a dead machine that is
    /// replaced. Its next [`Nodes::start`] starts it empty, with the same flags. Refused
    /// while it runs (a live node losing its disk is not a fault Raft survives). Whether
    /// the directory is verifiably gone; the node's log says it happened, so its log
    /// reads in order across the replacement.
    pub fn wipe_data(&mut self, node: usize) -> Result<bool, EnvError> {
        self.check(node)?;
        if self.procs[node - 1].is_some() {
            return Err(EnvError::AlreadyRunning(node));
        }
        let data = self.data_dir(node);
        match std::fs::remove_dir_all(&data) {
            Ok(()) => {}
            // Never written yet is as empty as deleted.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        {
            use std::io::Write;
            writeln!(
                self.open_log(node)?,
                "jepsen-run: deleted node {node}'s data directory {}",
                data.display()
            )?;
        }
        Ok(!data.exists())
    }

    /// SIGTERM, then waits for the exit up to `grace` and SIGKILLs after it. The node is
    /// not running afterwards either way; [`Nodes::start`] brings it back.
    pub fn stop_gracefully(&mut self, node: usize, grace: Duration) -> Result<Stopped, EnvError> {
        let pid = self.pid(node)?;
        let sent = Instant::now();
        cmd::run("kill", &["-TERM", &pid.to_string()])?;
        let mut child = self.procs[node - 1]
            .take()
            .ok_or(EnvError::NotRunning(node))?;
        let mut killed = false;
        let effective = loop {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            match stop_step(exited, sent.elapsed(), grace) {
                StopStep::Done => break true,
                StopStep::Wait => std::thread::sleep(STOP_POLL),
                StopStep::Kill => {
                    killed = true;
                    let _ = child.kill();
                    break child.wait().is_ok();
                }
            }
        };
        Ok(Stopped {
            exit_ms: u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX),
            killed,
            effective,
        })
    }

    /// Starts a killed node again; the stop record of its `kill` fault.
    pub fn restart(&mut self, node: usize) -> Result<FaultEvent, EnvError> {
        self.start(node)?;
        Ok(FaultEvent::new(
            NemesisType::Stop,
            "kill",
            vec![net::ns_name(node)],
            self.epoch,
            true,
        ))
    }

    /// SIGSTOP: the node keeps its sockets but answers nothing, like a long GC pause.
    pub fn pause(&mut self, node: usize) -> Result<FaultEvent, EnvError> {
        let pid = self.pid(node)?;
        cmd::run("kill", &["-STOP", &pid.to_string()])?;
        let effective = wait_state(pid, true);
        Ok(FaultEvent::new(
            NemesisType::Start,
            "pause",
            vec![net::ns_name(node)],
            self.epoch,
            effective,
        ))
    }

    /// SIGCONT.
    pub fn resume(&mut self, node: usize) -> Result<FaultEvent, EnvError> {
        let pid = self.pid(node)?;
        cmd::run("kill", &["-CONT", &pid.to_string()])?;
        let effective = wait_state(pid, false);
        Ok(FaultEvent::new(
            NemesisType::Stop,
            "pause",
            vec![net::ns_name(node)],
            self.epoch,
            effective,
        ))
    }

    fn pid(&self, node: usize) -> Result<u32, EnvError> {
        self.check(node)?;
        self.procs[node - 1]
            .as_ref()
            .map(Child::id)
            .ok_or(EnvError::NotRunning(node))
    }

    /// The last `lines` lines of a node's log, for error messages.
    pub fn log_tail(&self, node: usize, lines: usize) -> String {
        tail(&self.log_path(node), lines)
    }
}

impl Drop for Nodes {
    /// The pid namespace kills everything when the harness exits anyway; this only makes
    /// a dropped environment stop at once inside a longer-lived harness.
    fn drop(&mut self) {
        for child in self.procs.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// libfaketime's offset spec, always the same width (see `set_clock_offset`).
fn clock_spec(offset_s: i64) -> String {
    format!("{offset_s:+012}\n")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether /proc shows the process stopped (`T`), polled until it matches `stopped`.
pub(crate) fn wait_state(pid: u32, stopped: bool) -> bool {
    let deadline = Instant::now() + SIGNAL_VERIFY_TIMEOUT;
    loop {
        if is_stopped(pid) == Some(stopped) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(SIGNAL_VERIFY_POLL);
    }
}

fn is_stopped(pid: u32) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself contain spaces.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    Some(state == "T" || state == "t")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graceful_stop_waits_out_the_grace_then_kills() {
        let grace = Duration::from_secs(10);
        assert_eq!(stop_step(false, Duration::ZERO, grace), StopStep::Wait);
        assert_eq!(
            stop_step(false, Duration::from_millis(9_999), grace),
            StopStep::Wait
        );
        assert_eq!(stop_step(false, grace, grace), StopStep::Kill);
        // An exit seen late is still an exit, not a kill.
        assert_eq!(
            stop_step(true, Duration::from_secs(60), grace),
            StopStep::Done
        );
        assert_eq!(stop_step(true, Duration::ZERO, grace), StopStep::Done);
    }
}
