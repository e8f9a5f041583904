//! The container registry the tenants push to: a CNCF Distribution registry (or any registry that implements the
//! Docker Registry v2 token-authentication flow) trusting this server's token endpoint
//! (`GET /api/v1/registry/token`, `routes::registry`). Token logic (scopes, grants, claims, the key) is in
//! `maxcloud_registry`; this module holds the configuration and the server's own registry client, which lists a
//! tenant's repositories with tokens it mints for itself (`registry:catalog:*` never leaves the server).

use std::time::Duration;

use maxcloud_registry::{Access, Claims, SigningKey, TOKEN_TTL_SECONDS};

/// How the server issues registry tokens and reaches the registry.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The token signing key (its JWKS is what the registry's `auth.token.jwks` names).
    pub key: SigningKey,
    /// `service` (audience) the registry is configured with.
    pub service: String,
    /// `iss` the registry is configured with.
    pub issuer: String,
    /// Where the server reaches the registry's API (`http://127.0.0.1:5000`); `None`: tokens only, no listing.
    pub url: Option<String>,
    /// Host of image references shown to clients; default: the host of `url`.
    pub public_host: Option<String>,
}

impl RegistryConfig {
    /// The host clients put in image references.
    pub fn host(&self) -> Option<String> {
        self.public_host.clone().or_else(|| {
            let url = self.url.as_deref()?;
            let rest = url.split_once("://").map_or(url, |(_, r)| r);
            Some(rest.split('/').next().unwrap_or(rest).to_string())
        })
    }

    /// Whether clients talk plain HTTP to it (an `http://` registry URL).
    pub fn insecure(&self) -> bool {
        self.url.as_deref().is_some_and(|u| u.starts_with("http://"))
    }

    /// A token for the server itself (`sub` max-cloud) with `access`.
    fn self_token(&self, access: Vec<Access>) -> Result<String, String> {
        Claims::new(&self.issuer, &self.service, "max-cloud", access, TOKEN_TTL_SECONDS)
            .sign(&self.key)
            .map_err(|e| e.to_string())
    }
}

/// Most catalog pages read for one listing (1,000 names each).
const MAX_PAGES: usize = 100;

/// The registry's API as the server uses it.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
}

impl Default for RegistryClient {
    fn default() -> Self {
        RegistryClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
        }
    }
}

/// The `</v2/…?last=…&n=…>; rel="next"` target of a `Link` header.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    let (target, rel) = link.split_once(';')?;
    rel.contains("rel=\"next\"").then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
}

impl RegistryClient {
    async fn get_json(&self, url: &str, token: &str) -> Result<(serde_json::Value, Option<String>), String> {
        let resp = self.http.get(url).bearer_auth(token).send().await.map_err(|e| format!("registry: {e}"))?;
        let status = resp.status();
        let next = next_link(resp.headers());
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok((serde_json::Value::Null, None));
        }
        if !status.is_success() {
            return Err(format!("registry answered {status} to GET {url}"));
        }
        let body = resp.json().await.map_err(|e| format!("registry: {e}"))?;
        Ok((body, next))
    }

    /// The repositories under `<prefix>/`, sorted, each with its sorted tags (repositories without tags are left
    /// out). Reads the catalog with a `registry:catalog:*` token and each repository's tags with a pull token for
    /// that repository only.
    pub async fn images(&self, config: &RegistryConfig, prefix: &str) -> Result<Vec<(String, Vec<String>)>, String> {
        let base = config.url.as_deref().ok_or("no registry URL configured")?.trim_end_matches('/').to_string();
        let catalog = Access { resource_type: "registry".into(), name: "catalog".into(), actions: vec!["*".into()] };
        let token = config.self_token(vec![catalog])?;
        let mut repositories = Vec::new();
        let mut next = Some(format!("{base}/v2/_catalog?n=1000&last={}", percent_encode(&format!("{prefix}/"))));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(format!("the registry's catalog has more than {} pages", MAX_PAGES));
            }
            let (body, link) = self.get_json(&url, &token).await?;
            let names: Vec<String> = body["repositories"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            // The catalog is sorted: past the prefix there is nothing more of this tenant.
            let past = names.last().is_some_and(|n| n.as_str() > prefix && !n.starts_with(&format!("{prefix}/")));
            repositories.extend(names.into_iter().filter(|n| maxcloud_registry::grant::owns(prefix, n)));
            next = if past { None } else { link.map(|l| if l.starts_with('/') { format!("{base}{l}") } else { l }) };
        }
        repositories.sort();
        repositories.dedup();
        let mut images = Vec::new();
        for repository in repositories {
            let pull =
                Access { resource_type: "repository".into(), name: repository.clone(), actions: vec!["pull".into()] };
            let token = config.self_token(vec![pull])?;
            let mut tags = Vec::new();
            let mut next = Some(format!("{base}/v2/{repository}/tags/list?n=1000"));
            let mut pages = 0;
            while let Some(url) = next.take() {
                pages += 1;
                if pages > MAX_PAGES {
                    break;
                }
                let (body, link) = self.get_json(&url, &token).await?;
                if let Some(list) = body["tags"].as_array() {
                    tags.extend(list.iter().filter_map(|v| v.as_str().map(str::to_string)));
                }
                next = link.map(|l| if l.starts_with('/') { format!("{base}{l}") } else { l });
            }
            if !tags.is_empty() {
                tags.sort();
                images.push((repository, tags));
            }
        }
        Ok(images)
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_from_the_url_unless_given() {
        let config = RegistryConfig {
            key: SigningKey::generate(),
            service: "s".into(),
            issuer: "i".into(),
            url: Some("http://127.0.0.1:5000/".into()),
            public_host: None,
        };
        assert_eq!(config.host().as_deref(), Some("127.0.0.1:5000"));
        assert!(config.insecure());
        let public = RegistryConfig { public_host: Some("registry.example.eu".into()), ..config.clone() };
        assert_eq!(public.host().as_deref(), Some("registry.example.eu"));
        assert_eq!(RegistryConfig { url: None, ..config }.host(), None);
    }

    #[test]
    fn follows_next_links() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::LINK, "</v2/_catalog?last=acme%2Fb&n=2>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_link(&headers).as_deref(), Some("/v2/_catalog?last=acme%2Fb&n=2"));
        assert_eq!(percent_encode("acme/"), "acme%2F");
    }
}
