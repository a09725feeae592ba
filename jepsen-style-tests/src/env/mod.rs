//! The environment a run happens in: a private network of namespaces on a bridge, one
//! `taskswarm node` per namespace, and the faults the nemeses inject into it.
//!
//! Everything lives inside a sandbox ([`sandbox`]) made of fresh net, mount and pid
//! namespaces, so that the host's network is never touched and nothing (namespaces,
//! paused processes) outlives the harness, even on panic or Ctrl-C.

pub mod client;
pub mod cmd;
pub mod faults;
pub mod net;
pub mod nodes;
pub mod sandbox;

pub use faults::{FaultEvent, Partitions};
pub use nodes::{Nodes, NodesConfig};

/// Why the environment could not be set up or a fault not be applied: a harness error,
/// which makes a run's verdict unknown (exit code 2), never an anomaly.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("`{cmd}` could not be started: {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: String,
        stderr: String,
    },
    #[error("refusing to change the network outside the sandbox (run through sandbox::enter)")]
    NotSandboxed,
    #[error("no node {0} (nodes are 1..={1})")]
    NoSuchNode(usize, usize),
    #[error("node {0} is not running")]
    NotRunning(usize),
    #[error("node {0} is already running")]
    AlreadyRunning(usize),
    #[error("the nodes were started without libfaketime (clock-skew needs it)")]
    NoFaketime,
    #[error("rolling-upgrade needs an upgrade binary (--upgrade-bin)")]
    NoUpgradeBin,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
