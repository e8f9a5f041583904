//! HTTP client of the max-cloud REST API: base URL, bearer API key, JSON bodies, JSON errors.

use std::time::Duration;

use maxcloud_api_model::ErrorBody;
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};

/// Why a request failed. Each variant renders as the one-line reason after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with its JSON error body.
    #[error("{}", api_message(.message, .field.as_deref()))]
    Api { status: StatusCode, code: String, message: String, field: Option<String> },
    /// The server answered with an error status but no JSON error body.
    #[error("{method} {path} failed: HTTP {status}{}", snippet_suffix(.body))]
    Http { method: Method, path: String, status: StatusCode, body: String },
    /// No answer at all: connection refused, DNS, TLS, timeout.
    #[error("cannot reach max-cloud API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// A success status with a body that is not what the API promises.
    #[error("invalid response to {method} {path}: {reason}")]
    InvalidResponse { method: Method, path: String, reason: String },
}

impl ApiError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ApiError::Api { status, .. } | ApiError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

/// `message (field: field)`, the line shown for a JSON API error.
pub fn api_message(message: &str, field: Option<&str>) -> String {
    match field {
        Some(field) if !field.is_empty() => format!("{message} (field: {field})"),
        _ => message.to_string(),
    }
}

fn snippet_suffix(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return String::new();
    }
    let mut snippet: String = line.chars().take(200).collect();
    if snippet.len() < line.len() {
        snippet.push('…');
    }
    format!(": {snippet}")
}

/// The deepest cause of a transport error: `Connection refused (os error 111)` rather than
/// `error sending request for url (...)`.
fn transport_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "request timed out".to_string();
    }
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    reason
}

/// A decoded response together with its headers (for `X-Maxcloud-Cluster`).
#[derive(Debug)]
pub struct Response<T> {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: T,
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    /// Sent as `X-Maxcloud-Tenant`: the organisation a token granting several acts in.
    org: Option<String>,
}

/// The header naming the organisation to act in (the server's `oidc::TENANT_HEADER`).
const TENANT_HEADER: &str = "X-Maxcloud-Tenant";

/// `--tenant`: an organisation slug (lowercase letters, digits and inner hyphens, at most 40, as the server's
/// `TenantSlug`), checked before any request.
pub fn parse_tenant(text: &str) -> anyhow::Result<String> {
    let slug = text.trim();
    let ok = !slug.is_empty()
        && slug.len() <= 40
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !ok {
        anyhow::bail!("--tenant must be an organisation slug (lowercase letters, digits and hyphens), got {text:?}");
    }
    Ok(slug.to_string())
}

impl Client {
    /// `base_url` like `http://127.0.0.1:8080` (a trailing slash is ignored); `api_key` sent as bearer.
    pub fn new(base_url: &str, api_key: Option<String>) -> anyhow::Result<Self> {
        let base_url = base_url.trim().trim_end_matches('/').to_string();
        let parsed =
            reqwest::Url::parse(&base_url).map_err(|e| anyhow::anyhow!("invalid API URL \"{base_url}\": {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("invalid API URL \"{base_url}\": the scheme must be http or https");
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("maxcloud-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the HTTP client: {e}"))?;
        Ok(Self { http, base_url, api_key: api_key.filter(|k| !k.is_empty()), org: None })
    }

    /// Acts in organisation `org` (see [`parse_tenant`]).
    pub fn with_org(mut self, org: Option<String>) -> Self {
        self.org = org;
        self
    }

    /// The API key requests are sent with (the registry password of `maxcloud push`).
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_deref()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends a request and returns the raw status, headers and body, mapping error statuses to
    /// [`ApiError`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ApiError> {
        let url = format!("{}{path}", self.base_url);
        let mut req = self.http.request(method.clone(), &url).header("Accept", "application/json");
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(org) = &self.org {
            req = req.header(TENANT_HEADER, org);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let unreachable =
            |e: reqwest::Error| ApiError::Unreachable { url: self.base_url.clone(), reason: transport_reason(&e) };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(unreachable)?.to_vec();
        if status.is_success() {
            return Ok((status, headers, bytes));
        }
        Err(self.error(method, path, status, &bytes))
    }

    /// `GET` of a text document (e.g. CSV), errors mapped as for JSON.
    pub async fn get_text(&self, path: &str) -> Result<String, ApiError> {
        let (_, _, bytes) = self.send(Method::GET, path, None, &[("Accept", "text/csv, text/plain")]).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A server-sent event stream (`GET`, no overall timeout: it may be followed for hours).
    pub async fn events(&self, path: &str) -> Result<EventStream, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let mut req =
            self.http.get(&url).header("Accept", "text/event-stream").timeout(Duration::from_secs(7 * 24 * 3600));
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(org) = &self.org {
            req = req.header(TENANT_HEADER, org);
        }
        let unreachable =
            |e: reqwest::Error| ApiError::Unreachable { url: self.base_url.clone(), reason: transport_reason(&e) };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            let bytes = resp.bytes().await.map_err(unreachable)?;
            return Err(self.error(Method::GET, path, status, &bytes));
        }
        Ok(EventStream { resp, buffer: String::new(), base_url: self.base_url.clone() })
    }

    /// The error an unsuccessful answer stands for: the server's JSON error, else the raw status and body.
    fn error(&self, method: Method, path: &str, status: StatusCode, bytes: &[u8]) -> ApiError {
        if let Ok(err) = serde_json::from_slice::<ErrorBody>(bytes) {
            let mut message = err.error.message;
            if status == StatusCode::UNAUTHORIZED && self.api_key.is_none() {
                message.push_str(
                    "; no API key configured: set MAXCLOUD_API_KEY, pass --api-key or run `maxcloud auth register`",
                );
            }
            if err.error.field.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(TENANT_HEADER)) {
                message.push_str("; choose the organisation with --tenant SLUG (or MAXCLOUD_TENANT)");
            }
            return ApiError::Api { status, code: err.error.code, message, field: err.error.field };
        }
        ApiError::Http { method, path: path.to_string(), status, body: String::from_utf8_lossy(bytes).into_owned() }
    }

    fn decode<T: DeserializeOwned>(method: Method, path: &str, bytes: &[u8]) -> Result<T, ApiError> {
        serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidResponse {
            method,
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    pub async fn request_full<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<Response<T>, ApiError> {
        let (status, headers, bytes) = self.send(method.clone(), path, body, headers).await?;
        let body = Self::decode(method, path, &bytes)?;
        Ok(Response { status, headers, body })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        Ok(self.request_full(Method::GET, path, None, &[]).await?.body)
    }

    /// `GET` that maps 404 to `None`.
    pub async fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, ApiError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        Ok(self.post_full(path, body, &[]).await?.body)
    }

    pub async fn post_full<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &[(&str, &str)],
    ) -> Result<Response<T>, ApiError> {
        let body = encode(&Method::POST, path, body)?;
        self.request_full(Method::POST, path, Some(&body), headers).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        self.send_json(Method::PATCH, path, body).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        self.send_json(Method::PUT, path, body).await
    }

    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let body = encode(&method, path, body)?;
        Ok(self.request_full(method, path, Some(&body), &[]).await?.body)
    }

    /// `DELETE` expecting an empty (204) answer; returns the id of the removal order when the server names it
    /// (`X-Maxcloud-Order`).
    pub async fn delete(&self, path: &str) -> Result<Option<String>, ApiError> {
        let (_, headers, _) = self.send(Method::DELETE, path, None, &[]).await?;
        Ok(headers.get(ORDER_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string))
    }
}

/// Server-sent events as they arrive: `(event, data)` pairs. Parsed here because the framing is a few lines
/// (events end with a blank line; `event:` and `data:` fields; comments and keep-alives start with `:`).
pub struct EventStream {
    resp: reqwest::Response,
    buffer: String,
    base_url: String,
}

impl EventStream {
    /// The next event, or `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<(String, String)>, ApiError> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut event, mut data) = (String::from("message"), Vec::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                    }
                }
                if !data.is_empty() {
                    return Ok(Some((event, data.join("\n"))));
                }
                continue;
            }
            let chunk = self
                .resp
                .chunk()
                .await
                .map_err(|e| ApiError::Unreachable { url: self.base_url.clone(), reason: transport_reason(&e) })?;
            match chunk {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }
}

/// Response header naming the order a request placed (e.g. a service's removal order).
pub const ORDER_HEADER: &str = "x-maxcloud-order";

/// A request body as JSON.
fn encode<B: Serialize>(method: &Method, path: &str, body: &B) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::InvalidResponse {
        method: method.clone(),
        path: path.to_string(),
        reason: format!("cannot encode request: {e}"),
    })
}

/// Everything but RFC 3986's unreserved characters is encoded in a path segment.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one path segment (IDs and names are URL-safe already; this guards odd input).
pub fn segment(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_lines() {
        let e = ApiError::Api {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_parameters".into(),
            message: "maxScale must be at least minScale".into(),
            field: Some("parameters.scaling.maxScale".into()),
        };
        assert_eq!(e.to_string(), "maxScale must be at least minScale (field: parameters.scaling.maxScale)");
        let e = ApiError::Api {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: "no such order".into(),
            field: None,
        };
        assert_eq!(e.to_string(), "no such order");
        assert!(e.is_not_found());
        let e = ApiError::Unreachable {
            url: "http://127.0.0.1:9".into(),
            reason: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach max-cloud API at http://127.0.0.1:9: Connection refused (os error 111)"
        );
        let e = ApiError::Http {
            method: Method::GET,
            path: "/api/v1/x".into(),
            status: StatusCode::BAD_GATEWAY,
            body: "<html>\n bad\n</html>".into(),
        };
        assert_eq!(e.to_string(), "GET /api/v1/x failed: HTTP 502 Bad Gateway: <html> bad </html>");
    }

    #[test]
    fn rejects_bad_base_urls() {
        assert!(Client::new("http://127.0.0.1:8080/", None).is_ok());
        assert_eq!(Client::new("http://h:1/", None).unwrap().base_url(), "http://h:1");
        assert!(Client::new("127.0.0.1:8080", None).is_err());
        assert!(Client::new("ftp://x", None).is_err());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("ord_01-ab"), "ord_01-ab");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[tokio::test]
    async fn connection_refused_is_reported_with_the_url() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let client = Client::new(&url, Some("k".into())).unwrap();
        let err = client.get::<serde_json::Value>("/api/v1/services").await.unwrap_err();
        let line = err.to_string();
        assert!(line.starts_with(&format!("cannot reach max-cloud API at {url}: ")), "{line}");
        assert!(line.to_lowercase().contains("refused"), "{line}");
    }
}
