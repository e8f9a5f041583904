//! Service logs from Grafana Loki (issue 7, part 2: "and from Loki when configured"): a real Loki single binary
//! (built from its Go module by `scripts/testbin.sh`) and `maxcloud-server dev --loki-url …` with no cluster at all.
//! Lines are pushed through Loki's push API labelled as a Kubernetes log shipper labels them (`namespace`, `pod`,
//! `container`, `maxcloud_dev_name`, `serving_knative_dev_revision`). `GET /api/v1/services/{id}/logs` and
//! `maxcloud logs` return only the caller's tenant's App's `user-container` lines, of every revision, in time
//! order, the last `tail` of them (also beyond one Loki page); following shows lines pushed later, also one a
//! shipper delivers after newer ones; bad parameters are refused by name, another tenant's service is not found.

use std::time::{Duration, Instant};

use maxcloud_testenv::loki::{now_ns, Stream};
use maxcloud_testenv::Loki;
use maxcloud_tests::logs::{assert_bad_queries_refused, follower, read_logs};
use maxcloud_tests::{bin, cli_command, Api, Options, Server};
use serde_json::{json, Value};

const MS: i128 = 1_000_000;

fn texts(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["line"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_from_loki_per_tenant_in_time_order() {
    let loki = Loki::start().await.expect("loki");
    eprintln!("loki ready in {:?}", loki.startup);
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(
        &tmp.path().join("data"),
        Options { env: vec![("MAXCLOUD_LOKI_URL".into(), loki.url())], ..Default::default() },
    );
    let anon = Api::new(&server);
    let (key, slug) = anon.register("ops@alpha.example", "Alpha").await;
    let (other_key, other_slug) = anon.register("eve@beta.example", "Beta").await;
    let (api, other) = (anon.with_key(&key), anon.with_key(&other_key));
    let (ns, other_ns) = (format!("mc-{slug}"), format!("mc-{other_slug}"));
    let mut ids = Vec::new();
    for (client, name) in [(&api, "shop"), (&other, "shop"), (&api, "batch")] {
        let (status, svc) = client.post("/services", &json!({"name": name, "image": "nginx:1.27"})).await;
        assert_eq!(status, 201, "{svc}");
        ids.push(svc["id"].as_str().unwrap().to_string());
    }
    let shop_logs = format!("/services/{}/logs", ids[0]);
    let theirs_logs = format!("/services/{}/logs", ids[1]);
    let batch_logs = format!("/services/{}/logs", ids[2]);

    // A minute ago: two revisions of shop interleaved with queue-proxy noise, another App, the other tenant's shop.
    let t0 = now_ns() - 60_000 * MS;
    let r1 = |pod: &str, container: &str| Stream::app_container(&ns, pod, container, "shop", "shop-r1");
    loki.push(&[
        r1("shop-r1-pod", "user-container").line(t0, "r1: started").line(t0 + 2 * MS, "r1: GET /"),
        r1("shop-r1-pod", "queue-proxy").line(t0 + MS, "queue-proxy noise").line(t0 + 5 * MS, "more noise"),
        Stream::app_container(&ns, "shop-r2-pod", "user-container", "shop", "shop-r2")
            .line(t0 + 4 * MS, "r2: started")
            .line(t0 + 6 * MS, "r2: GET /cart"),
        Stream::app_container(&ns, "blog-pod", "user-container", "blog", "blog-r1").line(t0 + 3 * MS, "blog: other"),
        Stream::app_container(&other_ns, "shop-theirs", "user-container", "shop", "shop-r1")
            .line(t0 + 3 * MS, "beta: secret business"),
    ])
    .await
    .expect("push");
    // 2,300 lines of batch, three to a nanosecond: a tail of 2,198 spans three of the server's Loki pages (1,000
    // lines each), and the first page ends inside a nanosecond (lines 1299–1301).
    let batch = (0..2300)
        .fold(Stream::app_container(&ns, "batch-pod", "user-container", "batch", "batch-r1"), |s, i| {
            s.line(t0 + i / 3 * MS, &format!("batch {i}"))
        });
    loki.push(&[batch]).await.expect("push batch");
    loki.wait_lines(&format!("{{namespace=\"{ns}\"}}"), 2307).await.expect("lines in loki");

    // All revisions, in time order, the user container only, with pod, revision and RFC 3339 time.
    let (status, lines, body) = read_logs(&api, &shop_logs).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(texts(&lines), ["r1: started", "r1: GET /", "r2: started", "r2: GET /cart"], "{lines:?}");
    assert_eq!((lines[0]["revision"].as_str(), lines[0]["pod"].as_str()), (Some("shop-r1"), Some("shop-r1-pod")));
    assert_eq!((lines[3]["revision"].as_str(), lines[3]["pod"].as_str()), (Some("shop-r2"), Some("shop-r2-pod")));
    assert!(lines.iter().all(|l| l["container"] == "user-container"), "{lines:?}");
    let first =
        time::OffsetDateTime::parse(lines[0]["time"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(first.unix_timestamp_nanos(), t0, "Loki's nanoseconds, as RFC 3339: {}", lines[0]["time"]);
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    // tail: the last N lines overall.
    let (_, lines, _) = read_logs(&api, &format!("{shop_logs}?tail=3")).await;
    assert_eq!(texts(&lines), ["r1: GET /", "r2: started", "r2: GET /cart"]);
    // The other tenant's service of the same name: only its own line.
    let (_, lines, _) = read_logs(&other, &theirs_logs).await;
    assert_eq!(texts(&lines), ["beta: secret business"]);
    // A tail longer than one Loki page: every line once, in time order (lines of one nanosecond in any order).
    let started = Instant::now();
    let (_, lines, _) = read_logs(&api, &format!("{batch_logs}?tail=2198")).await;
    eprintln!(
        "tail of 2198 lines: {:?}; Loki holds {} MiB",
        started.elapsed(),
        maxcloud_testenv::process::rss_kib(loki.pid()).unwrap_or_default() / 1024
    );
    let numbers = |lines: &[Value]| -> Vec<i128> {
        texts(lines).iter().map(|t| t.strip_prefix("batch ").unwrap().parse().unwrap()).collect()
    };
    let got = numbers(&lines);
    assert!(got.windows(2).all(|w| w[0] / 3 <= w[1] / 3), "in time order: {got:?}");
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, (102..2300).collect::<Vec<i128>>(), "each of the last 2,198 lines once");
    let (_, lines, _) = read_logs(&api, &batch_logs).await;
    let got = numbers(&lines);
    assert_eq!(got.len(), 100, "default tail 100");
    assert!(got.iter().all(|i| *i >= 2199) && got.contains(&2299) && got.contains(&2202), "{got:?}");

    // The CLI.
    let home = tmp.path().join("home");
    let out = cli_command(&home, &server, Some(&key)).args(["logs", "shop", "--tail", "2"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 2, "{stdout}");
    assert!(
        printed[0].ends_with("shop-r2 | r2: started") && printed[1].ends_with("shop-r2 | r2: GET /cart"),
        "{stdout}"
    );
    assert!(!stdout.contains("beta") && !stdout.contains("noise") && !stdout.contains("blog"), "{stdout}");

    // Following: lines pushed later, also one the shipper delivers after a newer one; nothing of others.
    let (follow, mut rx) = follower(&home, &server, &key, "shop");
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> (Value, Duration) {
        let started = Instant::now();
        let line = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.ok().flatten();
        (line.unwrap_or_else(|| panic!("no followed line within 20 s")), started.elapsed())
    }
    assert_eq!(next(&mut rx).await.0["line"], "r2: GET /cart", "the tail first");
    let now = now_ns();
    loki.push(&[
        Stream::app_container(&ns, "shop-r2-pod", "user-container", "shop", "shop-r2").line(now, "r2: POST /checkout")
    ])
    .await
    .unwrap();
    let (line, latency) = next(&mut rx).await;
    assert_eq!((line["line"].as_str(), line["revision"].as_str()), (Some("r2: POST /checkout"), Some("shop-r2")));
    eprintln!("pushed → on the follower's stdout: {latency:?}");
    // Noise first (must never show), then a line stamped 2 s before the one just shown, delivered late.
    loki.push(&[
        Stream::app_container(&other_ns, "shop-theirs", "user-container", "shop", "shop-r1")
            .line(now + MS, "beta: more business"),
        Stream::app_container(&ns, "blog-pod", "user-container", "blog", "blog-r1").line(now + MS, "blog: more"),
        Stream::app_container(&ns, "shop-r2-pod", "queue-proxy", "shop", "shop-r2").line(now + MS, "proxy noise"),
    ])
    .await
    .unwrap();
    loki.push(&[Stream::app_container(&ns, "shop-r3-pod", "user-container", "shop", "shop-r3")
        .line(now - 2_000 * MS, "r3: started late")])
        .await
        .unwrap();
    let (line, _) = next(&mut rx).await;
    assert_eq!((line["line"].as_str(), line["revision"].as_str()), (Some("r3: started late"), Some("shop-r3")));
    // A follower starting now, with the last seconds full of lines: its tail of one, then not the older lines the
    // tail left out (though they are recent enough to be looked at again for late deliveries).
    let (second, mut second_rx) = follower(&home, &server, &key, "shop");
    assert_eq!(next(&mut second_rx).await.0["line"], "r2: POST /checkout", "the tail first");
    // A few more polls: nothing else, and nothing twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let rest: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(rest.is_empty(), "only the App's user-container lines, each once: {rest:?}");
    let rest: Vec<Value> = std::iter::from_fn(|| second_rx.try_recv().ok()).collect();
    assert!(rest.is_empty(), "nothing the tail left out: {rest:?}");
    for mut child in [follow, second] {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    // Bad input is refused by name; another tenant's service is not found.
    assert_bad_queries_refused(&api, &shop_logs).await;
    assert_eq!(read_logs(&other, &shop_logs).await.0, 404, "another tenant's service");
    assert_eq!(read_logs(&api, &theirs_logs).await.0, 404, "another tenant's service");
    assert_eq!(read_logs(&api, "/services/no-such-id/logs").await.0, 404);
    assert_eq!(read_logs(&anon, &shop_logs).await.0, 401);
    let out = cli_command(&home, &server, Some(&key)).args(["logs", "nope"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nope"));

    // Loki gone: the logs are unavailable, said so (503), not an empty answer.
    drop(loki);
    let (status, _, body) = read_logs(&api, &shop_logs).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Loki is unreachable") && !message.contains("127.0.0.1"), "{body}");
}

/// A Loki URL or label name that cannot work stops the server at start, naming the flag.
#[test]
fn bad_loki_settings_are_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (vec!["--loki-url", "loki:3100"], "--loki-url"),
        (vec!["--loki-url", "http://127.0.0.1:3100", "--loki-app-label", "maxcloud.dev/name"], "--loki-app-label"),
        (vec!["--loki-url", "http://127.0.0.1:3100", "--loki-tenant", "a b"], "--loki-tenant"),
        (vec!["--loki-tenant", "cluster-a"], "--loki-url"),
    ] {
        let out = std::process::Command::new(bin("maxcloud-server"))
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(flag), "{args:?}: {stderr}");
    }
}

/// A multi-tenant Loki (`auth_enabled: true`): the server reads the cluster's logs from the Loki tenant
/// `--loki-tenant` names (`X-Scope-OrgID`); another Loki tenant's streams stay invisible even with the same labels,
/// and without the setting Loki's refusal is reported as 503, naming the service (bad settings:
/// `bad_loki_settings_are_refused_at_start`).
#[tokio::test(flavor = "multi_thread")]
async fn logs_from_a_multi_tenant_loki() {
    let loki = Loki::start_multi_tenant("cluster-a").await.expect("loki");
    let tmp = tempfile::tempdir().unwrap();
    let start = |dir: &str, org: Option<&str>| {
        let mut env = vec![("MAXCLOUD_LOKI_URL".to_string(), loki.url())];
        env.extend(org.map(|o| ("MAXCLOUD_LOKI_TENANT".to_string(), o.to_string())));
        Server::start(&tmp.path().join(dir), Options { env, ..Default::default() })
    };
    let (right, wrong, unset) =
        (start("right", Some("cluster-a")), start("wrong", Some("cluster-b")), start("unset", None));
    let mut paths = Vec::new();
    let mut slugs = Vec::new();
    for server in [&right, &wrong, &unset] {
        // The same organisation name everywhere: the same namespace and labels in every server's queries.
        let anon = Api::new(server);
        let (key, slug) = anon.register("ops@alpha.example", "Alpha").await;
        let api = anon.with_key(&key);
        let (status, svc) = api.post("/services", &json!({"name": "shop", "image": "nginx:1.27"})).await;
        assert_eq!(status, 201, "{svc}");
        paths.push((api, format!("/services/{}/logs", svc["id"].as_str().unwrap())));
        slugs.push(slug);
    }
    assert!(slugs.iter().all(|s| s == &slugs[0]), "{slugs:?}");
    let ns = format!("mc-{}", slugs[0]);
    let t0 = now_ns() - 10_000 * MS;
    assert_eq!(loki.org(), Some("cluster-a"));
    loki.push(&[Stream::app_container(&ns, "shop-r1-pod", "user-container", "shop", "shop-r1")
        .line(t0, "a: started")
        .line(t0 + MS, "a: GET /")])
        .await
        .expect("push to cluster-a");
    loki.wait_lines(&format!("{{namespace=\"{ns}\"}}"), 2).await.expect("lines in loki");

    let (api, path) = &paths[0];
    let (status, lines, _) = read_logs(api, path).await;
    assert_eq!((status, texts(&lines)), (200, vec!["a: started", "a: GET /"]));
    let (api, path) = &paths[1];
    let (status, lines, _) = read_logs(api, path).await;
    assert_eq!((status, lines.len()), (200, 0), "another Loki tenant's streams: {lines:?}");
    let (api, path) = &paths[2];
    let (status, _, body) = read_logs(api, path).await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(status, 503, "{body}");
    assert!(message.contains("shop") && message.contains("no org id"), "{body}");
}
