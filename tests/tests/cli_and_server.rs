//! The generic `maxcloud order` path, the catalog view, and the server's `migrate` and `serve` commands.

use std::process::Command;

use maxcloud_tests::{bin, cli, git, Api, Options, Server};

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stderr), String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_orders_from_flags_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"), Options::default());
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    ok(cli(&home, &server, &["auth", "register", "--email", "ops@example.com", "--org", "Generic"]));

    let catalog = ok(cli(&home, &server, &["catalog"]));
    assert!(catalog.contains("App") && catalog.contains("maxcloud.dev/v1alpha1"), "{catalog}");
    let params = ok(cli(&home, &server, &["catalog", "apps"]));
    assert!(params.contains("scaling.maxScale") && params.contains("minScale must not exceed maxScale"), "{params}");

    let out = ok(cli(
        &home,
        &server,
        &[
            "order",
            "App",
            "api",
            "--set",
            "image=ghcr.io/acme/api:1.2",
            "--set",
            "scaling.maxScale=3",
            "--set",
            "env[0].name=MODE",
            "--set",
            "env[0].value=prod",
            "--wait",
            "-o",
            "json",
        ],
    ));
    let order: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(order["state"], "merged", "{order}");
    assert_eq!(order["parameters"]["scaling"]["maxScale"], 3);
    assert_eq!(order["parameters"]["scaling"]["minScale"], 0, "defaults applied");
    assert_eq!(order["parameters"]["env"][0]["value"], "prod");

    let file = tmp.path().join("params.yaml");
    std::fs::write(&file, "image: ghcr.io/acme/api:1.3\nvisibility: internal\nscaling:\n  maxScale: 4\n").unwrap();
    let out = ok(cli(
        &home,
        &server,
        &[
            "order",
            "App",
            "api",
            "--action",
            "update",
            "-f",
            file.to_str().unwrap(),
            "--set",
            "port=9090",
            "--wait",
            "-o",
            "json",
        ],
    ));
    let order: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((order["action"].as_str(), order["state"].as_str()), (Some("update"), Some("merged")));
    assert_eq!(
        (order["parameters"]["port"].as_i64(), order["parameters"]["visibility"].as_str()),
        (Some(9090), Some("internal"))
    );

    let bad = cli(
        &home,
        &server,
        &["order", "App", "api2", "--set", "image=nginx", "--set", "scaling.minScale=9", "--set", "scaling.maxScale=2"],
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.trim().starts_with("error:") && err.contains("parameters.scaling.minScale"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let resources = ok(cli(&home, &server, &["resources"]));
    assert!(resources.contains("api") && resources.contains("App"), "{resources}");
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".config/maxcloud/credentials")).unwrap()).unwrap();
    let key = creds["api_key"].as_str().unwrap();
    let (_, orders) = Api::new(&server).with_key(key).get("/orders").await;
    assert_eq!(orders.as_array().unwrap().len(), 2, "the refused order was not stored");
    let repo = server.repo_dir("generic");
    let yaml = git(&repo, &["show", "main:apps/api.yaml"]);
    assert!(
        yaml.contains("image: ghcr.io/acme/api:1.3")
            && yaml.contains("port: 9090")
            && yaml.contains("visibility: internal"),
        "{yaml}"
    );
}

#[test]
fn migrate_and_serve_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("migrated.db");
    let url = format!("sqlite://{}", db.display());
    let out = Command::new(bin("maxcloud-server")).args(["migrate", "--database-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    assert!(db.exists());
    let again = Command::new(bin("maxcloud-server")).args(["migrate", "--database-url", &url]).output().unwrap();
    assert!(again.status.success(), "migrate is idempotent");
    let bad =
        Command::new(bin("maxcloud-server")).args(["migrate", "--database-url", "mysql://nope"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("sqlite:// or postgres://"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // `serve` takes its configuration from the environment and logs JSON.
    let port = maxcloud_testenv::process::free_port().unwrap();
    let mut child = Command::new(bin("maxcloud-server"))
        .arg("serve")
        .env("MAXCLOUD_LISTEN", format!("127.0.0.1:{port}"))
        .env("MAXCLOUD_DATA_DIR", tmp.path().join("serve-data"))
        .env("DATABASE_URL", &url)
        .env("MAXCLOUD_XRDS_DIR", maxcloud_tests::workspace_root().join("xrds"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The log is read as it is written: the server may answer /healthz a moment before it logs "listening".
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(resp) = http::get_status(&format!("http://127.0.0.1:{port}/healthz")) {
            healthy = resp == 200;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut logs = Vec::new();
    let listening = |l: &String| l.starts_with('{') && l.contains("\"listening\"");
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(10)) {
        let done = listening(&line);
        logs.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "serve answered /healthz");
    assert!(logs.iter().any(listening), "JSON logs: {}", logs.join("\n"));
}

mod http {
    /// A minimal blocking GET over a std TcpStream (no extra client features needed): the status code.
    pub fn get_status(url: &str) -> std::io::Result<u16> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let mut stream = std::net::TcpStream::connect(host)?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut buf = String::new();
        stream.read_to_string(&mut buf)?;
        let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok(code)
    }
}
