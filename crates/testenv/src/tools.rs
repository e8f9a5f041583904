//! The pinned upstream tools `scripts/testbin.sh` builds from their Go modules, and where they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::Error;

/// The repository root (this crate lives in `crates/testenv`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap_or_else(|_| PathBuf::from("."))
}

/// Pinned versions from `scripts/versions.env` (KEY=VALUE lines).
pub fn versions() -> &'static BTreeMap<String, String> {
    static VERSIONS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        let text = std::fs::read_to_string(workspace_root().join("scripts/versions.env")).unwrap_or_default();
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    })
}

/// One pinned version, e.g. `version("KUBERNETES_VERSION")`.
pub fn version(key: &str) -> Result<&'static str, Error> {
    versions()
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| Error::Tool(format!("{key} missing from scripts/versions.env")))
}

/// The tool cache, built by `scripts/testbin.sh` on first use (a no-op when everything is there). Honours
/// `MAXCLOUD_TESTBIN` like the script does; with `MAXCLOUD_TESTBIN_PREBUILT=1` as well, that directory is used as
/// it is (tools built beforehand, e.g. by `scripts/test.sh`); a missing tool still fails in [`tool`].
pub fn testbin() -> Result<&'static Path, Error> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        if let (Ok(dir), Ok("1")) =
            (std::env::var("MAXCLOUD_TESTBIN"), std::env::var("MAXCLOUD_TESTBIN_PREBUILT").as_deref())
        {
            return Ok(PathBuf::from(dir));
        }
        let out = Command::new("bash")
            .arg(workspace_root().join("scripts/testbin.sh"))
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run scripts/testbin.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("scripts/testbin.sh failed ({})", out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().last().map(|l| PathBuf::from(l.trim())).ok_or_else(|| "testbin.sh printed no directory".into())
    });
    dir.as_deref().map_err(|e| Error::Tool(e.clone()))
}

/// Path of a tool binary: `<testbin>/<name>-<version>/<binary>`.
pub fn tool(name: &str, version_key: &str, binary: &str) -> Result<PathBuf, Error> {
    let path = testbin()?.join(format!("{name}-{}", version(version_key)?)).join(binary);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Tool(format!("{} was not built by scripts/testbin.sh", path.display())))
    }
}

/// Concatenated YAML of the CRD files of one fetched CRD set (`<testbin>/crds/<project>-<version>/*.yaml`).
pub fn crd_set(project: &str, version_key: &str) -> Result<String, Error> {
    let dir = testbin()?.join("crds").join(format!("{project}-{}", version(version_key)?));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::Tool(format!("{}: {e} (fetched by scripts/testbin.sh)", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Tool(format!("no CRDs in {}", dir.display())));
    }
    let mut text = String::new();
    for file in files {
        text.push_str("---\n");
        text.push_str(&std::fs::read_to_string(file)?);
        text.push('\n');
    }
    Ok(text)
}

/// The CRD Crossplane derives from the XRD `xrds/<file>` (`crossplane xrd convert` of the pinned CLI), without
/// the owner reference to the XRD that Crossplane sets in a cluster: what a test control plane installs when
/// Crossplane itself is not running.
pub fn catalog_crd(file: &str) -> Result<serde_json::Value, Error> {
    let path = workspace_root().join("xrds").join(file);
    let out = Command::new(tool("crossplane-cli", "CROSSPLANE_CLI_VERSION", "crossplane")?)
        .args(["xrd", "convert"])
        .arg(&path)
        .output()
        .map_err(|e| Error::Tool(format!("crossplane xrd convert: {e}")))?;
    if !out.status.success() {
        return Err(Error::Tool(format!("xrd convert {}: {}", path.display(), String::from_utf8_lossy(&out.stderr))));
    }
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).map_err(|e| Error::Yaml(e.to_string()))?;
    // A namespaced (Crossplane v2) XRD yields exactly one CRD: the XR's.
    let mut crds: Vec<serde_json::Value> =
        docs.into_iter().filter(|d| d["kind"] == "CustomResourceDefinition").collect();
    if crds.len() != 1 {
        return Err(Error::Tool(format!("xrd convert {} printed {} CRDs, expected one", path.display(), crds.len())));
    }
    let mut crd = crds.remove(0);
    if let Some(metadata) = crd["metadata"].as_object_mut() {
        metadata.remove("ownerReferences");
    }
    Ok(crd)
}

/// [`catalog_crd`] of every XRD in `xrds/`, by file name.
pub fn catalog_crds() -> Result<Vec<serde_json::Value>, Error> {
    let mut files: Vec<String> = std::fs::read_dir(workspace_root().join("xrds"))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    files.iter().map(|f| catalog_crd(f)).collect()
}
