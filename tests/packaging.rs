//! The packaging examples (`packaging/`, README "Running in containers and under
//! systemd") and the `healthcheck` command the container image uses: the compose file
//! and the Kubernetes manifest are valid YAML with the expected parts (parsed by
//! python3's `yaml`), the configs they carry pass `check-config`, and `healthcheck`
//! exits 0 only on a 2xx answer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::process::{command, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The YAML documents of `path` as JSON, parsed by python3's `yaml`.
fn yaml_documents(path: &Path) -> Vec<serde_json::Value> {
    let script = "import json, sys, yaml\n\
                  print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{} is not valid YAML (or python3-yaml is missing: scripts/setup-test-deps.sh \
         installs it): {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python3")
}

/// `check-config` on `text` with the environment variables the examples read.
async fn check_config(text: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let hash = oauth_mail_proxy::accounts::hash_password(&"pw".to_string().into());
    let mut cmd = command(&["--config", path.to_str().unwrap(), "check-config"]);
    cmd.env("OMP_ADMIN_HASH", &hash)
        .env("OMP_HELPDESK_HASH", &hash);
    let r = run(cmd, b"").await;
    assert!(r.success(), "{what}: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(": ok ("), "{what}: {}", r.stdout);
}

#[tokio::test]
async fn compose_example_is_valid() {
    let docs = yaml_documents(&repo("packaging/docker-compose.yml"));
    assert_eq!(docs.len(), 1);
    let services = &docs[0]["services"];
    let proxy = &services["proxy"];
    assert!(
        proxy["environment"]["OAUTH_MAIL_PROXY_TOKEN_KEY"].is_string(),
        "{proxy}"
    );
    let volumes = proxy["volumes"].as_array().expect("proxy volumes");
    assert!(
        volumes
            .iter()
            .any(|v| v.as_str().unwrap().ends_with(":/var/lib/oauth-mail-proxy")),
        "{volumes:?}"
    );
    assert_eq!(
        services["helpdesk"]["depends_on"]["proxy"]["condition"],
        "service_healthy"
    );
    let config = std::fs::read_to_string(repo("packaging/config.toml")).unwrap();
    check_config(&config, "packaging/config.toml").await;
}

#[tokio::test]
async fn kubernetes_example_is_valid() {
    let docs = yaml_documents(&repo("packaging/kubernetes-sidecar.yaml"));
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["Secret", "ConfigMap", "PersistentVolumeClaim", "Deployment"]
    );
    let pod = &docs[3]["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "app and sidecar");
    let proxy = &containers[1];
    assert_eq!(proxy["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(proxy["readinessProbe"]["httpGet"]["path"], "/readyz");
    let config = docs[1]["data"]["config.toml"].as_str().unwrap();
    check_config(config, "the ConfigMap's config.toml").await;
}

/// Serves one HTTP request with `status`; returns the URL.
async fn one_shot_server(status: &'static str) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/healthz", l.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let reply =
            format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        let _ = s.write_all(reply.as_bytes()).await;
    });
    url
}

#[tokio::test]
async fn healthcheck_command_exits_by_status() {
    let ok = one_shot_server("200 OK").await;
    let r = run(command(&["healthcheck", &ok]), b"").await;
    assert!(r.success(), "{r:?}");
    let down = one_shot_server("503 Service Unavailable").await;
    let r = run(command(&["healthcheck", &down]), b"").await;
    assert!(!r.success() && r.stderr.contains("503"), "{r:?}");
    let closed = format!("http://127.0.0.1:{}/healthz", common::process::free_port());
    let r = run(command(&["healthcheck", &closed]), b"").await;
    assert!(!r.success(), "{r:?}");
}
