//! Worker processes: the workload's workers run outside the harness so that the nemesis
//! can SIGSTOP one like any real process. Each is `jepsen-run worker ...`; it records its
//! operations to its own event file and stops when its stdin closes.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::nodes::wait_state;
use crate::env::{cmd, EnvError};

/// How long a worker gets to finish the task in hand after its stdin closes: a complete
/// that times out takes `WRITE_TIMEOUT` per retry.
pub const STOP_GRACE: Duration = Duration::from_secs(30);
const STOP_POLL: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct WorkerProcs {
    procs: Vec<Child>,
    /// Event file of each process, for the merge.
    pub event_files: Vec<PathBuf>,
}

impl WorkerProcs {
    /// Starts one process per `args` entry (the arguments after the binary); `events[i]`
    /// is where process i records.
    pub fn spawn(
        exe: &PathBuf,
        args: Vec<Vec<String>>,
        events: Vec<PathBuf>,
        log: &std::path::Path,
    ) -> Result<WorkerProcs, EnvError> {
        let mut procs = Vec::with_capacity(args.len());
        for a in args {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            let child = Command::new(exe)
                .args(&a)
                .stdin(Stdio::piped())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|source| EnvError::Spawn {
                    cmd: format!("{} {}", exe.display(), a.join(" ")),
                    source,
                })?;
            procs.push(child);
        }
        Ok(WorkerProcs {
            procs,
            event_files: events,
        })
    }

    /// No processes yet (they start once the cluster has a leader).
    pub fn none() -> WorkerProcs {
        WorkerProcs {
            procs: Vec::new(),
            event_files: Vec::new(),
        }
    }

    pub fn count(&self) -> usize {
        self.procs.len()
    }

    fn pid(&self, i: usize) -> Result<u32, EnvError> {
        self.procs
            .get(i)
            .map(Child::id)
            .ok_or(EnvError::NoSuchNode(i, self.procs.len()))
    }

    /// SIGSTOP worker process `i`; true when /proc shows it stopped.
    pub fn pause(&self, i: usize) -> Result<bool, EnvError> {
        let pid = self.pid(i)?;
        cmd::run("kill", &["-STOP", &pid.to_string()])?;
        Ok(wait_state(pid, true))
    }

    pub fn resume(&self, i: usize) -> Result<bool, EnvError> {
        let pid = self.pid(i)?;
        cmd::run("kill", &["-CONT", &pid.to_string()])?;
        Ok(wait_state(pid, false))
    }

    /// Closes every stdin (the signal to finish up), waits up to [`STOP_GRACE`], then
    /// kills what is left. Returns how many had to be killed.
    pub fn stop(&mut self) -> usize {
        for p in &mut self.procs {
            let _ = cmd::run("kill", &["-CONT", &p.id().to_string()]);
            drop(p.stdin.take());
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut killed = 0;
        for p in &mut self.procs {
            loop {
                if matches!(p.try_wait(), Ok(Some(_))) {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = p.kill();
                    let _ = p.wait();
                    killed += 1;
                    break;
                }
                std::thread::sleep(STOP_POLL);
            }
        }
        killed
    }
}

impl Drop for WorkerProcs {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}
