//! Gitea and Forgejo (REST API v1, as documented in Gitea's swagger at `/api/swagger`), with reqwest.
//!
//! Where it differs from GitHub:
//! - auth header `Authorization: token <token>`; Git over HTTPS takes the token as the password;
//! - the pull request of a branch: `GET /repos/{o}/{r}/pulls/{base}/{head}`;
//! - merge: `POST /repos/{o}/{r}/pulls/{n}/merge` `{"Do":"merge","head_commit_id",...}` answers 200 with no
//!   body (the merge commit is read from the pull request afterwards), 405 when merging is not allowed (already
//!   merged, reviews missing, or "Please try again later" while Gitea still checks mergeability after a push),
//!   409 when the head moved or the change conflicts; `force_merge` lets an administrator merge past branch
//!   protection;
//! - close: `PATCH /repos/{o}/{r}/pulls/{n}` `{"state":"closed"}`; comments and labels go through the issue API;
//! - branch protection: `POST /repos/{o}/{r}/branch_protections`, `PATCH .../branch_protections/{rule}`.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::rest::{self, Rest};
use crate::retry::{short, Response, RetryPolicy};
use crate::{
    branch_path, segment, Forge, ForgeError, ForgeKind, GitAuth, Label, Merge, NewPullRequest, PrState, Protection,
    PullRequest, Repo, Result, Reviews, Status, Verdict,
};

/// How long a merge waits for Gitea to finish checking a fresh head ("Please try again later").
const MERGEABILITY_WAIT: Duration = Duration::from_secs(20);

/// A Gitea/Forgejo server and the organisation holding the tenant repositories.
#[derive(Clone)]
pub struct Gitea {
    api: String,
    owner: String,
    token: String,
    http: reqwest::Client,
    retry: RetryPolicy,
    /// The token's user, read once.
    login: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for Gitea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gitea").field("api", &self.api).field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl Gitea {
    /// `base_url`: the server (`https://git.example.eu`); `owner`: the organisation; `token`: an access token with
    /// repository and organisation scopes.
    pub fn new(base_url: &str, owner: &str, token: &str, retry: RetryPolicy) -> Result<Gitea> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent("max-cloud-order-service")
            .build()
            .map_err(|e| ForgeError::Protocol(format!("HTTP client: {e}")))?;
        Ok(Gitea {
            api: format!("{}/api/v1", base_url.trim_end_matches('/')),
            owner: owner.to_string(),
            token: token.to_string(),
            http,
            retry,
            login: Default::default(),
        })
    }

    fn repo_path(&self, repo: &str) -> String {
        format!("/repos/{}/{}", segment(&self.owner), segment(repo))
    }

    /// One request with retries; the answer whatever its status.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let url = format!("{}{path}", self.api);
        let what = format!("{method} {path}");
        self.retry
            .run(&what, || {
                let mut req = self
                    .http
                    .request(method.clone(), &url)
                    .header("authorization", format!("token {}", self.token))
                    .header("accept", "application/json");
                if let Some(body) = body {
                    req = req.json(body);
                }
                async move {
                    let resp = req.send().await.map_err(|e| e.to_string())?;
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let body = resp.bytes().await.map_err(|e| e.to_string())?;
                    Ok(Response { status, headers, body })
                }
            })
            .await
    }

    async fn labels(&self, repo: &str) -> Result<Vec<GiteaLabel>> {
        self.json(Method::GET, &format!("{}/labels?limit=100", self.repo_path(repo)), None).await
    }
}

/// Gitea's error body is `{"message": ..., "url": ...}`.
fn error_message(resp: &Response) -> String {
    serde_json::from_slice::<Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| short(&resp.text()))
}

#[derive(Deserialize)]
struct GiteaRepo {
    full_name: String,
    clone_url: String,
    html_url: String,
    #[serde(default)]
    default_branch: String,
    #[serde(default)]
    empty: bool,
}

impl From<GiteaRepo> for Repo {
    fn from(r: GiteaRepo) -> Repo {
        Repo {
            full_name: r.full_name,
            clone_url: r.clone_url,
            html_url: r.html_url,
            default_branch: if r.default_branch.is_empty() { "main".into() } else { r.default_branch },
            empty: r.empty,
        }
    }
}

#[derive(Deserialize)]
struct GiteaUser {
    login: String,
}

#[derive(Deserialize)]
struct GiteaBranchRef {
    #[serde(rename = "ref")]
    branch: String,
    #[serde(default)]
    sha: String,
}

#[derive(Deserialize)]
struct GiteaPull {
    number: u64,
    html_url: String,
    state: String,
    #[serde(default)]
    merged: bool,
    merge_commit_sha: Option<String>,
    merged_by: Option<GiteaUser>,
    head: GiteaBranchRef,
    base: GiteaBranchRef,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

impl From<GiteaPull> for PullRequest {
    fn from(p: GiteaPull) -> PullRequest {
        let state = match (p.merged, p.state.as_str()) {
            (true, _) => PrState::Merged,
            (false, "open") => PrState::Open,
            _ => PrState::Closed,
        };
        PullRequest {
            number: p.number,
            html_url: p.html_url,
            state,
            head_branch: p.head.branch,
            head_sha: p.head.sha,
            base_branch: p.base.branch,
            merge_commit: p.merge_commit_sha.filter(|s| !s.is_empty() && p.merged),
            merged_by: p.merged_by.map(|u| u.login),
            title: p.title,
            body: p.body,
        }
    }
}

#[derive(Deserialize)]
struct GiteaReview {
    user: Option<GiteaUser>,
    state: String,
    #[serde(default)]
    stale: bool,
    #[serde(default)]
    dismissed: bool,
}

#[derive(Deserialize)]
struct GiteaLabel {
    id: i64,
    name: String,
}

#[async_trait::async_trait]
impl Forge for Gitea {
    fn kind(&self) -> ForgeKind {
        ForgeKind::Gitea
    }

    fn owner(&self) -> &str {
        &self.owner
    }

    async fn login(&self) -> Result<String> {
        let login = self
            .login
            .get_or_try_init(|| async {
                let user: GiteaUser = self.json(Method::GET, "/user", None).await?;
                Ok::<_, ForgeError>(user.login)
            })
            .await?;
        Ok(login.clone())
    }

    async fn repo(&self, name: &str) -> Result<Option<Repo>> {
        match self.json::<GiteaRepo>(Method::GET, &self.repo_path(name), None).await {
            Ok(r) => Ok(Some(r.into())),
            Err(ForgeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_repo(&self, name: &str, description: &str) -> Result<Repo> {
        let body = json!({
            "name": name,
            "description": description,
            "private": true,
            "auto_init": false,
            "default_branch": "main",
        });
        let path = format!("/orgs/{}/repos", segment(&self.owner));
        match self.json::<GiteaRepo>(Method::POST, &path, Some(&body)).await {
            Ok(r) => Ok(r.into()),
            // Created by an earlier try whose answer was lost.
            Err(ForgeError::Refused(m)) if m.contains(" 409 ") => {
                self.repo(name).await?.ok_or_else(|| ForgeError::Protocol(format!("{m}, yet it does not exist")))
            }
            Err(e) => Err(e),
        }
    }

    async fn protect_branch(&self, repo: &str, branch: &str, protection: &Protection) -> Result<()> {
        let body = json!({
            "rule_name": branch,
            "branch_name": branch,
            "required_approvals": protection.required_approvals,
            "block_on_rejected_reviews": true,
            "dismiss_stale_approvals": true,
            "enable_push": false,
        });
        let base = format!("{}/branch_protections", self.repo_path(repo));
        let existing = self.send(Method::GET, &format!("{base}/{}", segment(branch)), None).await?;
        if existing.status.is_success() {
            self.call(Method::PATCH, &format!("{base}/{}", segment(branch)), Some(&body)).await?;
        } else {
            self.call(Method::POST, &base, Some(&body)).await?;
        }
        Ok(())
    }

    async fn git_auth(&self) -> Result<GitAuth> {
        Ok(GitAuth { username: self.login().await?, password: self.token.clone() })
    }

    async fn find_pull_request(&self, repo: &str, branch: &str) -> Result<Option<PullRequest>> {
        // The head is the rest of the path: slashes in it stay.
        let path = format!("{}/pulls/main/{}", self.repo_path(repo), branch_path(branch));
        match self.json::<GiteaPull>(Method::GET, &path, None).await {
            Ok(p) => Ok(Some(p.into())),
            Err(ForgeError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_pull_request(&self, repo: &str, pr: &NewPullRequest<'_>) -> Result<PullRequest> {
        let body = json!({ "head": pr.head, "base": pr.base, "title": pr.title, "body": pr.body });
        let pull: GiteaPull = self.json(Method::POST, &format!("{}/pulls", self.repo_path(repo)), Some(&body)).await?;
        Ok(pull.into())
    }

    async fn pull_request(&self, repo: &str, number: u64) -> Result<PullRequest> {
        let pull: GiteaPull = self.json(Method::GET, &format!("{}/pulls/{number}", self.repo_path(repo)), None).await?;
        Ok(pull.into())
    }

    async fn add_labels(&self, repo: &str, number: u64, labels: &[Label]) -> Result<()> {
        let mut existing = self.labels(repo).await?;
        let mut ids = Vec::new();
        for label in labels {
            let id = match existing.iter().find(|l| l.name == label.name) {
                Some(l) => l.id,
                None => {
                    let body = json!({
                        "name": label.name,
                        "color": format!("#{}", label.color),
                        "description": label.description,
                    });
                    let path = format!("{}/labels", self.repo_path(repo));
                    match self.json::<GiteaLabel>(Method::POST, &path, Some(&body)).await {
                        Ok(created) => {
                            let id = created.id;
                            existing.push(created);
                            id
                        }
                        // Created concurrently: read it back.
                        Err(ForgeError::Refused(_)) => self
                            .labels(repo)
                            .await?
                            .into_iter()
                            .find(|l| l.name == label.name)
                            .map(|l| l.id)
                            .ok_or_else(|| ForgeError::Protocol(format!("label {} cannot be created", label.name)))?,
                        Err(e) => return Err(e),
                    }
                }
            };
            ids.push(id);
        }
        let path = format!("{}/issues/{number}/labels", self.repo_path(repo));
        self.call(Method::POST, &path, Some(&json!({ "labels": ids }))).await?;
        Ok(())
    }

    async fn request_reviewers(&self, repo: &str, number: u64, reviewers: &[String]) -> Result<()> {
        if reviewers.is_empty() {
            return Ok(());
        }
        let path = format!("{}/pulls/{number}/requested_reviewers", self.repo_path(repo));
        self.call(Method::POST, &path, Some(&json!({ "reviewers": reviewers }))).await?;
        Ok(())
    }

    async fn reviews(&self, repo: &str, number: u64) -> Result<Reviews> {
        let path = format!("{}/pulls/{number}/reviews?limit=100", self.repo_path(repo));
        let reviews: Vec<GiteaReview> = self.json(Method::GET, &path, None).await?;
        Ok(Reviews::reduce(reviews.iter().filter_map(|r| {
            let who = r.user.as_ref()?.login.as_str();
            let counts = !r.stale && !r.dismissed;
            let verdict = match r.state.as_str() {
                "APPROVED" if counts => Some(Verdict::Approved),
                "REQUEST_CHANGES" if counts => Some(Verdict::ChangesRequested),
                _ => None,
            };
            Some((who, verdict))
        })))
    }

    async fn merge(&self, repo: &str, number: u64, head_sha: &str, message: &str, bypass: bool) -> Result<Merge> {
        let (title, body) = message.split_once("\n\n").unwrap_or((message, ""));
        let request = json!({
            "Do": "merge",
            "merge_title_field": title,
            "merge_message_field": body,
            "head_commit_id": head_sha,
            "force_merge": bypass,
            "delete_branch_after_merge": true,
        });
        let path = format!("{}/pulls/{number}/merge", self.repo_path(repo));
        let deadline = tokio::time::Instant::now() + MERGEABILITY_WAIT;
        loop {
            let resp = self.send(Method::POST, &path, Some(&request)).await?;
            let status = resp.status.as_u16();
            if resp.status.is_success() {
                break;
            }
            let message = error_message(&resp);
            match status {
                405 if message.contains("try again later") && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                405 | 409 => {
                    // "already merged" is a success for us: read the commit below.
                    let pr = self.pull_request(repo, number).await?;
                    if pr.state == PrState::Merged {
                        break;
                    }
                    return Ok(Merge::NotMergeable { reason: message });
                }
                _ => rest::check(&format!("POST {path}"), resp, error_message).map(|_| ())?,
            }
        }
        let pr = self.pull_request(repo, number).await?;
        match (pr.state, pr.merge_commit) {
            (PrState::Merged, Some(commit)) => Ok(Merge::Merged { commit }),
            (state, _) => Err(ForgeError::Protocol(format!(
                "pull request {number} was merged but reads as {} without a merge commit",
                state.as_str()
            ))),
        }
    }

    async fn close(&self, repo: &str, number: u64) -> Result<()> {
        crate::rest::close(self, repo, number).await
    }

    async fn comment(&self, repo: &str, number: u64, body: &str) -> Result<()> {
        crate::rest::comment(self, repo, number, body).await
    }

    async fn set_status(&self, repo: &str, sha: &str, status: &Status<'_>) -> Result<()> {
        crate::rest::set_status(self, repo, sha, status).await
    }

    async fn delete_branch(&self, repo: &str, branch: &str) -> Result<()> {
        let path = format!("{}/branches/{}", self.repo_path(repo), branch_path(branch));
        match self.call(Method::DELETE, &path, None).await {
            Ok(_) | Err(ForgeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Rest for Gitea {
    fn repo_path(&self, repo: &str) -> String {
        Gitea::repo_path(self, repo)
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        Gitea::send(self, method, path, body).await
    }

    fn error_message(resp: &Response) -> String {
        error_message(resp)
    }
}
