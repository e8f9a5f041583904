//! The registry token (`docs/content/spec/auth/jwt.md`): a JWS with `iss`, `sub`, `aud` (the service), `exp`,
//! `nbf`, `iat`, `jti` and `access` (the granted resource actions), signed ES256 with `kid`.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use crate::key::SigningKey;

/// One granted resource (`{"type": "repository", "name": "acme/web", "actions": ["pull", "push"]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// The claims of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
}

/// The token endpoint's answer: `token` and, for OAuth 2 clients, the same as `access_token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    /// RFC 3339, UTC.
    pub issued_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

impl Claims {
    /// Claims for `subject` with `access`, valid from now for `ttl_seconds`.
    pub fn new(issuer: &str, service: &str, subject: &str, access: Vec<Access>, ttl_seconds: i64) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            iss: issuer.to_string(),
            sub: subject.to_string(),
            aud: service.to_string(),
            exp: now + ttl_seconds,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
        }
    }

    /// The compact JWS, signed with `key` (header `alg` ES256, `typ` JWT, `kid`).
    pub fn sign(&self, key: &SigningKey) -> Result<String, TokenError> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(key.kid().to_string());
        jsonwebtoken::encode(&header, self, key.encoding()).map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// Signs and shapes the endpoint's answer.
    pub fn issue(&self, key: &SigningKey) -> Result<IssuedToken, TokenError> {
        let token = self.sign(key)?;
        let issued_at = time::OffsetDateTime::from_unix_timestamp(self.iat)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default();
        Ok(IssuedToken { access_token: token.clone(), token, expires_in: self.exp - self.iat, issued_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_claims_verify_with_the_public_key_and_name_it() {
        let key = SigningKey::generate();
        let access =
            vec![Access { resource_type: "repository".into(), name: "acme/web".into(), actions: vec!["pull".into()] }];
        let claims = Claims::new("max-cloud", "max-cloud-registry", "me@acme.example", access, 300);
        let issued = claims.issue(&key).unwrap();
        assert_eq!(issued.token, issued.access_token);
        assert_eq!(issued.expires_in, 300);
        assert!(issued.issued_at.ends_with('Z'));

        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!((header.alg, header.kid.as_deref()), (jsonwebtoken::Algorithm::ES256, Some(key.kid())));
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["max-cloud-registry"]);
        validation.set_issuer(&["max-cloud"]);
        let decoded = jsonwebtoken::decode::<Claims>(&issued.token, &key.decoding_key().unwrap(), &validation).unwrap();
        assert_eq!(decoded.claims, claims);
        // Another key does not verify it.
        let other = SigningKey::generate().decoding_key().unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&issued.token, &other, &validation).is_err());
    }
}
