//! Reading a local image for `maxcloud push`: an OCI image layout (a directory, or a tar of one — what
//! `docker save` writes since Docker 25, and `skopeo copy … oci-archive:`), or a classic `docker save` archive
//! (`manifest.json` + config + layer tars), optionally gzip-compressed.
//!
//! Parsed by hand, only as far as pushing needs: oci-client moves blobs and manifests to a registry but reads
//! neither format, and both are a JSON index and content-addressed files. The image's manifest is pushed byte
//! for byte (its digest stays the one `index.json` names); a docker archive gets an OCI manifest built over its
//! config and its (uncompressed) layer tars. Every blob is checked against its digest before anything is sent.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Largest image file read (the whole image is held in memory while pushing).
const MAX_TOTAL: u64 = 4 << 30;

/// An image ready to push: its manifest (exact bytes) and every blob it references.
pub struct Image {
    pub manifest: Vec<u8>,
    pub media_type: String,
    /// `sha256:<hex>` of the manifest.
    pub digest: String,
    /// (digest, content), config first, then the layers in order.
    pub blobs: Vec<(String, Vec<u8>)>,
    /// `oci-layout` or `docker-archive`.
    pub format: &'static str,
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Reads `path`: a directory is an OCI layout; a file is a tar (or .tar.gz) of an OCI layout or a docker archive.
pub fn read(path: &Path) -> Result<Image> {
    let meta = std::fs::metadata(path).with_context(|| format!("LOCAL-IMAGE {}", path.display()))?;
    let files = if meta.is_dir() {
        Files::Dir(path.to_path_buf())
    } else {
        Files::Tar(
            read_tar(path).with_context(|| format!("LOCAL-IMAGE {}: not a readable tar archive", path.display()))?,
        )
    };
    if files.exists("oci-layout") && files.exists("index.json") {
        from_oci_layout(&files).with_context(|| format!("LOCAL-IMAGE {} (OCI image layout)", path.display()))
    } else if files.exists("manifest.json") {
        from_docker_archive(&files).with_context(|| format!("LOCAL-IMAGE {} (docker archive)", path.display()))
    } else {
        bail!(
            "LOCAL-IMAGE {}: neither an OCI image layout (oci-layout, index.json) nor a docker archive (manifest.json)",
            path.display()
        )
    }
}

enum Files {
    Dir(std::path::PathBuf),
    Tar(HashMap<String, Vec<u8>>),
}

impl Files {
    fn exists(&self, name: &str) -> bool {
        match self {
            Files::Dir(dir) => dir.join(name).is_file(),
            Files::Tar(map) => map.contains_key(name),
        }
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        if name.split('/').any(|c| c == ".." || c.is_empty()) {
            bail!("refusing path {name:?}");
        }
        match self {
            Files::Dir(dir) => std::fs::read(dir.join(name)).with_context(|| format!("{name} is missing")),
            Files::Tar(map) => map.get(name).cloned().with_context(|| format!("{name} is missing")),
        }
    }

    fn json(&self, name: &str) -> Result<Value> {
        serde_json::from_slice(&self.get(name)?).with_context(|| format!("{name} is not valid JSON"))
    }
}

/// Every regular file of a tar (gzip-compressed or not), by normalised path.
fn read_tar(path: &Path) -> Result<HashMap<String, Vec<u8>>> {
    let mut raw = Vec::new();
    std::fs::File::open(path)?.take(MAX_TOTAL).read_to_end(&mut raw)?;
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).take(MAX_TOTAL).read_to_end(&mut out).context("bad gzip data")?;
        out
    } else {
        raw
    };
    let mut archive = tar::Archive::new(&data[..]);
    let mut files = HashMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().trim_start_matches("./").to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        files.insert(name, content);
    }
    if files.is_empty() {
        bail!("the archive holds no files");
    }
    Ok(files)
}

/// `sha256:<64 hex>` → `blobs/sha256/<hex>`.
fn blob_path(digest: &str) -> Result<String> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(format!("blobs/sha256/{hex}"))
        }
        _ => bail!("unsupported digest {digest:?}: expected sha256:<64 lowercase hex digits>"),
    }
}

/// A blob of the layout, checked against its digest (and size, when the descriptor has one).
fn blob(files: &Files, descriptor: &Value) -> Result<(String, Vec<u8>)> {
    let digest = descriptor["digest"].as_str().context("a descriptor has no digest")?;
    let data = files.get(&blob_path(digest)?)?;
    if sha256(&data) != digest {
        bail!("blob {digest} does not match its digest (corrupt layout)");
    }
    if let Some(size) = descriptor["size"].as_u64() {
        if size != data.len() as u64 {
            bail!("blob {digest} has {} bytes, its descriptor says {size}", data.len());
        }
    }
    Ok((digest.to_string(), data))
}

fn from_oci_layout(files: &Files) -> Result<Image> {
    let layout = files.json("oci-layout")?;
    if layout["imageLayoutVersion"].as_str().is_none() {
        bail!("oci-layout has no imageLayoutVersion");
    }
    let index = files.json("index.json")?;
    let manifests = index["manifests"].as_array().context("index.json has no manifests")?;
    let descriptor = match manifests.as_slice() {
        [one] => one,
        [] => bail!("index.json lists no image"),
        many => bail!("index.json lists {} images; push a layout holding one", many.len()),
    };
    let media_type = descriptor["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        bail!("the image is a multi-platform index; push one platform's image");
    }
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        bail!("unsupported manifest media type {media_type:?}");
    }
    let (digest, manifest) = blob(files, descriptor)?;
    let parsed: Value = serde_json::from_slice(&manifest).context("the manifest is not valid JSON")?;
    let mut blobs = vec![blob(files, &parsed["config"]).context("config")?];
    for layer in parsed["layers"].as_array().context("the manifest has no layers")? {
        blobs.push(blob(files, layer).context("layer")?);
    }
    Ok(Image { manifest, media_type, digest, blobs, format: "oci-layout" })
}

fn from_docker_archive(files: &Files) -> Result<Image> {
    let manifest = files.json("manifest.json")?;
    let entry = match manifest.as_array().map(Vec::as_slice) {
        Some([one]) => one,
        Some([]) | None => bail!("manifest.json lists no image"),
        Some(many) => bail!("manifest.json lists {} images; save one image per archive", many.len()),
    };
    let config_name = entry["Config"].as_str().context("manifest.json: no Config")?;
    let config = files.get(config_name)?;
    serde_json::from_slice::<Value>(&config).with_context(|| format!("{config_name} is not valid JSON"))?;
    let config_digest = sha256(&config);
    let mut layers = Vec::new();
    let mut blobs = vec![(config_digest.clone(), config.clone())];
    for name in entry["Layers"].as_array().context("manifest.json: no Layers")? {
        let name = name.as_str().context("manifest.json: a layer is no file name")?;
        let data = files.get(name)?;
        let digest = sha256(&data);
        let media_type = if data.starts_with(&[0x1f, 0x8b]) { OCI_LAYER_GZIP } else { OCI_LAYER };
        layers.push(json!({"mediaType": media_type, "digest": digest, "size": data.len()}));
        blobs.push((digest, data));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": layers,
    }))?;
    Ok(Image { digest: sha256(&manifest), manifest, media_type: OCI_MANIFEST.into(), blobs, format: "docker-archive" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// (files of an OCI layout, manifest digest) of a one-layer image; `index` overrides index.json.
    fn layout(index: Option<Value>) -> (Vec<(String, Vec<u8>)>, String) {
        let layer = tar_of(&[("a.txt", b"a")]);
        let config = br#"{"os":"linux"}"#.to_vec();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(&layer), "size": layer.len()}],
        }))
        .unwrap();
        let digest = sha256(&manifest);
        let index = index.unwrap_or_else(
            || json!({"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len()}]}),
        );
        let mut files = vec![
            ("oci-layout".to_string(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json".to_string(), index.to_string().into_bytes()),
        ];
        for blob in [layer, config, manifest] {
            files.push((format!("blobs/sha256/{}", &sha256(&blob)[7..]), blob));
        }
        (files, digest)
    }

    fn write_tar(dir: &Path, name: &str, files: &[(String, Vec<u8>)], gzip: bool) -> std::path::PathBuf {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        let mut data = tar_of(&refs);
        if gzip {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&data).unwrap();
            data = enc.finish().unwrap();
        }
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    #[test]
    fn reads_layouts_as_directories_and_tars_plain_or_gzipped() {
        let dir = tempfile::tempdir().unwrap();
        let (files, digest) = layout(None);
        let tree = dir.path().join("tree");
        for (name, data) in &files {
            let path = tree.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
        for path in [tree, write_tar(dir.path(), "l.tar", &files, false), write_tar(dir.path(), "l.tgz", &files, true)]
        {
            let image = read(&path).unwrap();
            assert_eq!((image.digest.as_str(), image.format), (digest.as_str(), "oci-layout"));
            assert_eq!(sha256(&image.manifest), digest, "pushed byte for byte");
            assert_eq!(image.blobs.len(), 2);
        }
    }

    #[test]
    fn builds_an_oci_manifest_over_a_docker_archive() {
        let dir = tempfile::tempdir().unwrap();
        let layer = tar_of(&[("a.txt", b"a")]);
        let config = br#"{"os":"linux"}"#.to_vec();
        let files = vec![
            (
                "manifest.json".to_string(),
                br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l/layer.tar"]}]"#.to_vec(),
            ),
            ("c.json".to_string(), config.clone()),
            ("l/layer.tar".to_string(), layer.clone()),
        ];
        let image = read(&write_tar(dir.path(), "d.tar", &files, false)).unwrap();
        assert_eq!(image.format, "docker-archive");
        let manifest: Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["config"]["digest"], sha256(&config));
        assert_eq!(
            manifest["layers"][0],
            json!({"mediaType": OCI_LAYER, "digest": sha256(&layer), "size": layer.len()})
        );
        assert_eq!(image.blobs, vec![(sha256(&config), config), (sha256(&layer), layer)]);
    }

    #[test]
    fn refuses_what_it_cannot_push_faithfully() {
        let dir = tempfile::tempdir().unwrap();
        let err = |files: &[(String, Vec<u8>)]| {
            let path = write_tar(dir.path(), "x.tar", files, false);
            format!("{:#}", read(&path).err().expect("refused"))
        };
        let (files, _) = layout(Some(json!({"manifests": []})));
        assert!(err(&files).contains("lists no image"));
        let (files, digest) = layout(None);
        let two = json!({"manifests": [{"mediaType": OCI_MANIFEST, "digest": digest}, {"mediaType": OCI_MANIFEST, "digest": digest}]});
        let (files2, _) = layout(Some(two));
        assert!(err(&files2).contains("lists 2 images"));
        let (files3, _) = layout(Some(json!({"manifests": [{"mediaType": OCI_INDEX, "digest": digest}]})));
        assert!(err(&files3).contains("multi-platform"));
        let (files4, _) =
            layout(Some(json!({"manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:../../etc"}]})));
        assert!(err(&files4).contains("unsupported digest"));
        let mut tampered = files.clone();
        let last = tampered.len() - 1;
        tampered[last].1.push(b' ');
        assert!(err(&tampered).contains("does not match its digest"));
        let missing: Vec<_> = files.iter().filter(|(n, _)| !n.starts_with("blobs/")).cloned().collect();
        assert!(err(&missing).contains("is missing"));
        assert!(err(&[("README".to_string(), b"hi".to_vec())]).contains("neither an OCI image layout"));
    }
}
