//! The credentials file.
//!
//! Location: `$XDG_CONFIG_HOME/maxcloud/credentials`, or `$HOME/.config/maxcloud/credentials` when
//! `XDG_CONFIG_HOME` is unset or empty. Format: one JSON object, written with mode 0600 (the directory
//! 0700), e.g.
//!
//! ```json
//! {
//!   "api_url": "https://api.maxcloud.dev",
//!   "api_key": "mc_...",
//!   "email": "alice@example.com",
//!   "org": "acme-shop"
//! }
//! ```
//!
//! Every field is optional when read; unknown fields are ignored (kept forward-compatible).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The organisation's slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// Where the credentials file lives, from the environment (`XDG_CONFIG_HOME`, else `HOME`).
pub fn credentials_path() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    credentials_path_from(var("XDG_CONFIG_HOME"), var("HOME"))
}

fn credentials_path_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf> {
    // The XDG spec says relative paths are invalid and must be ignored.
    let base = match (xdg.filter(|p| p.is_absolute()), home) {
        (Some(xdg), _) => xdg,
        (None, Some(home)) => home.join(".config"),
        (None, None) => {
            return Err(anyhow!("cannot locate the credentials file: neither XDG_CONFIG_HOME nor HOME is set"))
        }
    };
    Ok(base.join("maxcloud").join("credentials"))
}

/// Reads the credentials file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read credentials file {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let creds = serde_json::from_str(&text).with_context(|| {
        format!("invalid credentials file {} (delete it or run `maxcloud auth register`)", path.display())
    })?;
    Ok(Some(creds))
}

/// Writes the credentials file atomically (temporary file + rename), readable by the owner only.
pub fn save(path: &Path, creds: &Credentials) -> Result<()> {
    let dir = path.parent().ok_or_else(|| anyhow!("invalid credentials path {}", path.display()))?;
    create_private_dir(dir)?;
    let mut text = serde_json::to_string_pretty(creds).context("cannot encode credentials")?;
    text.push('\n');
    let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    write_private(&tmp, text.as_bytes()).with_context(|| format!("cannot write credentials file {}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("cannot write credentials file {}: {e}", path.display())
    })
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // The mode above applies only when the file is new.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefers_absolute_xdg_config_home() {
        let p = credentials_path_from(Some("/x/cfg".into()), Some("/home/u".into())).unwrap();
        assert_eq!(p, PathBuf::from("/x/cfg/maxcloud/credentials"));
        let p = credentials_path_from(None, Some("/home/u".into())).unwrap();
        assert_eq!(p, PathBuf::from("/home/u/.config/maxcloud/credentials"));
        let p = credentials_path_from(Some("relative".into()), Some("/home/u".into())).unwrap();
        assert_eq!(p, PathBuf::from("/home/u/.config/maxcloud/credentials"));
        assert!(credentials_path_from(None, None).is_err());
    }

    #[test]
    fn round_trip_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join("maxcloud").join("credentials");
        assert_eq!(load(&path).unwrap(), None);
        let creds = Credentials {
            api_url: Some("http://127.0.0.1:9".into()),
            api_key: Some("mc_secret".into()),
            email: Some("a@example.com".into()),
            org: Some("acme-shop".into()),
        };
        save(&path, &creds).unwrap();
        assert_eq!(load(&path).unwrap(), Some(creds.clone()));
        // Overwriting keeps the mode and replaces the content.
        let other = Credentials { api_key: Some("mc_other".into()), ..creds };
        save(&path, &other).unwrap();
        assert_eq!(load(&path).unwrap(), Some(other));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn partial_and_unknown_fields_are_accepted_but_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, r#"{"api_key":"mc_x","future":1}"#).unwrap();
        let creds = load(&path).unwrap().unwrap();
        assert_eq!(creds.api_key.as_deref(), Some("mc_x"));
        assert_eq!(creds.api_url, None);
        std::fs::write(&path, "api_key = mc_x").unwrap();
        let err = load(&path).unwrap_err();
        assert!(format!("{err:#}").contains("invalid credentials file"), "{err:#}");
    }
}
