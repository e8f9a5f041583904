//! After a merge the order service pokes the tenant's Flux `Receiver`, so Flux fetches the tenant repository at
//! once instead of at its next interval (DESIGN.md §4).
//!
//! Every tenant's onboarding (gitops/tenant/receiver.yaml.j2) has a `generic-hmac` Receiver named
//! `maxcloud-tenant` in `mc-<slug>`, whose Secret holds the platform's webhook token. notification-controller
//! serves it at `/hook/<hex sha256(token + name + namespace)>` (`Receiver.GetWebhookPath` in its API) and accepts
//! a request whose `X-Signature` is `sha256=<hex HMAC-SHA256(body, token)>`. The notification is best effort:
//! a failure only delays the sync until Flux's interval, so it is retried a few times, logged, and never blocks
//! the order lane.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Where notification-controller's receiver listens and the token the tenants' Receivers share.
#[derive(Clone)]
pub struct FluxReceiver {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for FluxReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FluxReceiver").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl FluxReceiver {
    /// `base_url`: notification-controller's receiver server, e.g. `http://notification-controller.flux-system`.
    pub fn new(base_url: &str, token: &str) -> FluxReceiver {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        FluxReceiver { base_url: base_url.trim_end_matches('/').to_string(), token: token.to_string(), http }
    }

    /// The webhook path of the Receiver `name` in `namespace`, as notification-controller computes it.
    pub fn webhook_path(&self, name: &str, namespace: &str) -> String {
        let digest = Sha256::digest(format!("{}{name}{namespace}", self.token).as_bytes());
        format!("/hook/{}", hex::encode(digest))
    }

    /// The `X-Signature` header value for `body`.
    pub fn signature(&self, body: &[u8]) -> String {
        // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.token.as_bytes()) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Notifies the tenant's Receiver that `commit` was merged; retried three times with backoff.
    pub async fn notify(&self, tenant_slug: &str, commit: &str) -> Result<(), String> {
        let namespace = format!("mc-{tenant_slug}");
        let url = format!("{}{}", self.base_url, self.webhook_path(maxcloud_gitops::TENANT_FLUX_NAME, &namespace));
        let body = serde_json::json!({"tenant": tenant_slug, "commit": commit}).to_string();
        let signature = self.signature(body.as_bytes());
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            let sent = self
                .http
                .post(&url)
                .header("Content-Type", "application/json")
                .header("X-Signature", &signature)
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => last = format!("receiver answered {}", resp.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn path_and_signature_as_flux_computes_them() {
        let r = FluxReceiver::new("http://127.0.0.1:1/", "s3cret");
        // sha256("s3cret" + "maxcloud-tenant" + "mc-acme"), computed independently with Python's hashlib.
        assert_eq!(
            r.webhook_path("maxcloud-tenant", "mc-acme"),
            "/hook/86b8c3b8b28e3c8502011ae85130f5512596b2e3d0bf73a32157fba4bb39b02a"
        );
        // RFC 4231 test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?").
        let r = FluxReceiver::new("http://127.0.0.1:1", "Jefe");
        assert_eq!(
            r.signature(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn notify_posts_a_signed_request_to_the_tenants_webhook_path() {
        let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let record = record.clone();
            async move {
                let path = req.uri().path().to_string();
                let sig = req.headers().get("x-signature").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let body = axum::body::to_bytes(req.into_body(), 1 << 16).await.unwrap_or_default();
                record.lock().unwrap().push((path, sig, String::from_utf8_lossy(&body).into_owned()));
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let r = FluxReceiver::new(&format!("http://{addr}"), "tok");
        r.notify("acme", "abc123").await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let (path, sig, body) = &seen[0];
        assert_eq!(path, &r.webhook_path("maxcloud-tenant", "mc-acme"));
        assert_eq!(sig, &r.signature(body.as_bytes()));
        assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap()["commit"], "abc123");

        // Nobody listening: an error after the retries, no panic.
        let dead = FluxReceiver::new("http://127.0.0.1:9", "tok");
        assert!(dead.notify("acme", "abc").await.is_err());
    }
}
