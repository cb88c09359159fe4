//! `--log-format json`: the real binary serves with JSON log lines while a client logs
//! in through it; every line it writes is a JSON object with `timestamp`, `level` and
//! `fields.message`, and the protocol trace stays off without `--trace-protocol`.

mod common;

use common::ImapClient;
use common::canary::{ALICE, CanaryRig, HOUR};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_parse() {
    let mut rig = CanaryRig::start().await;
    rig.store_tokens(ALICE, HOUR);
    let options = ["--log", "debug", "--log-format", "json"];
    let (proxy, ports) = rig.serve_with(&[rig.upstream("imap")], &options).await;
    let mut c = ImapClient::connect(ports[0]).await;
    let r = c
        .command(&format!("LOGIN {ALICE} \"{}\"", rig.password))
        .await;
    assert!(r.tagged.starts_with("OK"), "{r:?}");
    assert_eq!(c.select("INBOX").await, 1);
    c.logout().await;
    let (status, output) = proxy.terminate().await;
    assert!(status.success(), "serve exited with {status}:\n{output}");

    let mut messages = Vec::new();
    for line in output.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{output}"));
        for key in ["timestamp", "level", "target"] {
            assert!(v[key].is_string(), "no {key} in {line}");
        }
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&v["level"].as_str().unwrap()),
            "{line}"
        );
        let message = v["fields"]["message"].as_str();
        let message = message.unwrap_or_else(|| panic!("no fields.message in {line}"));
        messages.push(message.to_string());
        assert_ne!(
            v["target"], "protocol",
            "trace without --trace-protocol: {line}"
        );
    }
    // The log shows what happened (and so is not trivially empty).
    assert!(
        messages.iter().any(|m| m == "logged in; splicing"),
        "{messages:?}"
    );
    assert!(
        output
            .lines()
            .filter(|l| l.contains("\"level\":\"DEBUG\""))
            .count()
            > 0,
        "{output}"
    );
    rig.secrets.assert_clean("the JSON log", &output);
}
