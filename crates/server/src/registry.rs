//! The container registry's token service: the signing key (loaded, or generated in `dev`), the JWKS the
//! registry trusts it by, and the API's [`RegistryConfig`].
//!
//! Distribution is configured with (see `crates/testenv/src/registry.rs` for a complete file):
//!
//! ```yaml
//! auth:
//!   token:
//!     realm: https://<this server>/api/v1/registry/token
//!     service: max-cloud-registry          # --registry-service
//!     issuer: max-cloud                    # --registry-issuer
//!     jwks: /etc/registry/jwks.json        # `maxcloud-server registry-jwks --registry-key-file …`
//!     signingalgorithms: [ES256]
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use maxcloud_api::registry::RegistryConfig;
use maxcloud_registry::SigningKey;

/// How the server issues registry tokens.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// PKCS#8 PEM of the ES256 signing key; `None`: `<data dir>/registry/token-key.pem`.
    pub key_file: Option<PathBuf>,
    /// Create the key file when it does not exist (`dev`).
    pub generate: bool,
    pub service: String,
    pub issuer: String,
    /// Where the server reaches the registry (listing a tenant's images); `None`: tokens only.
    pub url: Option<String>,
    /// Host of image references shown to clients; default: the host of `url`.
    pub public_host: Option<String>,
}

impl RegistrySettings {
    /// `dev` defaults: a key generated into the data directory, the default service and issuer, no registry.
    pub fn dev() -> RegistrySettings {
        RegistrySettings {
            key_file: None,
            generate: true,
            service: maxcloud_registry::DEFAULT_SERVICE.to_string(),
            issuer: maxcloud_registry::DEFAULT_ISSUER.to_string(),
            url: None,
            public_host: None,
        }
    }

    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| data_dir.join("registry").join("token-key.pem"))
    }

    /// Where the JWKS of the key is written: `<data dir>/registry/jwks.json`.
    pub fn jwks_path(data_dir: &Path) -> PathBuf {
        data_dir.join("registry").join("jwks.json")
    }

    /// Loads (or generates) the key, writes its JWKS into the data directory, and returns the API's settings.
    pub fn load(&self, data_dir: &Path) -> anyhow::Result<RegistryConfig> {
        let path = self.key_path(data_dir);
        let key = if path.exists() || !self.generate {
            let pem = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the registry token key {}", path.display()))?;
            SigningKey::from_pem(&pem).with_context(|| format!("registry token key {}", path.display()))?
        } else {
            let key = SigningKey::generate();
            write_private(&path, key.to_pem())
                .with_context(|| format!("cannot write the registry token key {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the registry token key");
            key
        };
        let jwks = Self::jwks_path(data_dir);
        if let Some(dir) = jwks.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&jwks, serde_json::to_vec_pretty(&key.jwks())?)
            .with_context(|| format!("cannot write {}", jwks.display()))?;
        if let Some(url) = &self.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!("--registry-url must be an http(s) URL, got {url:?}");
            }
        }
        Ok(RegistryConfig {
            key,
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            url: self.url.clone(),
            public_host: self.public_host.clone(),
        })
    }
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_generates_the_key_once_and_publishes_its_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let first = RegistrySettings::dev().load(dir.path()).unwrap();
        let path = RegistrySettings::dev().key_path(dir.path());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = RegistrySettings::dev().load(dir.path()).unwrap();
        assert_eq!(first.key.kid(), again.key.kid());
        let jwks: serde_json::Value =
            serde_json::from_slice(&std::fs::read(RegistrySettings::jwks_path(dir.path())).unwrap()).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], first.key.kid());
        // Without `generate` a missing key is an error naming the file.
        let serve = RegistrySettings {
            key_file: Some(dir.path().join("none.pem")),
            generate: false,
            ..RegistrySettings::dev()
        };
        assert!(format!("{:#}", serve.load(dir.path()).unwrap_err()).contains("none.pem"));
        let bad_url = RegistrySettings { url: Some("ftp://x".into()), ..RegistrySettings::dev() };
        assert!(format!("{:#}", bad_url.load(dir.path()).unwrap_err()).contains("--registry-url"));
    }
}
