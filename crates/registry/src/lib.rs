//! The token service of max-cloud's container registry: the Docker Registry v2 token-authentication flow
//! (`docs/content/spec/auth/{token,scope,jwt}.md` of github.com/distribution/distribution) as the CNCF
//! Distribution registry (v3) checks it.
//!
//! - [`scope`]: the `scope` grammar (`repository:acme/web:pull,push`, `registry:catalog:*`), parsed strictly;
//! - [`grant`]: what a tenant's user may have of what it asked for — pull and push (and delete for admins) on
//!   `<own slug>/…`, nothing elsewhere and never the catalog: the answer is the subset, possibly empty;
//! - [`key`]: the ES256 signing key (PKCS#8 PEM), its RFC 7638 thumbprint as `kid` and the JWKS Distribution's
//!   `auth.token.jwks` reads to trust it;
//! - [`token`]: the JWT claims and the token endpoint's answer;
//! - [`names`]: repository and tag names, the distribution reference grammar.

pub mod grant;
pub mod key;
pub mod names;
pub mod scope;
pub mod token;

pub use grant::{grant, Role};
pub use key::{KeyError, SigningKey};
pub use scope::{parse_scopes, Scope, ScopeError};
pub use token::{Access, Claims, IssuedToken, TokenError};

/// Default `service` (the JWT audience): what the registry's `auth.token.service` is set to.
pub const DEFAULT_SERVICE: &str = "max-cloud-registry";
/// Default issuer (`iss`): the registry's `auth.token.issuer`.
pub const DEFAULT_ISSUER: &str = "max-cloud";
/// How long a token lives (the spec's recommended minimum is 60 seconds; clients renew on 401).
pub const TOKEN_TTL_SECONDS: i64 = 300;
