//! The deployment files in `deploy/` parse, name only settings and metrics that exist, and say what the
//! issue of running Pawfile in production asks of them.

use crate::{
    documents::{pdf, with_a_pet},
    metrics::exposed_names,
    support::spawn_app,
};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every file under `deploy/`.
fn files() -> Vec<PathBuf> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, into);
            } else {
                into.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&deploy_dir(), &mut found);
    found.sort();
    found
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(relative))
        .unwrap_or_else(|err| panic!("deploy/{relative}: {err}"))
}

fn yaml(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative)).unwrap_or_else(|err| panic!("deploy/{relative}: {err}"))
}

fn json(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|err| panic!("deploy/{relative}: {err}"))
}

/// The environment variables `pawfile serve` reads, from its help.
fn settings() -> BTreeSet<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pawfile"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let settings: BTreeSet<String> = help
        .split("env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect();
    assert!(
        settings.len() > 40 && settings.contains("PAWFILE_METRICS_LISTEN"),
        "{settings:?}"
    );
    settings
}

/// Every `PAWFILE_…` name in `text`.
fn named_settings(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut at = 0;
    while let Some(found) = text[at..].find("PAWFILE_") {
        let start = at + found;
        let before = start.checked_sub(1).map(|i| bytes[i]);
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase() || bytes[end].is_ascii_digit() || bytes[end] == b'_')
        {
            end += 1;
        }
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            names.insert(text[start..end].trim_end_matches('_').to_owned());
        }
        at = end;
    }
    names
}

#[test]
fn every_file_in_deploy_parses_and_names_only_settings_that_exist() {
    let settings = settings();
    let files = files();
    for expected in [
        "compose.yaml",
        "kubernetes/deployment.yaml",
        "kubernetes/pdb.yaml",
        "kubernetes/secret.example.yaml",
        "prometheus/alerts.yaml",
        "aws/README.md",
        "aws/server-policy.json",
        "aws/backup-policy.json",
        "aws/backup-policy-hardened.json",
        "aws/documents-bucket-lifecycle.json",
    ] {
        assert!(
            files.contains(&deploy_dir().join(expected)),
            "deploy/{expected} is missing"
        );
    }
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.display().to_string();
        match path.extension().and_then(|extension| extension.to_str()) {
            Some("yaml" | "yml") => {
                let documents =
                    YamlLoader::load_from_str(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
                assert!(!documents.is_empty(), "{name} is empty");
            }
            Some("json") => {
                serde_json::from_str::<Value>(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
            }
            Some("toml") => {
                text.parse::<toml::Table>()
                    .unwrap_or_else(|err| panic!("{name}: {err}"));
            }
            Some("sh") => {
                let checked = std::process::Command::new("sh")
                    .args(["-n", &name])
                    .status()
                    .unwrap();
                assert!(checked.success(), "{name}: sh -n");
            }
            _ => {}
        }
        for setting in named_settings(&text) {
            // A family of settings written with a star (PAWFILE_S3_*) names a prefix that must exist.
            let exists = settings.contains(&setting)
                || (text.contains(&format!("{setting}_*"))
                    && settings
                        .iter()
                        .any(|known| known.starts_with(&format!("{setting}_"))));
            assert!(
                exists,
                "{name} names {setting}, which `pawfile serve` does not read"
            );
        }
    }
}

fn rules() -> Vec<Yaml> {
    let alerts = yaml("prometheus/alerts.yaml");
    alerts[0]["groups"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_vec().unwrap().clone())
        .collect()
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_alert_rules_watch_series_pawfile_exposes(pool: PgPool) {
    // Every family has a series once a file went up and came down.
    let setup = with_a_pet(spawn_app(pool).await).await;
    let address = &setup.app.address;
    setup.round_trip(address, address, pdf(2_000)).await;
    let text = reqwest::get(&setup.app.metrics_address)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exposed = exposed_names(&text);

    let rules = rules();
    let mut watched = BTreeSet::new();
    for rule in &rules {
        let alert = rule["alert"].as_str().unwrap();
        let expr = rule["expr"]
            .as_str()
            .unwrap_or_else(|| panic!("{alert} has no expr"));
        assert!(
            rule["labels"]["severity"].as_str().is_some(),
            "{alert} has no severity"
        );
        assert!(
            rule["annotations"]["summary"].as_str().is_some(),
            "{alert} has no summary"
        );
        let mut at = 0;
        while let Some(found) = expr[at..].find("pawfile_") {
            let start = at + found;
            let end = expr[start..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .map_or(expr.len(), |offset| start + offset);
            let series = &expr[start..end];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| series.strip_suffix(suffix))
                .unwrap_or(series);
            assert!(
                exposed.iter().any(|name| name == family),
                "{alert} watches {series}, which Pawfile does not expose"
            );
            watched.insert(family.to_owned());
            at = end;
        }
    }
    // What an operator must hear about.
    let expression = |series: &str| {
        rules
            .iter()
            .filter_map(|rule| rule["expr"].as_str())
            .filter(|expr| expr.contains(series))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert!(expression("pawfile_backup_last_success_timestamp_seconds").contains("26 * 3600"));
    assert!(expression("pawfile_backup_drill_last_success").contains("== 0"));
    assert!(expression("pawfile_integrity_flagged_documents").contains("> 0"));
    assert!(expression("pawfile_s3_requests_total").contains(r#"outcome="error""#));
    assert!(expression("pawfile_ready").contains("== 0"));
    assert!(watched.len() >= 8, "{watched:?}");
}

#[sqlx::test(migrator = "pawfile::db::MIGRATOR")]
async fn the_kubernetes_manifests_run_two_replicas_probing_endpoints_that_answer(pool: PgPool) {
    let deployment = &yaml("kubernetes/deployment.yaml")[0];
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    assert!(deployment["spec"]["replicas"].as_i64().unwrap() >= 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let readiness = container["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    let liveness = container["livenessProbe"]["httpGet"]["path"].as_str().unwrap();
    assert_eq!((readiness, liveness), ("/readyz", "/healthz"));
    let app = spawn_app(pool).await;
    for path in [readiness, liveness] {
        let answer = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
    }
    // The pod runs as the image's user.
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("USER "))
        .unwrap();
    let uid: i64 = user.split(':').next().unwrap().trim().parse().unwrap();
    assert_eq!(pod["securityContext"]["runAsUser"].as_i64(), Some(uid));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    // Its ports are the ones the settings listen on.
    // (a setting the ConfigMap leaves out keeps the image's value, from the Dockerfile's ENV)
    let config = &yaml("kubernetes/configmap.yaml")[0]["data"];
    let port_of = |setting: &str| -> i64 {
        let address = config[setting].as_str().map(str::to_owned).unwrap_or_else(|| {
            let assignment = format!("{setting}=");
            let at = dockerfile
                .find(&assignment)
                .unwrap_or_else(|| panic!("{setting} is set nowhere"));
            dockerfile[at + assignment.len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        });
        address.rsplit(':').next().unwrap().parse().unwrap()
    };
    let ports: Vec<(String, i64)> = container["ports"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|port| {
            (
                port["name"].as_str().unwrap().to_owned(),
                port["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(
        ports.contains(&("http".to_owned(), port_of("PAWFILE_LISTEN"))),
        "{ports:?}"
    );
    assert!(
        ports.contains(&("metrics".to_owned(), port_of("PAWFILE_METRICS_LISTEN"))),
        "{ports:?}"
    );
    let budget = &yaml("kubernetes/pdb.yaml")[0];
    assert_eq!(budget["kind"].as_str(), Some("PodDisruptionBudget"));
    let secret = &yaml("kubernetes/secret.example.yaml")[0];
    assert_eq!(secret["kind"].as_str(), Some("Secret"));
    // Replicas must sign backup objects with one key (otherwise each trusts only its own).
    assert!(
        secret["stringData"]["PAWFILE_BACKUP_SIGNING_KEY"]
            .as_str()
            .is_some(),
        "the Secret gives every replica the backup signing key"
    );
}

#[test]
fn the_compose_file_runs_pawfile_postgres_and_garage_with_a_second_key_for_backups() {
    let compose = &yaml("compose.yaml")[0];
    let services = &compose["services"];
    for service in ["pawfile", "postgres", "garage"] {
        assert!(
            !services[service].is_badvalue(),
            "compose.yaml has no {service} service"
        );
    }
    let pawfile = &services["pawfile"];
    let health: Vec<&str> = pawfile["healthcheck"]["test"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(health.contains(&"healthcheck"), "{health:?}");
    let environment = &pawfile["environment"];
    // Settings the services share come in through a YAML merge key (`<<: *storage`).
    let value = |name: &str| {
        [&environment[name], &environment["<<"][name]]
            .into_iter()
            .find_map(Yaml::as_str)
            .unwrap_or_else(|| panic!("compose.yaml: pawfile has no {name}"))
            .to_owned()
    };
    assert!(
        value("PAWFILE_BACKUP_SIGNING_KEY").contains("PAWFILE_BACKUP_SIGNING_KEY"),
        "compose.yaml takes the backup signing key from .env"
    );
    assert_ne!(
        value("PAWFILE_S3_ACCESS_KEY_ID"),
        value("PAWFILE_BACKUP_S3_ACCESS_KEY_ID"),
        "the backup bucket has its own key"
    );
}

#[test]
fn the_aws_policies_keep_each_key_to_its_bucket() {
    let actions = |policy: &Value, effect: &str| -> Vec<(String, String)> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|statement| statement["Effect"] == effect)
            .flat_map(|statement| {
                let list = |value: &Value| match value {
                    Value::String(one) => vec![one.clone()],
                    Value::Array(many) => many
                        .iter()
                        .map(|item| item.as_str().unwrap().to_owned())
                        .collect(),
                    _ => Vec::new(),
                };
                let resources = list(&statement["Resource"]);
                list(&statement["Action"]).into_iter().flat_map(move |action| {
                    resources
                        .clone()
                        .into_iter()
                        .map(move |resource| (action.clone(), resource))
                })
            })
            .collect()
    };
    let server = actions(&json("aws/server-policy.json"), "Allow");
    assert!(!server.is_empty());
    assert!(
        server
            .iter()
            .all(|(_, resource)| resource.contains("documents") && !resource.contains("backup")),
        "the server's key reaches only the documents bucket: {server:?}"
    );
    let backup = actions(&json("aws/backup-policy.json"), "Allow");
    assert!(
        backup.iter().all(|(_, resource)| resource.contains("backup")),
        "{backup:?}"
    );
    assert!(
        backup.iter().any(|(action, _)| action == "s3:DeleteObject"),
        "the default mode prunes"
    );
    let hardened = actions(&json("aws/backup-policy-hardened.json"), "Allow");
    assert!(
        hardened.iter().all(|(_, resource)| resource.contains("backup")),
        "{hardened:?}"
    );
    assert!(
        !hardened
            .iter()
            .any(|(action, _)| action.starts_with("s3:Delete") || action == "s3:*"),
        "the hardened key cannot delete: {hardened:?}"
    );
    let lifecycle = json("aws/documents-bucket-lifecycle.json");
    assert!(
        lifecycle["Rules"].as_array().unwrap().iter().any(|rule| {
            rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
                .as_i64()
                .is_some()
        }),
        "{lifecycle}"
    );
}
