//! The token signing key: ECDSA P-256 (ES256), kept as a PKCS#8 PEM file.
//!
//! Distribution v3 (`registry/auth/token`) finds the key that signed a token from its JOSE header: an `x5c`
//! chain up to `auth.token.rootcertbundle`, an embedded `jwk`, or a `kid` looked up among the keys of
//! `auth.token.jwks` (by their `kid`) and of the root certificates (by their RFC 7638 thumbprint). We sign with
//! `kid` = the key's RFC 7638 thumbprint and publish the public key as a one-key JWKS with that `kid`, so the
//! registry is configured with `jwks: <file>` and `signingalgorithms: [ES256]`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM ECDSA P-256 private key (`-----BEGIN PRIVATE KEY-----`): {0}")]
    Parse(String),
    #[error("cannot encode the key: {0}")]
    Encode(String),
}

/// The private key with what the token service derives from it.
#[derive(Clone)]
pub struct SigningKey {
    pem: String,
    encoding: jsonwebtoken::EncodingKey,
    x: String,
    y: String,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> SigningKey {
        loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // A 32-byte string is a valid scalar unless it is zero or at least the group order: retry (~2^-32).
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                if let Ok(key) = SigningKey::from_secret(secret) {
                    return key;
                }
            }
        }
    }

    /// Loads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) of a P-256 key, e.g. made by
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError::Parse(e.to_string()))?;
        SigningKey::from_secret(secret)
    }

    fn from_secret(secret: p256::SecretKey) -> Result<SigningKey, KeyError> {
        let der = secret.to_pkcs8_der().map_err(|e| KeyError::Encode(e.to_string()))?;
        let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Encode(e.to_string()))?.to_string();
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(KeyError::Encode("public key at infinity".into()));
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        // RFC 7638: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let encoding = jsonwebtoken::EncodingKey::from_ec_der(der.as_bytes());
        Ok(SigningKey { pem, encoding, x, y, kid })
    }

    /// The PKCS#8 PEM to store (a secret: write it with mode 0600).
    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    /// The key id (`kid`) of the tokens: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn encoding(&self) -> &jsonwebtoken::EncodingKey {
        &self.encoding
    }

    /// The public key as a JWK (`kty` EC, `crv` P-256, `kid`, `alg` ES256, `use` sig).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
            "kid": self.kid, "alg": "ES256", "use": "sig",
        })
    }

    /// The JWKS the registry trusts (`auth.token.jwks`): `{"keys": [<public JWK>]}`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.public_jwk()] })
    }

    /// A key that verifies this key's tokens.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, KeyError> {
        jsonwebtoken::DecodingKey::from_ec_components(&self.x, &self.y).map_err(|e| KeyError::Encode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_pem_and_publishes_its_thumbprint() {
        let key = SigningKey::generate();
        assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = SigningKey::from_pem(key.to_pem()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.jwks(), key.jwks());
        let jwk = &key.jwks()["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str()),
            (Some("EC"), Some("P-256"), Some("ES256"))
        );
        assert_eq!(jwk["kid"], key.kid());
        // 32-byte coordinates, 43 base64url characters each; a SHA-256 thumbprint is 43 characters too.
        assert_eq!((key.x.len(), key.y.len(), key.kid().len()), (43, 43, 43));
        assert_ne!(SigningKey::generate().kid(), key.kid());
    }

    #[test]
    fn refuses_what_is_no_p256_pkcs8_key() {
        for bad in ["", "hello", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"] {
            assert!(matches!(SigningKey::from_pem(bad), Err(KeyError::Parse(_))), "{bad}");
        }
    }
}
