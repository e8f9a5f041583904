//! What GitHub's and Gitea's REST clients share: a request whose 2xx answer is wanted, its JSON, how a failed
//! answer becomes a [`ForgeError`], and the calls Gitea shapes exactly like GitHub (closing a pull request,
//! commenting on it, setting a commit status).

use http::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::retry::Response;
use crate::{segment, ForgeError, Result, Status};

/// A provider's request layer: each provider sends (auth, retries) and reads its error bodies its own way.
#[async_trait::async_trait]
pub(crate) trait Rest: Sync {
    /// `/repos/{owner}/{repo}`, encoded.
    fn repo_path(&self, repo: &str) -> String;

    /// One request with retries; the answer whatever its status.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response>;

    /// The provider's message in a failed answer's body.
    fn error_message(resp: &Response) -> String;

    /// A request whose 2xx answer is wanted; other answers become errors naming the call.
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Response> {
        let what = format!("{method} {path}");
        let resp = self.send(method, path, body).await?;
        check(&what, resp, Self::error_message)
    }

    /// [`Rest::call`], its answer read as JSON.
    async fn json<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&Value>) -> Result<T> {
        let what = format!("{method} {path}");
        let resp = self.call(method, path, body).await?;
        parse(&what, &resp)
    }
}

/// The answer if it is a 2xx, else its error.
pub(crate) fn check(what: &str, resp: Response, message: fn(&Response) -> String) -> Result<Response> {
    if resp.status.is_success() {
        Ok(resp)
    } else {
        Err(error(what, &resp, message(&resp)))
    }
}

/// The error of a failed answer. Rate limits with their headers were waited for by the retry policy; a 403 naming
/// a rate limit without them is unavailable, not denied.
pub(crate) fn error(what: &str, resp: &Response, message: String) -> ForgeError {
    let status = resp.status.as_u16();
    let rate_limited = message.to_ascii_lowercase().contains("rate limit");
    let text = format!("{what}: {status} {message}");
    match status {
        404 => ForgeError::NotFound(text),
        403 if rate_limited => ForgeError::Unavailable(text),
        401 | 403 => ForgeError::Denied(text),
        405 | 409 | 422 => ForgeError::Refused(text),
        _ => ForgeError::Protocol(text),
    }
}

/// An answer's JSON body.
pub(crate) fn parse<T: DeserializeOwned>(what: &str, resp: &Response) -> Result<T> {
    serde_json::from_slice(&resp.body).map_err(|e| ForgeError::Protocol(format!("{what}: {e}")))
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
