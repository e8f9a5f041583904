//! A real Gitea server, the Git hosting provider of the provider tests: built by `scripts/testbin.sh` from its Go
//! module at the version pinned in `scripts/versions.env` (`GITEA_VERSION`), run on a free loopback port out of a
//! temporary directory, with SQLite, no web installer, no SSH, no mailer, Actions and packages off, in-memory
//! (`channel`) queues, and webhooks allowed to loopback receivers (Gitea's default `ALLOWED_HOST_LIST` refuses
//! them, silently: the hook is saved, the delivery fails with only a line in gitea.log). With the default on-disk
//! (`level`) queues, deliveries came 1.5–2.5 s after the event; with `channel` within ~50 ms, and start-up is
//! faster (~1.1 s instead of 1.3–1.8 s to a ready API on the 2-CPU development VM). RSS at ready: ~190 MB.
//!
//! [`Gitea::start`] migrates the database, creates the admin [`ADMIN_USER`] with an all-scope access token (the
//! CLI), starts `gitea web` and waits until `GET /api/v1/version` answers. Gitea's runtime files (`options/`,
//! `templates/`) are in the tool's cache entry, its `STATIC_ROOT_PATH`; the web frontend (JS/CSS) is not built, so
//! HTML pages come unstyled, which the API, Git over HTTP and webhooks do not care about.
//!
//! API facts the tests rely on (Gitea 1.26): tokens authenticate as `Authorization: token <sha1>`; errors are
//! `{"message": ..., "url": ...}`; webhooks are signed `X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>` and
//! delivered in the background, in no guaranteed order.
//!
//! Runs as root too (CI and the development VM run as uid 0): `I_AM_BEING_UNSAFE_RUNNING_AS_ROOT`, and `RUN_USER`
//! left to Gitea, which takes the current user. The process is killed when the value drops, its directory removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::process::{free_port, spawn, tail};
use crate::tools::{tool, version, workspace_root};
use crate::Error;

/// The site administrator [`Gitea::start`] creates; its token is [`Gitea::admin_token`].
pub const ADMIN_USER: &str = "maxcloud-admin";

/// Environment of every Gitea process: as root it refuses to run without this.
const ROOT_OK: (&str, &str) = ("GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT", "true");

/// A running Gitea.
pub struct Gitea {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Child,
    port: u16,
    admin_token: String,
    http: reqwest::Client,
    /// Start-up: configuration, migration, admin and token, `gitea web` answering.
    pub startup: Duration,
}

fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut buf)?;
    Ok(hex::encode(buf))
}

fn gitea_error(message: impl Into<String>) -> Error {
    Error::Gitea(message.into())
}

impl Gitea {
    /// Writes app.ini into a fresh temporary directory, migrates, creates [`ADMIN_USER`] and its token, starts
    /// `gitea web` on a free loopback port and waits (at most 60 s) until the API answers.
    pub async fn start() -> Result<Gitea, Error> {
        let started = Instant::now();
        let bin = tool("gitea", "GITEA_VERSION", "gitea")?;
        let static_root = bin.parent().ok_or_else(|| gitea_error("the gitea binary has no directory"))?.to_path_buf();
        if !static_root.join("options/locale").is_dir() {
            return Err(Error::Tool(format!(
                "{} lacks options/ (scripts/testbin.sh copies it)",
                static_root.display()
            )));
        }
        let base = workspace_root().join("target/testenv");
        std::fs::create_dir_all(&base)?;
        let dir = tempfile::Builder::new().prefix("gitea-").tempdir_in(&base)?;
        let port = free_port()?;
        std::fs::write(dir.path().join("app.ini"), app_ini(dir.path(), &static_root, port)?)?;

        let cli = |args: &[&str]| cli(&bin, dir.path(), args);
        cli(&["migrate"])?;
        cli(&[
            "admin",
            "user",
            "create",
            "--admin",
            "--username",
            ADMIN_USER,
            "--password",
            &random_hex(16)?,
            "--email",
            &format!("{ADMIN_USER}@example.com"),
            "--must-change-password=false",
        ])?;
        // As root, Gitea prints its warning about root on stdout before the token: the token is the last line.
        let out = cli(&[
            "admin",
            "user",
            "generate-access-token",
            "--username",
            ADMIN_USER,
            "--token-name",
            "maxcloud-testenv",
            "--scopes",
            "all",
            "--raw",
        ])?;
        // The token is the one line of 40 hex digits; Gitea's root warning (stderr, captured with it) may come
        // before or after it.
        let is_token = |l: &&str| l.len() == 40 && l.bytes().all(|b| b.is_ascii_hexdigit());
        let admin_token = out.lines().map(str::trim).find(is_token).unwrap_or_default().to_string();
        if admin_token.is_empty() {
            return Err(gitea_error(format!("generate-access-token printed no token:\n{out}")));
        }

        let args: Vec<String> = vec![
            "web".into(),
            "--config".into(),
            dir.path().join("app.ini").display().to_string(),
            "--work-path".into(),
            dir.path().display().to_string(),
        ];
        let child = spawn(dir.path(), "gitea-web", &bin, &args, &[ROOT_OK])?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| gitea_error(format!("HTTP client: {e}")))?;
        let mut gitea = Gitea { dir, bin, child, port, admin_token, http, startup: Duration::ZERO };
        gitea.wait_ready(Duration::from_secs(60)).await?;
        gitea.startup = started.elapsed();
        Ok(gitea)
    }

    /// Polls `GET /api/v1/version` until it answers 200 with the pinned version.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| gitea_error(format!("HTTP client: {e}")))?;
        let want = version("GITEA_VERSION")?.trim_start_matches('v');
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Start(format!("gitea web exited ({status}):\n{}", self.logs_tail(40))));
            }
            if let Ok(response) = probe.get(format!("{}/version", self.api_url())).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    let body: Value = response.json().await.unwrap_or_default();
                    if body["version"] == want {
                        return Ok(());
                    }
                    return Err(Error::Start(format!("gitea answers {body}, expected version {want}")));
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Start(format!("gitea not ready after {timeout:?}:\n{}", self.logs_tail(40))));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>` (Gitea's `ROOT_URL` without the trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.base_url())
    }

    /// The site administrator, [`ADMIN_USER`].
    pub fn admin_user(&self) -> &str {
        ADMIN_USER
    }

    /// An access token of [`ADMIN_USER`] with every scope (`Authorization: token <it>`, or as the password of
    /// HTTP basic auth for Git).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The clone URL of `owner/repo`, `http://127.0.0.1:<port>/<owner>/<repo>.git`.
    pub fn clone_url(&self, owner: &str, repo: &str) -> String {
        format!("{}/{owner}/{repo}.git", self.base_url())
    }

    /// The directory holding app.ini, the database, the repositories and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of `gitea web`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of `gitea web` in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        crate::process::rss_kib(self.child.id())
    }

    /// Gitea's own log (`log/gitea.log`: requests, webhook deliveries and their failures).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/gitea.log")).unwrap_or_default()
    }

    /// The last `lines` lines of Gitea's log and of `gitea web`'s output, for failure messages.
    pub fn logs_tail(&self, lines: usize) -> String {
        let web = std::fs::read_to_string(self.dir.path().join("gitea-web.log")).unwrap_or_default();
        format!(
            "----- gitea web output (last {lines} lines)\n{}\n----- log/gitea.log (last {lines} lines)\n{}\n",
            tail(&web, lines),
            tail(&self.log(), lines)
        )
    }

    /// One API call: `method` on `<api_url><path>` with `token` (none when empty), a JSON body if given. Returns
    /// the status and the JSON answer (`null` when empty or not JSON).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Error> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.api_url()));
        if !token.is_empty() {
            request = request.header("Authorization", format!("token {token}"));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| gitea_error(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| gitea_error(format!("{method} {path}: {e}")))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// [`Gitea::api`] as the admin, failing unless the answer has status `want`.
    async fn admin_call(&self, method: Method, path: &str, body: Value, want: u16) -> Result<Value, Error> {
        let (status, answer) = self.api(method.clone(), path, &self.admin_token, Some(&body)).await?;
        if status != want {
            return Err(gitea_error(format!("{method} {path}: {status} (expected {want}) {answer}")));
        }
        Ok(answer)
    }

    /// Creates a (non-admin) user `name` (e-mail `<name>@example.com`) and an access token of theirs with every
    /// scope, which is returned: a second person, e.g. the reviewer who approves a pull request.
    pub async fn create_user(&self, name: &str) -> Result<String, Error> {
        let password = random_hex(16)?;
        let user = json!({
            "username": name,
            "email": format!("{name}@example.com"),
            "password": password,
            "must_change_password": false,
        });
        self.admin_call(Method::POST, "/admin/users", user, 201).await?;
        // Tokens are created with the user's password (basic auth), not with a token.
        let path = format!("/users/{name}/tokens");
        let response = self
            .http
            .post(format!("{}{path}", self.api_url()))
            .basic_auth(name, Some(&password))
            .json(&json!({"name": "maxcloud-testenv", "scopes": ["all"]}))
            .send()
            .await
            .map_err(|e| gitea_error(format!("POST {path}: {e}")))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or_default();
        match answer["sha1"].as_str() {
            Some(token) if status == 201 => Ok(token.to_string()),
            _ => Err(gitea_error(format!("POST {path}: {status} {answer}"))),
        }
    }

    /// Creates the public organization `name`, owned by the admin. Returns Gitea's answer (`id`, `username`, ...).
    pub async fn create_org(&self, name: &str) -> Result<Value, Error> {
        self.admin_call(Method::POST, "/orgs", json!({"username": name, "visibility": "public"}), 201).await
    }

    /// Creates the repository `owner/name` (owner: a user or an organization) with an initial commit (a README) on
    /// `main`. Returns Gitea's answer (`id`, `full_name`, `clone_url`, `default_branch`, ...).
    pub async fn create_repo(&self, owner: &str, name: &str) -> Result<Value, Error> {
        let repo = json!({"name": name, "auto_init": true, "default_branch": "main", "readme": "Default"});
        self.admin_call(Method::POST, &format!("/admin/users/{owner}/repos"), repo, 201).await
    }

    /// Adds `user` to the repository `owner/repo` as a collaborator with `permission` (`read`, `write`, `admin`).
    pub async fn add_collaborator(&self, owner: &str, repo: &str, user: &str, permission: &str) -> Result<(), Error> {
        let path = format!("/repos/{owner}/{repo}/collaborators/{user}");
        self.admin_call(Method::PUT, &path, json!({"permission": permission}), 204).await.map(|_| ())
    }

    /// Runs a `gitea` CLI command against this server's configuration and database (e.g. `admin user list`).
    pub fn cli(&self, args: &[&str]) -> Result<String, Error> {
        cli(&self.bin, self.dir.path(), args)
    }
}

/// `gitea <args> --config <dir>/app.ini --work-path <dir>`; its stdout, or an error with its output.
fn cli(bin: &Path, dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(bin)
        .args(args)
        .arg("--config")
        .arg(dir.join("app.ini"))
        .arg("--work-path")
        .arg(dir)
        .env(ROOT_OK.0, ROOT_OK.1)
        .output()
        .map_err(|e| Error::Start(format!("gitea {args:?}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Start(format!(
            "gitea {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The configuration: everything under `dir`, HTTP on `127.0.0.1:<port>` only.
fn app_ini(dir: &Path, static_root: &Path, port: u16) -> Result<String, Error> {
    let d = dir.display();
    Ok(format!(
        r#"APP_NAME = maxcloud-testenv
RUN_MODE = prod
WORK_PATH = {d}
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {port}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:{port}/
APP_DATA_PATH = {d}/data
STATIC_ROOT_PATH = {static_root}
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = {d}/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[security]
INSTALL_LOCK = true
SECRET_KEY = {secret_key}
INTERNAL_TOKEN = {internal_token}

[oauth2]
ENABLED = false

[repository]
ROOT = {d}/repos
DEFAULT_BRANCH = main

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 5

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false

[mailer]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[actions]
ENABLED = false

[packages]
ENABLED = false

[queue]
TYPE = channel

[cron.update_checker]
ENABLED = false

[log]
MODE = file
LEVEL = info
ROOT_PATH = {d}/log
"#,
        static_root = static_root.display(),
        secret_key = random_hex(32)?,
        internal_token = random_hex(32)?,
    ))
}

impl Drop for Gitea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
