//! Layers are defined by what is absent: only the coordinator's `raft` and `storage`
//! modules (and `types.rs`, the openraft type configuration they share) name openraft or
//! RocksDB, and the wire-types crate depends on serde alone
//! (plus utoipa behind the server-only `openapi` feature).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_raft_and_storage_name_openraft_or_rocksdb() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        // types.rs is the openraft type configuration both of them share.
        if rel.starts_with("raft") || rel.starts_with("storage") || rel == Path::new("types.rs") {
            continue;
        }
        checked += 1;
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
        {
            for word in ["openraft", "rocksdb"] {
                assert!(
                    !line.contains(word),
                    "{}:{} names {word}; only raft/ and storage/ may",
                    rel.display(),
                    n + 1
                );
            }
        }
    }
    assert!(
        checked >= 10,
        "the http and cli modules were checked ({checked} files)"
    );
}

#[test]
fn the_api_crate_depends_on_serde_only() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/Cargo.toml"))
            .unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    let lines: Vec<&str> = deps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let name = |l: &str| l.split(['=', '.', ' ']).next().unwrap().to_owned();
    let required: Vec<String> = lines
        .iter()
        .filter(|l| !l.contains("optional = true"))
        .map(|l| name(l))
        .collect();
    assert_eq!(required, vec!["serde", "serde_json"]);
    // The OpenAPI derives are behind the `openapi` feature, which only the coordinator
    // turns on: clients build the wire types with serde alone.
    let optional: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("optional = true"))
        .map(|l| name(l))
        .collect();
    assert_eq!(optional, vec!["utoipa"]);
    for client in ["../worker/Cargo.toml", "../jepsen-style-tests/Cargo.toml"] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(client)).unwrap();
        assert!(
            !text.contains("openapi"),
            "{client} turns on the api's openapi feature"
        );
    }
}

/// States, event names and error codes are matched through `taskswarm_api`'s enums and
/// constants, never as string literals: a renamed state or code then fails to compile
/// instead of failing at run time. Checks the production code of every crate that speaks
/// the wire (unit-test modules and test files, which check the wire bytes, are skipped).
#[test]
fn no_state_or_code_is_matched_as_a_string_literal() {
    let names: Vec<&str> = taskswarm_api::TaskState::ALL
        .iter()
        .map(|s| s.as_str())
        .chain(taskswarm_api::EventName::ALL.iter().map(|e| e.as_str()))
        .chain(taskswarm_api::ErrorCode::ALL.iter().map(|c| c.as_str()))
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["coordinator/src", "worker/src", "jepsen-style-tests/src"] {
        rust_files(&root.join(krate), &mut files);
    }
    let mut checked = 0;
    for file in files {
        if file.to_string_lossy().ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        checked += 1;
        for (n, line) in text
            .lines()
            .take_while(|l| l.trim() != "#[cfg(test)]")
            .enumerate()
        {
            for name in &names {
                let quoted = format!("\"{name}\"");
                let matched = [
                    format!("== {quoted}"),
                    format!("!= {quoted}"),
                    format!("{quoted} =>"),
                    format!("{quoted} |"),
                    format!("| {quoted}"),
                    format!("get({quoted})"),
                ];
                assert!(
                    !matched.iter().any(|m| line.contains(m.as_str())),
                    "{}:{}: matches {quoted} as a string; use taskswarm_api's enums or codes",
                    file.display(),
                    n + 1
                );
            }
        }
    }
    assert!(checked > 50, "{checked} files checked");
}
