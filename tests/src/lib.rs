//! Support for the end-to-end tests: start `maxcloud-server` as a process on a free loopback port with
//! an empty data directory, run the `maxcloud` CLI and the real `git` CLI against it.
//!
//! The binaries come from the same target directory as the test executable; `scripts/test.sh` builds
//! them (`cargo build --bins`) before `cargo test`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Path of a workspace binary next to the running test executable (`target/<profile>/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build the binaries first (scripts/test.sh does)", path.display());
    path
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// A `maxcloud-server dev` process.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    pub xrds_dir: PathBuf,
    log: PathBuf,
}

/// How to start a server.
#[derive(Clone, Default)]
pub struct Options {
    pub no_worker: bool,
    pub failpoint: Option<String>,
    pub xrds_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    /// Extra environment variables of the server process.
    pub env: Vec<(String, String)>,
}

impl Server {
    /// Start on a free port with `data_dir` (created if missing).
    pub fn start(data_dir: &Path, opts: Options) -> Server {
        let xrds_dir = opts.xrds_dir.clone().unwrap_or_else(|| workspace_root().join("xrds"));
        let log = data_dir.with_extension(format!("log-{}", std::process::id()));
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("server log");
        let mut cmd = Command::new(bin("maxcloud-server"));
        cmd.args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--xrds-dir")
            .arg(&xrds_dir)
            .env_remove("DATABASE_URL")
            .env("MAXCLOUD_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(log_file);
        if opts.no_worker {
            cmd.arg("--no-worker");
        }
        if let Some(fp) = &opts.failpoint {
            cmd.env("MAXCLOUD_FAILPOINT", fp);
        }
        if let Some(db) = &opts.database_url {
            cmd.env("DATABASE_URL", db);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start maxcloud-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.expect("server stdout");
            if let Some(rest) = line.trim().strip_prefix("API:") {
                url = Some(rest.trim().trim_end_matches("/api/v1").to_string());
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        // With a failpoint the worker may resume stored orders and abort before the address is printed: the
        // caller waits for that exit (`wait_exit`); the server never served.
        let url = match (url, &opts.failpoint) {
            (Some(url), _) => url,
            (None, Some(_)) => String::new(),
            (None, None) => {
                panic!("server did not start; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
            }
        };
        Server { child: Some(child), url, data_dir: data_dir.to_path_buf(), xrds_dir, log }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url)
    }

    pub fn repo_dir(&self, slug: &str) -> PathBuf {
        self.data_dir.join("repos").join(format!("{slug}.git"))
    }

    /// The tenant's SOPS age identity, as an operator reads it (`maxcloud-server tenant-key`).
    pub fn tenant_key(&self, slug: &str) -> String {
        let out = Command::new(bin("maxcloud-server"))
            .args(["tenant-key", slug, "--data-dir"])
            .arg(&self.data_dir)
            .env_remove("DATABASE_URL")
            .env_remove("MAXCLOUD_MASTER_KEY_FILE")
            .output()
            .expect("maxcloud-server tenant-key");
        assert!(out.status.success(), "tenant-key {slug}: {}", String::from_utf8_lossy(&out.stderr));
        let identity = String::from_utf8(out.stdout).expect("UTF-8").trim().to_string();
        assert!(identity.starts_with("AGE-SECRET-KEY-1"), "{identity}");
        identity
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.data_dir.join("maxcloud.db").display())
    }

    /// Kill the process without warning (SIGKILL), like a crash.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for the process to end by itself (e.g. a failpoint abort); panics after `timeout`.
    pub fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("child");
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = c.kill();
                panic!("server did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One metered pod for [`record_pod_usage`]: (uid, kind, service name, CPU millis, memory bytes, started at,
/// ended at) in Unix seconds.
pub type MeteredPod<'a> = (&'a str, &'a str, &'a str, i64, i64, i64, Option<i64>);

/// Writes what the aggregator's metering would have recorded about `pods` of tenant `slug` into the server's
/// database (the metering itself runs against a real API server in crates/status/tests/metering.rs).
pub async fn record_pod_usage(server: &Server, slug: &str, pods: &[MeteredPod<'_>]) {
    let store = maxcloud_store::Store::connect(&server.sqlite_url()).await.expect("the server's database");
    for &(uid, kind, name, cpu_millis, memory_bytes, started_at, ended_at) in pods {
        let pod = maxcloud_store::PodUsage {
            uid: uid.into(),
            tenant: slug.to_string(),
            kind: kind.into(),
            name: name.into(),
            namespace: format!("mc-{slug}"),
            pod: format!("{name}-{uid}"),
            cpu_millis,
            memory_bytes,
            started_at,
            ended_at,
        };
        assert!(store.record_pod_usage(&pod).await.expect("record pod usage"));
    }
    store.close().await;
}

/// A thin JSON client for tests.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api { http: reqwest::Client::new(), base: server.url.clone(), key: None }
    }

    pub fn with_key(&self, key: &str) -> Api {
        Api { key: Some(key.to_string()), ..self.clone() }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some(k) = &self.key {
            r = r.bearer_auth(k);
        }
        r
    }

    /// Send and return (status, JSON body or Null).
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.req(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    /// Register an organisation; returns (api key, org slug).
    pub async fn register(&self, email: &str, org: &str) -> (String, String) {
        let (status, body) = self.post("/auth/register", &json!({"email": email, "org_name": org})).await;
        assert_eq!(status, 201, "register: {body}");
        (body["api_key"].as_str().unwrap().to_string(), body["organization"]["slug"].as_str().unwrap().to_string())
    }

    /// Poll an order until it reaches `state` (or a terminal failure); panics after `timeout`.
    pub async fn wait_order(&self, id: &str, state: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let (status, order) = self.get(&format!("/orders/{id}")).await;
            assert_eq!(status, 200, "{order}");
            let s = order["state"].as_str().unwrap_or_default();
            if s == state || matches!(s, "failed" | "rejected" | "superseded") {
                return order;
            }
            assert!(start.elapsed() < timeout, "order {id} stuck in {s}, wanted {state}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The `maxcloud` CLI with its config in `home`, pointed at `server`, authenticated by `key` when given (else
/// by the credentials it stored in `home`), with no standard input.
/// `maxcloud ARGS` authenticated by `key`, running in the background with its output captured.
pub fn spawn_cli(home: &Path, server: &Server, key: &str, args: &[&str]) -> Child {
    cli_command(home, server, Some(key))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run maxcloud")
}

/// Waits for a background command (off the async threads): (success, stdout, stderr).
pub async fn finish(child: Child) -> (bool, String, String) {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("wait");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

pub fn cli_command(home: &Path, server: &Server, key: Option<&str>) -> Command {
    let mut cmd = Command::new(bin("maxcloud"));
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("MAXCLOUD_API_URL", &server.url)
        .stdin(Stdio::null());
    match key {
        Some(key) => cmd.env("MAXCLOUD_API_KEY", key),
        None => cmd.env_remove("MAXCLOUD_API_KEY"),
    };
    cmd
}

/// A fresh PostgreSQL database `<prefix>_<pid>` on `MAXCLOUD_TEST_POSTGRES_URL` (which `scripts/test.sh` starts;
/// unset, the test fails loudly instead of passing silently); returns its URL.
pub fn postgres_database(prefix: &str) -> String {
    let admin = std::env::var("MAXCLOUD_TEST_POSTGRES_URL")
        .expect("MAXCLOUD_TEST_POSTGRES_URL is not set: run scripts/test.sh, which starts PostgreSQL 15");
    let name = format!("{prefix}_{}", std::process::id());
    let output = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    format!("{}/{name}", admin.rsplit_once('/').expect("a database URL").0)
}

/// Run the `maxcloud` CLI with its config in `home`.
pub fn cli(home: &Path, server: &Server, args: &[&str]) -> Output {
    cli_command(home, server, None).args(args).output().expect("run maxcloud")
}

/// Run `git` and return stdout; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("run git")
}

/// Order ids named by `Order-Id:` trailers on main's history, oldest first.
pub fn order_ids_on_main(repo: &Path) -> Vec<String> {
    let log = git(repo, &["log", "--reverse", "--format=%(trailers:key=Order-Id,valueonly)", "main"]);
    log.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// A fingerprint of a repo's refs and main's files, to prove a refused request changed nothing.
pub fn repo_snapshot(repo: &Path) -> String {
    let refs = git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"]);
    let files = git(repo, &["ls-tree", "-r", "--name-only", "main"]);
    format!("{refs}\n{files}")
}

pub mod cluster;
pub mod logs;
pub mod orders;
pub mod platform;
pub mod sse;
