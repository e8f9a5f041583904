//! Resource objects for tenant repos, built as structured data and serialised as YAML.

use serde_json::{json, Map, Value};

use crate::names::{ResourceName, TenantSlug};
use crate::{CatalogError, ServiceType};

/// Label and annotation with the tenant slug.
pub const LABEL_TENANT: &str = "maxcloud.dev/tenant";
/// Label and annotation with the id of the order that last wrote the resource.
pub const LABEL_ORDER_ID: &str = "maxcloud.dev/order-id";
/// Standard label naming the manager of the resource.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`] on resources written by max-cloud.
pub const MANAGED_BY: &str = "maxcloud";

/// Whether `s` is a valid Kubernetes label value (at most 63 characters of alphanumerics,
/// '-', '_' and '.', starting and ending with an alphanumeric, or empty).
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (s.is_empty()
            || (s.starts_with(|c: char| c.is_ascii_alphanumeric()) && s.ends_with(|c: char| c.is_ascii_alphanumeric())))
}

pub(crate) fn build(
    service: &ServiceType,
    tenant: &TenantSlug,
    name: &ResourceName,
    order_id: &str,
    spec: &Value,
) -> Value {
    let mut labels = Map::new();
    labels.insert(LABEL_TENANT.into(), tenant.as_str().into());
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    if is_label_value(order_id) {
        labels.insert(LABEL_ORDER_ID.into(), order_id.into());
    }
    json!({
        "apiVersion": service.api_version(),
        "kind": service.kind,
        "metadata": {
            "name": name.as_str(),
            "namespace": tenant.namespace(),
            "labels": labels,
            "annotations": { LABEL_ORDER_ID: order_id },
        },
        "spec": spec,
    })
}

/// Serialises a resource object as YAML (block style, two-space indentation, keys in the
/// order of the value), ending with a newline. Multi-line strings use literal blocks (`|`);
/// long single-line strings stay on one line (no folding, so diffs stay exact).
pub fn to_yaml(v: &Value) -> Result<String, CatalogError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX;
    let mut text = serde_saphyr::to_string_with_options(v, options).map_err(|e| CatalogError::Yaml(e.to_string()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}
