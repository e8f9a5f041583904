//! The platform's master key and the tenants' age keys.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use age::x25519::{Identity, Recipient};

use crate::SecretsError;

/// A tenant's age key pair. `identity` is the private key (`AGE-SECRET-KEY-1…`): it leaves the process only
/// sealed, or as the tenant's decryption Secret in the cluster.
pub struct TenantKey {
    identity: Identity,
}

impl TenantKey {
    pub fn generate() -> TenantKey {
        TenantKey { identity: Identity::generate() }
    }

    pub fn parse(identity: &str) -> Result<TenantKey, SecretsError> {
        Identity::from_str(identity.trim())
            .map(|identity| TenantKey { identity })
            .map_err(|e| SecretsError::Key(format!("not an age identity: {e}")))
    }

    /// The public key files are encrypted to (`age1…`).
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// The private key as Flux reads it from a `*.agekey` entry of the decryption Secret.
    pub fn identity(&self) -> String {
        self.identity.to_string().expose_secret().to_string()
    }

    pub(crate) fn age_identity(&self) -> &Identity {
        &self.identity
    }
}

/// The platform's master key: seals the tenants' identities for the store.
pub struct MasterKey {
    identity: Identity,
}

impl MasterKey {
    /// Reads an age identity file (comment lines `#`, one `AGE-SECRET-KEY-1…` line).
    pub fn load(path: &Path) -> Result<MasterKey, SecretsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SecretsError::Key(format!("cannot read the master key {}: {e}", path.display())))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .ok_or_else(|| SecretsError::Key(format!("{} holds no AGE-SECRET-KEY line", path.display())))?;
        let identity = Identity::from_str(line).map_err(|e| {
            SecretsError::Key(format!("the master key in {} is not an age identity: {e}", path.display()))
        })?;
        Ok(MasterKey { identity })
    }

    /// Loads the key at `path`, or creates one there (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, SecretsError> {
        if path.exists() {
            return MasterKey::load(path);
        }
        let identity = Identity::generate();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path)?;
        writeln!(
            file,
            "# max-cloud master key: seals the tenants' SOPS keys in the store. Keep it secret and backed up."
        )?;
        writeln!(file, "# public key: {}", identity.to_public())?;
        writeln!(file, "{}", identity.to_string().expose_secret())?;
        file.sync_all()?;
        Ok(MasterKey { identity })
    }

    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// Encrypts a tenant identity to this key (ASCII-armored age file).
    pub fn seal(&self, key: &TenantKey) -> Result<String, SecretsError> {
        age::encrypt_and_armor(&self.identity.to_public(), key.identity().as_bytes())
            .map_err(|e| SecretsError::Encrypt(e.to_string()))
    }

    pub fn unseal(&self, sealed: &str) -> Result<TenantKey, SecretsError> {
        let plain = age::decrypt(&self.identity, sealed.as_bytes())
            .map_err(|e| SecretsError::Decrypt(format!("cannot unseal a tenant key with this master key: {e}")))?;
        let text = String::from_utf8(plain).map_err(|_| SecretsError::Decrypt("sealed key is not text".into()))?;
        TenantKey::parse(&text)
    }
}

/// Parses a recipient (`age1…`).
pub(crate) fn recipient(text: &str) -> Result<Recipient, SecretsError> {
    Recipient::from_str(text).map_err(|e| SecretsError::Key(format!("not an age recipient {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_is_created_once_private_and_unseals_what_it_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.agekey");
        let master = MasterKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(master.recipient(), again.recipient(), "the existing file is reused");

        let tenant = TenantKey::generate();
        let sealed = master.seal(&tenant).unwrap();
        assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"), "{sealed}");
        assert!(!sealed.contains(&tenant.identity()), "sealed text holds no identity");
        assert_eq!(again.unseal(&sealed).unwrap().identity(), tenant.identity());

        let other = MasterKey::load_or_create(&dir.path().join("other.agekey")).unwrap();
        let err = other.unseal(&sealed).err().expect("another master key cannot unseal");
        assert!(err.to_string().contains("cannot unseal"), "{err}");
    }

    #[test]
    fn bad_key_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.agekey");
        std::fs::write(&path, "# nothing here\n").unwrap();
        let err = MasterKey::load(&path).err().unwrap().to_string();
        assert!(err.contains("holds no AGE-SECRET-KEY line"), "{err}");
        std::fs::write(&path, "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
        let err = MasterKey::load(&path).err().unwrap().to_string();
        assert!(err.contains("is not an age identity"), "{err}");
        assert!(TenantKey::parse("age1xyz").is_err());
    }
}
