//! Webhook deliveries, as GitHub sends them: `POST` with the event in `X-GitHub-Event`, a GUID in
//! `X-GitHub-Delivery`, and `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body with the secret>`; one at a time,
//! in the order the events happened.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{api, Shared, State, WebhookTarget, INSTALLATION_ID, OWNER};

/// One delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-GitHub-Delivery` (a GUID; a redelivery keeps it).
    pub id: String,
    /// `X-GitHub-Event`: `pull_request`, `pull_request_review`.
    pub event: String,
    /// The payload's `action`.
    pub action: String,
    /// The pull request it is about.
    pub number: u64,
    /// The payload, as sent.
    pub body: String,
    /// Handed to the sender (deliveries were on and a target set when it happened).
    pub queued: bool,
    /// The answer's status (`Some(0)`: no answer, the connection failed).
    pub status: Option<u16>,
    /// The answer's body.
    pub response: String,
}

/// `sha256=<hex>` of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Record an event and queue its delivery. Called with the state locked, after the change.
pub(crate) fn emit(s: &mut State, repo: &str, number: u64, event: &str, action: &str, sender: &str, extra: Value) {
    let r = s.repo(repo);
    let p = r.pull(number);
    let mut payload = json!({
        "action": action,
        "number": number,
        "pull_request": api::pull_json(s, r, p, true),
        "repository": api::repo_json(s, r),
        "organization": { "login": OWNER, "type": "Organization" },
        "sender": api::user(sender),
        "installation": { "id": INSTALLATION_ID },
    });
    if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
        payload.extend(extra);
    }
    let queued = s.deliveries_enabled && s.webhook.is_some();
    s.deliveries.push(Delivery {
        id: uuid::Uuid::new_v4().to_string(),
        event: event.to_string(),
        action: action.to_string(),
        number,
        body: payload.to_string(),
        queued,
        status: None,
        response: String::new(),
    });
    if queued {
        let _ = s.outbox.send(s.deliveries.len() - 1);
    }
}

/// POST one delivery; (status, body), status 0 if the connection failed.
pub(crate) async fn post(http: &reqwest::Client, target: &WebhookTarget, d: &Delivery) -> (u16, String) {
    let sent = http
        .post(&target.url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/mock")
        .header("x-github-event", &d.event)
        .header("x-github-delivery", &d.id)
        .header("x-github-hook-id", "1")
        .header("x-github-hook-installation-target-type", "integration")
        .header("x-github-hook-installation-target-id", super::APP_ID.to_string())
        .header("x-hub-signature-256", signature(&target.secret, d.body.as_bytes()))
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// The sender: deliveries one at a time, in order.
pub(crate) async fn send_forever(shared: Arc<Shared>, mut inbox: tokio::sync::mpsc::UnboundedReceiver<usize>) {
    while let Some(i) = inbox.recv().await {
        let Some((delivery, target)) = ({
            let mut s = shared.lock();
            let found = s.webhook.clone().map(|t| (s.deliveries[i].clone(), t));
            if found.is_none() {
                s.deliveries[i].status = Some(0);
                s.deliveries[i].response = "no webhook target".into();
            }
            found
        }) else {
            continue;
        };
        let (status, response) = post(&shared.http, &target, &delivery).await;
        let mut s = shared.lock();
        s.deliveries[i].status = Some(status);
        s.deliveries[i].response = response;
    }
}
