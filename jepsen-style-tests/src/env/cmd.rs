//! Running the `ip`, `nft` and `kill` tools: one place that turns a failed command into an
//! [`EnvError`] carrying its command line and stderr, so setup errors are diagnosable.

use std::io::Write;
use std::process::{Command, Stdio};

use super::EnvError;

fn describe(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `program args...` to completion; returns its stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String, EnvError> {
    run_with_stdin(program, args, None)
}

/// Like [`run`], feeding `stdin` (e.g. an nft script for `nft -f -`).
pub fn run_with_stdin(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, EnvError> {
    let cmd = describe(program, args);
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| EnvError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
        // Dropping the pipe closes it: nft reads to end of file.
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(EnvError::Command {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside the network namespace `ns` (`ip netns exec NS ...`).
pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<String, EnvError> {
    in_ns_with_stdin(ns, program, args, None)
}

pub fn in_ns_with_stdin(
    ns: &str,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, EnvError> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run_with_stdin("ip", &full, stdin)
}
