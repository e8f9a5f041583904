//! Reading `GET /api/v1/services/{id}/logs` and `maxcloud logs --follow` in the log suites (pod log API and Loki).

use std::path::Path;

use serde_json::Value;

use crate::{cli_command, Api, Server};

/// The `log` events of a finished (not followed) stream, until `end`: (status, lines, error body).
pub async fn read_logs(api: &Api, path: &str) -> (u16, Vec<Value>, Value) {
    let resp = api.req(reqwest::Method::GET, path).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    if status != 200 {
        return (status, Vec::new(), serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    assert!(text.contains("event: end"), "a finished stream ends with `end`: {text}");
    let lines = text
        .split("\n\n")
        .filter(|block| block.contains("event: log"))
        .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect();
    (status, lines, Value::Null)
}

/// Bad parameters of the logs endpoint at `path` are refused with 400, naming the parameter.
pub async fn assert_bad_queries_refused(api: &Api, path: &str) {
    for (query, field) in [
        ("tail=0", "tail"),
        ("tail=10001", "tail"),
        ("tail=x", "tail"),
        ("follow=maybe", "follow"),
        ("since=1h", "since"),
    ] {
        let (status, _, body) = read_logs(api, &format!("{path}?{query}")).await;
        assert_eq!((status, body["error"]["field"].as_str()), (400, Some(field)), "{query}: {body}");
    }
}

/// `maxcloud logs SERVICE --follow --tail 1 -o json`, its lines as they are printed.
pub fn follower(
    home: &Path,
    server: &Server,
    key: &str,
    service: &str,
) -> (std::process::Child, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let mut child = cli_command(home, server, Some(key))
        .args(["logs", service, "--follow", "--tail", "1", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::Null));
        }
    });
    (child, rx)
}
