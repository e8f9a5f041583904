//! The REST calls GitHub and Gitea share: Gitea mirrors GitHub's paths and bodies for closing a pull request,
//! commenting on it and setting a commit status, so both providers send them from here.

use http::Method;
use serde_json::{json, Value};

use crate::retry::Response;
use crate::{segment, Result, Status};

/// A provider's request primitive.
#[async_trait::async_trait]
pub(crate) trait Rest: Sync {
    /// `/repos/{owner}/{repo}`, encoded.
    fn repo_path(&self, repo: &str) -> String;
    /// One request (with retries) whose 2xx answer is wanted; other answers are errors naming the call.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response>;
}

/// `PATCH /repos/{o}/{r}/pulls/{n}` `{"state": "closed"}`.
pub(crate) async fn close(rest: &impl Rest, repo: &str, number: u64) -> Result<()> {
    let path = format!("{}/pulls/{number}", rest.repo_path(repo));
    rest.call(Method::PATCH, &path, Some(&json!({ "state": "closed" }))).await.map(|_| ())
}

/// `POST /repos/{o}/{r}/issues/{n}/comments` `{"body"}` (a pull request is an issue for comments).
pub(crate) async fn comment(rest: &impl Rest, repo: &str, number: u64, body: &str) -> Result<()> {
    let path = format!("{}/issues/{number}/comments", rest.repo_path(repo));
    rest.call(Method::POST, &path, Some(&json!({ "body": body }))).await.map(|_| ())
}

/// `POST /repos/{o}/{r}/statuses/{sha}` `{"state", "context", "description", "target_url"?}`.
pub(crate) async fn set_status(rest: &impl Rest, repo: &str, sha: &str, status: &Status<'_>) -> Result<()> {
    let mut body = json!({
        "state": status.state.as_str(),
        "context": status.context,
        "description": status.description,
    });
    if let Some(url) = status.target_url {
        body["target_url"] = json!(url);
    }
    let path = format!("{}/statuses/{}", rest.repo_path(repo), segment(sha));
    rest.call(Method::POST, &path, Some(&body)).await.map(|_| ())
}
