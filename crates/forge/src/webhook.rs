//! Webhook deliveries from a forge: signature check and the little the order service reads from them.
//!
//! A delivery is only a hint that a pull request changed; the order service then asks the forge for the pull
//! request's current state ([`crate::Forge::pull_request`], [`crate::Forge::reviews`]). So deliveries that arrive
//! late, out of order or twice cannot move an order backwards, and a forged payload could at most cause a
//! lookup — it is refused anyway unless signed with the shared secret.
//!
//! Signatures (HMAC-SHA256 of the raw body with the webhook secret, compared in constant time by
//! `hmac::Mac::verify_slice`):
//! - GitHub: `X-Hub-Signature-256: sha256=<hex>`, event in `X-GitHub-Event`, delivery id in `X-GitHub-Delivery`;
//! - Gitea/Forgejo: `X-Gitea-Signature: <hex>` (it also sends GitHub's header), event in `X-Gitea-Event`,
//!   delivery id in `X-Gitea-Delivery`.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;

use crate::ForgeKind;

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing signature header {0}")]
    MissingSignature(&'static str),
    #[error("signature does not match the body")]
    BadSignature,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed payload: {0}")]
    Malformed(String),
}

/// A verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The forge's delivery id (unique per delivery; a redelivery keeps it).
    pub id: String,
    /// Event name (`pull_request`, `pull_request_review`, `pull_request_approved`, `ping`, ...).
    pub event: String,
    /// The pull request it is about, when it is about one.
    pub pull_request: Option<PullRequestRef>,
}

/// The pull request a delivery is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRef {
    pub owner: String,
    pub repo: String,
    pub number: u64,
    pub head_branch: String,
}

struct Headers {
    signature: &'static str,
    event: &'static str,
    delivery: &'static str,
}

fn headers_of(kind: ForgeKind) -> Headers {
    match kind {
        ForgeKind::GitHub => {
            Headers { signature: "x-hub-signature-256", event: "x-github-event", delivery: "x-github-delivery" }
        }
        ForgeKind::Gitea => {
            Headers { signature: "x-gitea-signature", event: "x-gitea-event", delivery: "x-gitea-delivery" }
        }
    }
}

/// Check the delivery's signature against `secret`.
pub fn verify(kind: ForgeKind, secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    let names = headers_of(kind);
    let value = headers
        .get(names.signature)
        .and_then(|v| v.to_str().ok())
        .ok_or(WebhookError::MissingSignature(names.signature))?
        .trim();
    let hex_digest = match kind {
        ForgeKind::GitHub => value.strip_prefix("sha256=").ok_or(WebhookError::BadSignature)?,
        ForgeKind::Gitea => value,
    };
    let expected = hex::decode(hex_digest).map_err(|_| WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| WebhookError::BadSignature)
}

/// The signature header value a forge of `kind` sends for `body` (tests, and the docs' example).
pub fn sign(kind: ForgeKind, secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = hex::encode(mac.finalize().into_bytes());
    match kind {
        ForgeKind::GitHub => format!("sha256={digest}"),
        ForgeKind::Gitea => digest,
    }
}

/// The header a forge of `kind` puts its signature in.
pub fn signature_header(kind: ForgeKind) -> &'static str {
    headers_of(kind).signature
}

#[derive(Deserialize)]
struct Payload {
    pull_request: Option<PayloadPr>,
    repository: Option<PayloadRepo>,
}

#[derive(Deserialize)]
struct PayloadPr {
    number: u64,
    head: PayloadHead,
}

#[derive(Deserialize)]
struct PayloadHead {
    #[serde(rename = "ref")]
    branch: String,
}

#[derive(Deserialize)]
struct PayloadRepo {
    name: String,
    owner: PayloadOwner,
}

/// GitHub names the owner by `login`; Gitea sends both `login` and `username`.
#[derive(Deserialize)]
struct PayloadOwner {
    login: Option<String>,
    username: Option<String>,
}

/// Read a delivery (verify it first). Events that are not about a pull request have `pull_request: None`.
pub fn read(kind: ForgeKind, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, WebhookError> {
    let names = headers_of(kind);
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or(WebhookError::MissingHeader(name))
    };
    let id = header(names.delivery)?;
    let event = header(names.event)?;
    let payload: Payload = serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let pull_request = match (payload.pull_request, payload.repository) {
        (Some(pr), Some(repo)) => Some(PullRequestRef {
            owner: repo
                .owner
                .login
                .or(repo.owner.username)
                .ok_or_else(|| WebhookError::Malformed("repository.owner has no login".into()))?,
            repo: repo.name,
            number: pr.number,
            head_branch: pr.head.branch,
        }),
        _ => None,
    };
    Ok(Delivery { id, event, pull_request })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    const BODY: &[u8] = br#"{"action":"closed","number":7,"pull_request":{"number":7,"head":{"ref":"order/abc"}},"repository":{"name":"acme","owner":{"login":"tenants","username":"tenants"}}}"#;

    #[test]
    fn valid_signatures_pass_and_everything_else_fails() {
        for kind in [ForgeKind::GitHub, ForgeKind::Gitea] {
            let header = signature_header(kind);
            let good = sign(kind, b"s3cret", BODY);
            assert_eq!(verify(kind, b"s3cret", &headers(&[(header, &good)]), BODY), Ok(()));
            assert_eq!(verify(kind, b"other", &headers(&[(header, &good)]), BODY), Err(WebhookError::BadSignature));
            let mut tampered = BODY.to_vec();
            tampered[10] ^= 1;
            assert_eq!(
                verify(kind, b"s3cret", &headers(&[(header, &good)]), &tampered),
                Err(WebhookError::BadSignature)
            );
            assert_eq!(verify(kind, b"s3cret", &HeaderMap::new(), BODY), Err(WebhookError::MissingSignature(header)));
            assert_eq!(verify(kind, b"s3cret", &headers(&[(header, "zz")]), BODY), Err(WebhookError::BadSignature));
        }
        // GitHub's value needs its prefix.
        let bare = sign(ForgeKind::Gitea, b"s3cret", BODY);
        let h = headers(&[("x-hub-signature-256", &bare)]);
        assert_eq!(verify(ForgeKind::GitHub, b"s3cret", &h, BODY), Err(WebhookError::BadSignature));
    }

    #[test]
    fn deliveries_name_their_pull_request() {
        let h = headers(&[("x-gitea-delivery", "d-1"), ("x-gitea-event", "pull_request")]);
        let d = read(ForgeKind::Gitea, &h, BODY).unwrap();
        assert_eq!(d.id, "d-1");
        assert_eq!(
            d.pull_request,
            Some(PullRequestRef {
                owner: "tenants".into(),
                repo: "acme".into(),
                number: 7,
                head_branch: "order/abc".into()
            })
        );
        let h = headers(&[("x-github-delivery", "d-2"), ("x-github-event", "push")]);
        let d = read(
            ForgeKind::GitHub,
            &h,
            br#"{"ref":"refs/heads/main","repository":{"name":"a","owner":{"login":"o"}}}"#,
        )
        .unwrap();
        assert_eq!((d.event.as_str(), d.pull_request), ("push", None));
        assert_eq!(
            read(ForgeKind::GitHub, &headers(&[("x-github-event", "push")]), b"{}"),
            Err(WebhookError::MissingHeader("x-github-delivery"))
        );
        let h = headers(&[("x-github-delivery", "d-3"), ("x-github-event", "pull_request")]);
        assert!(matches!(read(ForgeKind::GitHub, &h, b"not json"), Err(WebhookError::Malformed(_))));
    }
}
