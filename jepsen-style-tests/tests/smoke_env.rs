//! The real environment, end to end: `jepsen-run --smoke` in namespaces. Needs root,
//! unshare, iproute2, nftables and a release `taskswarm` binary, hence ignored by default:
//! `cargo test --release -p jepsen-style-tests -- --ignored` (with CARGO_TARGET_DIR set as
//! for the build, so the default `--taskswarm-bin` finds the binary).

use std::process::Command;

#[test]
#[ignore = "needs root, network namespaces and a release taskswarm binary"]
fn smoke_run_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_jepsen-run"))
        .arg("--smoke")
        .output()
        .expect("jepsen-run starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("smoke: PASSED"), "{stdout}");
}
