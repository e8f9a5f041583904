//! `maxcloud push LOCAL-IMAGE --name NAME[:TAG]` and `maxcloud images`: the organisation's container registry.
//!
//! `push` asks the server where the registry is (`GET /api/v1/registry`: host, the organisation's prefix), reads
//! the local image (`image.rs`) and pushes it with oci-client to `<host>/<prefix>/<name>:<tag>`, authenticating
//! as docker does: Basic with the API key against the registry's token endpoint (this server's), which grants
//! pull and push on the organisation's own repositories only.

mod image;

use anyhow::{bail, Context, Result};
use maxcloud_api_model::{RegistryImages, RegistryInfo};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use serde::Serialize;

use super::Ctx;
use crate::cli::PushArgs;
use crate::output::{print_doc, write_stdout, KeyValues, Table};

/// What `push` did.
#[derive(Debug, Serialize)]
pub struct Pushed {
    /// `<host>/<prefix>/<name>:<tag>`
    pub reference: String,
    /// `sha256:…` of the pushed manifest: pull by `<host>/<prefix>/<name>@<digest>`.
    pub digest: String,
    pub format: String,
    pub layers: usize,
    /// Bytes of blobs sent (blobs the registry already had are not sent again).
    pub uploaded_bytes: u64,
}

/// `NAME[:TAG]` of `--name`, checked against the reference grammar; the tag defaults to `latest`.
pub fn parse_name(text: &str) -> Result<(String, String)> {
    let (name, tag) = match text.rsplit_once(':') {
        Some((name, tag)) => (name, tag),
        None => (text, "latest"),
    };
    if let Err(why) = maxcloud_registry::names::check_repository(name) {
        bail!("--name {text:?}: the name {why}");
    }
    if let Err(why) = maxcloud_registry::names::check_tag(tag) {
        bail!("--name {text:?}: the tag {why}");
    }
    Ok((name.to_string(), tag.to_string()))
}

fn rustls_provider() {
    // reqwest 0.13 (oci-client) is built without a provider of its own: ring, as for the rest of the CLI.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn push(ctx: &Ctx, args: PushArgs) -> Result<()> {
    let (name, tag) = parse_name(&args.name)?;
    let image = image::read(&args.image)?;
    let info: RegistryInfo = ctx.client.get("/api/v1/registry").await?;
    if !info.actions.iter().any(|a| a == "push") {
        bail!("your role may not push to the organisation's registry");
    }
    let host = info.host.context("the server has no container registry connected (--registry-url)")?;
    let repository = format!("{}/{name}", info.prefix);
    if let Err(why) = maxcloud_registry::names::check_repository(&repository) {
        bail!("--name {:?}: {repository:?}: {why}", args.name);
    }
    let reference: Reference =
        format!("{host}/{repository}:{tag}").parse().with_context(|| format!("--name {:?}", args.name))?;
    let key = ctx.client.api_key().context("no API key: run `maxcloud auth register` or set MAXCLOUD_API_KEY")?;
    rustls_provider();
    let protocol = if info.insecure { ClientProtocol::HttpsExcept(vec![host.clone()]) } else { ClientProtocol::Https };
    let client = oci_client::Client::new(ClientConfig { protocol, ..Default::default() });
    let auth = RegistryAuth::Basic("maxcloud".into(), key.to_string());
    client.auth(&reference, &auth, RegistryOperation::Push).await.map_err(registry_error)?;
    let mut uploaded = 0u64;
    for (digest, data) in &image.blobs {
        if client.blob_exists(&reference, digest).await.map_err(registry_error)? {
            continue;
        }
        uploaded += data.len() as u64;
        client.push_blob(&reference, data.clone(), digest).await.map_err(registry_error)?;
    }
    let content_type = image.media_type.parse().context("manifest media type")?;
    client.push_manifest_raw(&reference, image.manifest.clone(), content_type).await.map_err(registry_error)?;
    let pushed = Pushed {
        reference: reference.whole(),
        digest: image.digest.clone(),
        format: image.format.to_string(),
        layers: image.blobs.len().saturating_sub(1),
        uploaded_bytes: uploaded,
    };
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &pushed);
    }
    let mut kv = KeyValues::new();
    kv.add("pushed", &pushed.reference)
        .add("digest", &pushed.digest)
        .add("format", &pushed.format)
        .add("layers", pushed.layers.to_string())
        .add("uploaded", format!("{} bytes", pushed.uploaded_bytes));
    write_stdout(&kv.render())
}

/// The registry's refusal in one line.
fn registry_error(e: oci_client::errors::OciDistributionError) -> anyhow::Error {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::AuthenticationFailure(body) => {
            let message =
                serde_json::from_str::<maxcloud_api_model::ErrorBody>(&body).map(|b| b.error.message).unwrap_or(body);
            anyhow::anyhow!("the registry's token service refused: {message}")
        }
        E::UnauthorizedError { url } => {
            anyhow::anyhow!("the registry refused access ({url}): not your organisation's repository?")
        }
        other => anyhow::anyhow!("registry: {other}"),
    }
}

pub async fn images(ctx: &Ctx) -> Result<()> {
    let images: RegistryImages = ctx.client.get("/api/v1/registry/images").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &images);
    }
    if images.images.is_empty() {
        return write_stdout(&format!(
            "no images in {}/{}/ yet: maxcloud push LOCAL-IMAGE --name NAME[:TAG]\n",
            images.host, images.prefix
        ));
    }
    let mut table = Table::new(["NAME", "TAGS", "REFERENCE"]);
    for image in &images.images {
        table.row([image.name.clone(), image.tags.join(", "), image.reference.clone()]);
    }
    write_stdout(&table.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert_eq!(parse_name("web").unwrap(), ("web".into(), "latest".into()));
        assert_eq!(parse_name("tools/builder:1.2").unwrap(), ("tools/builder".into(), "1.2".into()));
        for bad in ["Web", "web:", "web:-x", "web/", "we b", ":1", "web:a/b", "web:1:2"] {
            let e = parse_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("--name"), "{bad}: {e}");
        }
    }
}
