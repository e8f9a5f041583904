//! Tenant secrets: values a tenant sets (`maxcloud secrets set`) reach its namespace only as SOPS-encrypted
//! Kubernetes Secrets committed to the tenant repository, which Flux's kustomize-controller decrypts with the
//! tenant's own age key (`spec.decryption` of the tenant Kustomization). Git, the store and the order log never
//! hold a value in plain text.
//!
//! Key custody ([`keys`]): every tenant has an x25519 age key pair. The public half (recipient) encrypts; the
//! private half (identity) is kept in the store only *sealed* — age-encrypted to the platform's master key
//! ([`MasterKey`], a file the operator provides or `dev` generates) — and is unsealed only to hand it to Flux as
//! the tenant's decryption Secret in the cluster.
//!
//! File format ([`sops`]): what `sops --encrypt --age <recipient> --encrypted-regex '^(data|stringData)$'
//! --mac-only-encrypted` writes, decryptable by the `sops` CLI and by Flux.

pub mod keys;
pub mod sops;

pub use keys::{MasterKey, TenantKey};
pub use sops::{decrypt_secret, encrypt_secret, SecretManifest};

/// What can go wrong with keys and files.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("key: {0}")]
    Key(String),
    #[error("encryption: {0}")]
    Encrypt(String),
    #[error("decryption: {0}")]
    Decrypt(String),
    #[error("file: {0}")]
    Format(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A Secret's values, checked: 1–100 keys, each a Kubernetes Secret key (`[-._a-zA-Z0-9]+`, at most 253
/// characters, not `.` or `..`), values UTF-8 text up to 64 KiB each and 512 KiB together (the API server's limit
/// for the whole object is 1 MiB, and encryption grows values by a third).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretData(std::collections::BTreeMap<String, String>);

/// Most keys one Secret may hold.
pub const MAX_KEYS: usize = 100;
const MAX_VALUE: usize = 64 * 1024;
const MAX_TOTAL: usize = 512 * 1024;

impl SecretData {
    /// Checks every key and value; the errors name each bad one as `(field, message)` with the field
    /// `data.<KEY>` (or `data` for the whole).
    pub fn parse(data: std::collections::BTreeMap<String, String>) -> Result<SecretData, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if data.is_empty() {
            errors.push(("data".to_string(), "give at least one KEY=VALUE".to_string()));
        }
        if data.len() > MAX_KEYS {
            errors.push(("data".to_string(), format!("at most {MAX_KEYS} keys per secret, got {}", data.len())));
        }
        let mut total = 0;
        for (key, value) in &data {
            let field = format!("data.{key}");
            let valid_chars = key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if key.is_empty() || key.len() > 253 || !valid_chars || key == "." || key == ".." {
                errors.push((
                    field.clone(),
                    "a key is 1-253 characters of letters, digits, '-', '_' and '.' (not '.' or '..')".to_string(),
                ));
            }
            if value.len() > MAX_VALUE {
                errors.push((field, format!("a value is at most {MAX_VALUE} bytes, this one has {}", value.len())));
            }
            total += value.len();
        }
        if total > MAX_TOTAL {
            errors
                .push(("data".to_string(), format!("the values together are at most {MAX_TOTAL} bytes, got {total}")));
        }
        if errors.is_empty() {
            Ok(SecretData(data))
        } else {
            Err(errors)
        }
    }

    pub fn keys(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    pub fn values(&self) -> &std::collections::BTreeMap<String, String> {
        &self.0
    }
}

#[cfg(test)]
mod data_tests {
    use super::*;

    #[test]
    fn keys_and_sizes_are_checked_and_named() {
        let ok =
            SecretData::parse([("DB_PASSWORD".into(), "x".into()), ("tls.crt".into(), "y".into())].into()).unwrap();
        assert_eq!(ok.keys(), ["DB_PASSWORD", "tls.crt"]);
        let errors = SecretData::parse(
            [("bad key".into(), "v".into()), ("..".into(), "v".into()), ("big".into(), "x".repeat(70_000))].into(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["data...", "data.bad key", "data.big"], "{errors:?}");
        assert_eq!(SecretData::parse(Default::default()).unwrap_err()[0].0, "data");
    }
}
