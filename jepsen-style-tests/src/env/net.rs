//! The private network: a bridge in the harness's namespace and, per node, a namespace
//! joined to it by a veth pair. Clients in the harness reach the nodes over the bridge.
//!
//! Every function refuses to run outside the sandbox: these commands would otherwise
//! change the host's network.

use super::{cmd, sandbox, EnvError};

pub const BRIDGE: &str = "tsbr0";
/// The harness's address on the bridge.
pub const HARNESS_IP: &str = "10.77.0.1";
pub const PREFIX_LEN: u8 = 24;
/// Node i gets 10.77.0.(NODE_IP_OFFSET + i).
pub const NODE_IP_OFFSET: usize = 10;
/// Highest node id that fits in the /24 after the offset.
pub const MAX_NODES: usize = 200;
/// Port every node listens on inside its namespace.
pub const NODE_PORT: u16 = 7001;

pub fn ns_name(node: usize) -> String {
    format!("n{node}")
}

pub fn node_ip(node: usize) -> String {
    format!("10.77.0.{}", NODE_IP_OFFSET + node)
}

pub fn node_url(node: usize) -> String {
    format!("http://{}:{NODE_PORT}", node_ip(node))
}

fn guard() -> Result<(), EnvError> {
    if sandbox::inside() {
        Ok(())
    } else {
        Err(EnvError::NotSandboxed)
    }
}

/// Creates the bridge with the harness's address on it.
pub fn create_bridge() -> Result<(), EnvError> {
    guard()?;
    cmd::run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    cmd::run(
        "ip",
        &[
            "addr",
            "add",
            &format!("{HARNESS_IP}/{PREFIX_LEN}"),
            "dev",
            BRIDGE,
        ],
    )?;
    cmd::run("ip", &["link", "set", BRIDGE, "up"])?;
    Ok(())
}

/// Creates namespace `n{node}` with loopback up and a veth to the bridge.
pub fn create_node_ns(node: usize) -> Result<(), EnvError> {
    guard()?;
    if node == 0 || node > MAX_NODES {
        return Err(EnvError::NoSuchNode(node, MAX_NODES));
    }
    let ns = ns_name(node);
    let host_end = format!("tsv{node}");
    let ns_end = format!("tse{node}");
    cmd::run("ip", &["netns", "add", &ns])?;
    cmd::run(
        "ip",
        &[
            "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
        ],
    )?;
    cmd::run("ip", &["link", "set", &ns_end, "netns", &ns])?;
    cmd::run("ip", &["link", "set", &host_end, "master", BRIDGE, "up"])?;
    cmd::in_ns(
        &ns,
        "ip",
        &[
            "addr",
            "add",
            &format!("{}/{PREFIX_LEN}", node_ip(node)),
            "dev",
            &ns_end,
        ],
    )?;
    cmd::in_ns(&ns, "ip", &["link", "set", &ns_end, "up"])?;
    cmd::in_ns(&ns, "ip", &["link", "set", "lo", "up"])?;
    Ok(())
}
