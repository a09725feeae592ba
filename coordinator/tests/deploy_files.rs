//! The deployment files (deploy/: compose, Kubernetes, systemd, Dockerfiles) use only
//! settings the binary has: every environment variable and flag they give a node is one
//! `taskswarm node --help` lists (and likewise for the compose worker). There is no
//! Kubernetes cluster or systemd here to run them; this keeps them from drifting.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (environment variables, flags) that `taskswarm SUBCOMMAND --help` lists.
fn help_of(subcommand: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_taskswarm"))
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let env = text
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split(['=', ']']).next().unwrap().trim().to_owned())
        .collect();
    let flags = words_starting(&text, "--");
    (env, flags)
}

fn words_starting(text: &str, prefix: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter_map(|w| w.strip_prefix(prefix))
        .map(|w| {
            w.split(['=', ' ', '<'])
                .next()
                .unwrap()
                .trim_end_matches('\\')
                .to_owned()
        })
        .filter(|w| !w.is_empty())
        .map(|w| format!("{prefix}{w}"))
        .collect()
}

/// YAML merge keys (`<<: *anchor`, which the compose files use) resolved: the parser
/// leaves them as plain keys. Keys of the mapping itself win over merged ones.
fn merged(y: &Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let mut out = yaml_rust2::yaml::Hash::new();
            if let Some(base) = h.get(&Yaml::String("<<".into())) {
                let bases = match base {
                    Yaml::Array(list) => list.clone(),
                    one => vec![one.clone()],
                };
                for base in bases {
                    if let Yaml::Hash(b) = merged(&base) {
                        out.extend(b);
                    }
                }
            }
            for (k, v) in h {
                if k.as_str() != Some("<<") {
                    out.insert(k.clone(), merged(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(list) => Yaml::Array(list.iter().map(merged).collect()),
        other => other.clone(),
    }
}

fn env_keys(service: &Yaml) -> BTreeSet<String> {
    service["environment"]
        .as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_known(what: &str, used: &BTreeSet<String>, known: &BTreeSet<String>) {
    let unknown: Vec<_> = used.difference(known).collect();
    assert!(
        unknown.is_empty(),
        "{what} uses settings the binary does not have: {unknown:?}"
    );
}

#[test]
fn compose_files_give_nodes_and_workers_only_settings_they_have() {
    let (node_env, _) = help_of("node");
    let (worker_env, _) = help_of("worker");
    for file in ["deploy/docker-compose.yml", "deploy/docker-compose.5.yml"] {
        let doc = &merged(&YamlLoader::load_from_str(&read(file)).unwrap()[0]);
        let services = doc["services"].as_hash().expect("services");
        let mut nodes = 0;
        for (name, service) in services {
            let name = name.as_str().unwrap();
            let env = env_keys(service);
            if name == "worker" {
                assert_known(&format!("{file} {name}"), &env, &worker_env);
                continue;
            }
            nodes += 1;
            assert_known(&format!("{file} {name}"), &env, &node_env);
            for required in [
                "TASKSWARM_ID",
                "TASKSWARM_PEERS",
                "TASKSWARM_CLUSTER_SECRET",
            ] {
                assert!(env.contains(required), "{file} {name} lacks {required}");
            }
            // Every peer is a service of this file, reachable by its hostname.
            let peers = service["environment"]["TASKSWARM_PEERS"].as_str().unwrap();
            for peer in peers.split(',') {
                let host = peer
                    .split("//")
                    .nth(1)
                    .and_then(|h| h.split(':').next())
                    .unwrap();
                assert!(
                    services.contains_key(&Yaml::String(host.to_owned())),
                    "{file}: peer {peer} is not a service"
                );
            }
            assert_eq!(
                peers.split(',').count(),
                services.len() - 1,
                "{file}: every node is a peer"
            );
        }
        assert!(nodes >= 3, "{file} has {nodes} nodes");
    }
}

#[test]
fn the_kubernetes_statefulset_uses_only_settings_the_node_has() {
    let (node_env, node_flags) = help_of("node");
    let docs = YamlLoader::load_from_str(&read("deploy/kubernetes/taskswarm.yaml")).unwrap();
    let set = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("StatefulSet"))
        .expect("a StatefulSet");
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(
        pod["securityContext"]["fsGroup"].as_i64(),
        Some(7001),
        "the data volume must be writable by the image's user"
    );
    let container = &pod["containers"][0];
    let image = container["image"].as_str().unwrap();
    assert!(
        !image.ends_with(":latest") && image.contains(':'),
        "pin the image: {image}"
    );
    assert!(container["imagePullPolicy"].as_str().is_some());
    let env: BTreeSet<String> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .filter(|n| n.starts_with("TASKSWARM_"))
        .map(str::to_owned)
        .collect();
    assert_known("the StatefulSet's env", &env, &node_env);
    let script = container["args"][0].as_str().unwrap();
    assert!(script.contains("taskswarm node"));
    assert_known(
        "the StatefulSet's command",
        &words_starting(script, "--"),
        &node_flags,
    );
}

#[test]
fn the_systemd_unit_and_the_dockerfiles_use_only_settings_the_node_has() {
    let (node_env, _) = help_of("node");
    for file in [
        "deploy/systemd/taskswarm.service",
        "deploy/Dockerfile",
        "deploy/Dockerfile.prebuilt",
    ] {
        let text = read(file);
        let used: BTreeSet<String> = text
            .split(|c: char| c.is_whitespace() || c == '#')
            .filter(|w| w.starts_with("TASKSWARM_") && w.contains('='))
            .map(|w| w.split('=').next().unwrap().to_owned())
            .collect();
        assert!(!used.is_empty(), "{file} sets no TASKSWARM_ variable?");
        assert_known(file, &used, &node_env);
    }
    let unit = read("deploy/systemd/taskswarm.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/taskswarm node"));
    assert!(
        unit.contains("DynamicUser=yes") || !unit.contains("User="),
        "the unit must not need a user that nothing creates"
    );
}
