//! Kubernetes Secrets as SOPS files (the format of getsops/sops 3.x, which Flux's kustomize-controller decrypts).
//!
//! Written by hand because no maintained Rust crate writes this format (the Rust "rops" project has its own,
//! incompatible one); it is small: every value under `stringData`/`data` becomes
//! `ENC[AES256_GCM,data:…,iv:…,tag:…,type:str]` — AES-256-GCM with a 32-byte IV, the value's path
//! (`stringData:KEY:`) as additional data — under a random data key that is age-encrypted (armored) to the
//! tenant's recipient. The MAC is SHA-512 over the encrypted values' plain texts (`mac_only_encrypted`, so that
//! the namespace kustomize sets or labels Flux adds cannot break it), upper-case hex, itself encrypted with the
//! `lastmodified` time as additional data.
//!
//! Every mapping is emitted with its keys sorted: kustomize-controller decrypts after converting the object to
//! JSON, and the MAC depends on the order values are visited in.

use std::collections::BTreeMap;

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};

use crate::keys::{recipient, TenantKey};
use crate::SecretsError;

/// The SOPS version whose format this writes (the one kustomize-controller v1.9 links).
pub const SOPS_VERSION: &str = "3.13.2";
/// Only the Secret's values are encrypted; names and labels stay readable in the repository.
pub const ENCRYPTED_REGEX: &str = "^(data|stringData)$";
/// sha256("sops"): the MAC's first bytes when it covers only encrypted values (`MACOnlyEncryptedInitialization`).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b,
    0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

type ValueCipher = AesGcm<Aes256, U32>;

/// An Opaque Secret: name, namespace, labels and its values (`stringData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretManifest {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
}

/// The Secret as a SOPS-encrypted YAML file, to `recipient` (`age1…`); `now` becomes `lastmodified`.
pub fn encrypt_secret(
    secret: &SecretManifest,
    recipient_text: &str,
    now: time::OffsetDateTime,
) -> Result<String, SecretsError> {
    let recipient = recipient(recipient_text)?;
    let mut data_key = [0u8; 32];
    rand::rng().fill_bytes(&mut data_key);
    let cipher = ValueCipher::new_from_slice(&data_key).map_err(|e| SecretsError::Encrypt(e.to_string()))?;

    let mut mac = Sha512::new();
    mac.update(MAC_ONLY_ENCRYPTED_INIT);
    let mut string_data = Map::new();
    for (key, value) in &secret.data {
        mac.update(value.as_bytes());
        string_data.insert(key.clone(), json!(encrypt_value(&cipher, value, &format!("stringData:{key}:"))?));
    }
    let last_modified = go_rfc3339(now)?;
    let mac = hex_upper(&mac.finalize());
    let enc_mac = encrypt_value(&cipher, &mac, &last_modified)?;
    let enc_key = age::encrypt_and_armor(&recipient, &data_key).map_err(|e| SecretsError::Encrypt(e.to_string()))?;

    let labels: Map<String, Value> = secret.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut metadata = Map::new();
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    metadata.insert("name".into(), json!(secret.name));
    metadata.insert("namespace".into(), json!(secret.namespace));
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "sops": {
            "age": [{"enc": enc_key, "recipient": recipient_text}],
            "encrypted_regex": ENCRYPTED_REGEX,
            "lastmodified": last_modified,
            "mac": enc_mac,
            "mac_only_encrypted": true,
            "version": SOPS_VERSION,
        },
        "stringData": string_data,
        "type": "Opaque",
    });
    serde_saphyr::to_string(&doc).map_err(|e| SecretsError::Format(e.to_string()))
}

/// Reads a file [`encrypt_secret`] wrote (or `sops` with the same settings), verifying its MAC.
pub fn decrypt_secret(yaml: &str, key: &TenantKey) -> Result<SecretManifest, SecretsError> {
    let doc: Value = serde_saphyr::from_str(yaml).map_err(|e| SecretsError::Format(format!("not YAML: {e}")))?;
    let sops = doc.get("sops").ok_or_else(|| SecretsError::Format("no sops metadata".into()))?;
    let text = |v: &Value, what: &str| {
        v.get(what)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| SecretsError::Format(format!("sops.{what} is missing")))
    };
    if sops.get("encrypted_regex").and_then(Value::as_str) != Some(ENCRYPTED_REGEX)
        || sops.get("mac_only_encrypted") != Some(&json!(true))
    {
        return Err(SecretsError::Format(format!(
            "only files encrypted with encrypted_regex {ENCRYPTED_REGEX:?} and mac_only_encrypted are read"
        )));
    }
    let own = key.recipient();
    let entry = sops
        .get("age")
        .and_then(Value::as_array)
        .and_then(|keys| keys.iter().find(|k| k.get("recipient").and_then(Value::as_str) == Some(own.as_str())))
        .ok_or_else(|| SecretsError::Decrypt(format!("the file is not encrypted to {own}")))?;
    let data_key = age::decrypt(key.age_identity(), text(entry, "enc")?.as_bytes())
        .map_err(|e| SecretsError::Decrypt(format!("data key: {e}")))?;
    let cipher = ValueCipher::new_from_slice(&data_key).map_err(|e| SecretsError::Decrypt(e.to_string()))?;

    let mut mac = Sha512::new();
    mac.update(MAC_ONLY_ENCRYPTED_INIT);
    let mut data = BTreeMap::new();
    let top = doc.as_object().ok_or_else(|| SecretsError::Format("not a mapping".into()))?;
    for (section, values) in top.iter().filter(|(k, _)| *k == "data" || *k == "stringData") {
        let values = values.as_object().ok_or_else(|| SecretsError::Format(format!("{section} is not a mapping")))?;
        for (name, value) in values {
            let enc =
                value.as_str().ok_or_else(|| SecretsError::Format(format!("{section}.{name} is not a string")))?;
            let plain = decrypt_value(&cipher, enc, &format!("{section}:{name}:"))?;
            mac.update(plain.as_bytes());
            data.insert(name.clone(), plain);
        }
    }
    let last_modified = text(sops, "lastmodified")?;
    let stored_mac = decrypt_value(&cipher, &text(sops, "mac")?, &last_modified)?;
    if stored_mac != hex_upper(&mac.finalize()) {
        return Err(SecretsError::Decrypt("MAC mismatch: the file was changed after it was encrypted".into()));
    }
    let meta = doc.get("metadata").cloned().unwrap_or_default();
    let labels = meta
        .get("labels")
        .and_then(Value::as_object)
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default();
    Ok(SecretManifest {
        name: text(&meta, "name")?,
        namespace: meta.get("namespace").and_then(Value::as_str).unwrap_or_default().to_string(),
        labels,
        data,
    })
}

/// One value as sops' AES cipher writes it; the empty string stays empty, as in sops.
fn encrypt_value(cipher: &ValueCipher, plain: &str, additional_data: &str) -> Result<String, SecretsError> {
    if plain.is_empty() {
        return Ok(String::new());
    }
    let mut iv = [0u8; 32];
    rand::rng().fill_bytes(&mut iv);
    let out = cipher
        .encrypt(Nonce::<U32>::from_slice(&iv), Payload { msg: plain.as_bytes(), aad: additional_data.as_bytes() })
        .map_err(|e| SecretsError::Encrypt(e.to_string()))?;
    let (data, tag) = out.split_at(out.len() - 16);
    Ok(format!("ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]", B64.encode(data), B64.encode(iv), B64.encode(tag)))
}

fn decrypt_value(cipher: &ValueCipher, enc: &str, additional_data: &str) -> Result<String, SecretsError> {
    if enc.is_empty() {
        return Ok(String::new());
    }
    let re = regex::Regex::new(r"^ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),type:([^\]]*)\]$")
        .expect("static regex");
    let caps = re.captures(enc).ok_or_else(|| SecretsError::Format(format!("{additional_data} is not encrypted")))?;
    let b64 = |i: usize| B64.decode(&caps[i]).map_err(|e| SecretsError::Format(format!("{additional_data}: {e}")));
    let (mut data, iv, tag) = (b64(1)?, b64(2)?, b64(3)?);
    if &caps[4] != "str" || iv.len() != 32 {
        return Err(SecretsError::Format(format!("{additional_data}: only 32-byte IVs and type str are read")));
    }
    data.extend_from_slice(&tag);
    let plain = cipher
        .decrypt(Nonce::<U32>::from_slice(&iv), Payload { msg: &data, aad: additional_data.as_bytes() })
        .map_err(|_| SecretsError::Decrypt(format!("{additional_data} does not decrypt (wrong key or changed)")))?;
    String::from_utf8(plain).map_err(|_| SecretsError::Decrypt(format!("{additional_data} is not UTF-8")))
}

/// Go's `time.RFC3339` of a UTC time, which sops uses for `lastmodified` (and the MAC's additional data).
fn go_rfc3339(t: time::OffsetDateTime) -> Result<String, SecretsError> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC).format(&format).map_err(|e| SecretsError::Format(e.to_string()))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> SecretManifest {
        SecretManifest {
            name: "db-creds".into(),
            namespace: "mc-acme".into(),
            labels: [("maxcloud.dev/tenant".to_string(), "acme".to_string())].into(),
            data: [
                ("password".to_string(), "s3cr3t-ß-✓".to_string()),
                ("empty".to_string(), String::new()),
                ("url".to_string(), "postgres://u:p@h:5432/db?sslmode=require".to_string()),
            ]
            .into(),
        }
    }

    #[test]
    fn round_trip_and_no_plain_text() {
        let key = TenantKey::generate();
        let now = time::macros::datetime!(2026-11-21 10:11:12 UTC);
        let yaml = encrypt_secret(&manifest(), &key.recipient(), now).unwrap();
        for plain in ["s3cr3t", "postgres://", "sslmode"] {
            assert!(!yaml.contains(plain), "{plain} in\n{yaml}");
        }
        assert!(yaml.contains("name: db-creds"), "names stay readable:\n{yaml}");
        assert!(yaml.contains(r#"lastmodified: "2026-11-21T10:11:12Z""#), "{yaml}");
        assert_eq!(decrypt_secret(&yaml, &key).unwrap(), manifest());
        // Two encryptions of the same values differ (fresh data key and IVs).
        assert_ne!(yaml, encrypt_secret(&manifest(), &key.recipient(), now).unwrap());
    }

    #[test]
    fn another_key_a_changed_value_or_a_moved_value_is_refused() {
        let key = TenantKey::generate();
        let yaml = encrypt_secret(&manifest(), &key.recipient(), time::OffsetDateTime::now_utc()).unwrap();
        let err = decrypt_secret(&yaml, &TenantKey::generate()).unwrap_err().to_string();
        assert!(err.contains("not encrypted to"), "{err}");

        let mut doc: Value = serde_saphyr::from_str(&yaml).unwrap();
        // A value moved under another key fails its additional data.
        let password = doc["stringData"]["password"].clone();
        doc["stringData"]["url"] = password;
        let err = decrypt_secret(&serde_saphyr::to_string(&doc).unwrap(), &key).unwrap_err().to_string();
        assert!(err.contains("stringData:url: does not decrypt"), "{err}");

        // A value removed changes the MAC.
        let mut doc: Value = serde_saphyr::from_str(&yaml).unwrap();
        doc["stringData"].as_object_mut().unwrap().remove("url");
        let err = decrypt_secret(&serde_saphyr::to_string(&doc).unwrap(), &key).unwrap_err().to_string();
        assert!(err.contains("MAC mismatch"), "{err}");

        // Unencrypted fields are outside the MAC (kustomize sets the namespace, Flux adds labels).
        let mut doc: Value = serde_saphyr::from_str(&yaml).unwrap();
        doc["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("maxcloud-tenant");
        assert_eq!(decrypt_secret(&serde_saphyr::to_string(&doc).unwrap(), &key).unwrap().data, manifest().data);
    }
}
