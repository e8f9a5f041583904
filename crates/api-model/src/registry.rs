//! Wire types of the container registry endpoints (`/api/v1/registry…`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/registry`: where the organisation's images go and how clients authenticate there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistryInfo {
    /// Registry host (and port) of image references, e.g. `registry.example.eu` or `127.0.0.1:5000`; `null`
    /// when no registry is connected (`--registry-url`): tokens are still issued.
    pub host: Option<String>,
    /// Whether the registry speaks plain HTTP (a loopback or development registry).
    pub insecure: bool,
    /// Repository prefix of the organisation: its slug (`<host>/<prefix>/<name>:<tag>`).
    pub prefix: String,
    /// `service` of token requests (the tokens' audience).
    pub service: String,
    /// Actions the caller is granted on the organisation's repositories.
    pub actions: Vec<String>,
}

/// `GET /api/v1/registry/token`: a Docker Registry v2 bearer token (token-authentication spec).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistryToken {
    /// The JWT (ES256) to send as `Authorization: Bearer …` to the registry.
    pub token: String,
    /// The same token, for OAuth 2 clients.
    pub access_token: String,
    /// Seconds the token is valid.
    pub expires_in: i64,
    /// When it was issued (RFC 3339, UTC).
    pub issued_at: String,
}

/// One repository of the organisation with its tags.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistryImage {
    /// Full repository name in the registry (`acme/web`).
    pub repository: String,
    /// The name below the organisation's prefix (`web`): what `maxcloud push --name` takes.
    pub name: String,
    /// Pull reference without tag (`registry.example.eu/acme/web`).
    pub reference: String,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

/// `GET /api/v1/registry/images`: the organisation's repositories.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegistryImages {
    pub host: String,
    pub prefix: String,
    pub images: Vec<RegistryImage>,
}
