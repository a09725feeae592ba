//! The crate's layer rule, checked: serde and thiserror are its only dependencies, and
//! its source reads no clock, draws no random number and iterates no hash map.

use std::path::Path;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn depends_on_serde_and_thiserror_only() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table");
    let deps = deps.split("\n[").next().unwrap();
    let names: Vec<&str> = deps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(['=', '.', ' ']).next().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["serde", "thiserror"],
        "state-machine must stay pure"
    );
    for banned in ["tokio", "openraft", "rocksdb", "rand", "reqwest", "axum"] {
        assert!(
            !manifest.contains(banned),
            "state-machine must not name {banned}"
        );
    }
}

#[test]
fn source_reads_no_clock_and_no_randomness_and_no_hash_map() {
    let mut files = Vec::new();
    collect(&crate_dir().join("src"), &mut files);
    assert!(files.len() > 5, "found the sources");
    let banned = [
        "SystemTime",
        "Instant::now",
        "HashMap",
        "HashSet",
        "rand::",
        "thread_rng",
        "tokio",
        "std::env",
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Code only: the docs may say what the crate does without.
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
        {
            for word in banned {
                assert!(
                    !line.contains(word),
                    "{}:{} uses {word}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
