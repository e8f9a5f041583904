//! A service type: one XRD, read into its names, schema, rules and policies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cel::{self, Rule};
use crate::names::{ResourceName, TenantSlug};
use crate::schema;

/// Annotation on an XRD with a one-line description for the catalog.
pub const ANNOTATION_DESCRIPTION: &str = "maxcloud.dev/description";
/// Annotation on an XRD with the comma-separated order of fields in order forms.
pub const ANNOTATION_UI_ORDER: &str = "maxcloud.dev/ui-order";
/// Prefix of the merge-policy annotations (`maxcloud.dev/merge-policy-{create,update,delete}`).
pub const ANNOTATION_MERGE_POLICY_PREFIX: &str = "maxcloud.dev/merge-policy-";

/// The XRD `apiVersion` the catalog reads.
pub const XRD_API_VERSION: &str = "apiextensions.crossplane.io/v2";

/// How a pull request of an order is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergePolicy {
    /// Merged automatically once it is mergeable.
    #[default]
    Auto,
    /// Waits for a human review.
    Review,
}

impl MergePolicy {
    /// `"auto"` or `"review"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MergePolicy::Auto => "auto",
            MergePolicy::Review => "review",
        }
    }
}

impl fmt::Display for MergePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MergePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(MergePolicy::Auto),
            "review" => Ok(MergePolicy::Review),
            other => Err(format!("invalid merge policy {other:?} (expected auto or review)")),
        }
    }
}

/// What an order does to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Create a new resource.
    Create,
    /// Change an existing resource.
    Update,
    /// Remove a resource.
    Delete,
}

impl Action {
    /// All actions.
    pub const ALL: [Action; 3] = [Action::Create, Action::Update, Action::Delete];

    /// `"create"`, `"update"` or `"delete"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "create" => Ok(Action::Create),
            "update" => Ok(Action::Update),
            "delete" => Ok(Action::Delete),
            other => Err(format!("invalid action {other:?} (expected create, update or delete)")),
        }
    }
}

/// A validation error of one field of order parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldError {
    /// Dotted path relative to the spec (`scaling.maxScale`, `env[2].name`), `""` for the
    /// whole object.
    pub field: String,
    /// What is wrong, e.g. `must be less than or equal to 100`.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

/// An orderable service type, read from one Crossplane XRD.
pub struct ServiceType {
    /// Kind of the XR, e.g. `App`.
    pub kind: String,
    /// Plural resource name, e.g. `apps`; also the directory in tenant repos.
    pub plural: String,
    /// Singular resource name, e.g. `app`.
    pub singular: String,
    /// API group, e.g. `maxcloud.dev`.
    pub group: String,
    /// The referenceable version, e.g. `v1alpha1`.
    pub version: String,
    /// One-line description (annotation `maxcloud.dev/description`, else the spec schema's
    /// description).
    pub description: String,
    /// Order of spec fields in forms (annotation `maxcloud.dev/ui-order`, else the schema's
    /// property order).
    pub ui_order: Vec<String>,
    /// Name of the XRD (`apps.maxcloud.dev`).
    pub xrd_name: String,
    /// Where the XRD was read from (file name).
    pub source: String,
    /// The Kubernetes schema of `spec` (JSONSchemaProps), used for defaulting.
    k8s_schema: Value,
    json_schema: Value,
    validator: jsonschema::Validator,
    rules: Vec<Rule>,
    merge_policies: [MergePolicy; 3],
    price_paths: Option<crate::footprint::PricePaths>,
}

impl fmt::Debug for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceType")
            .field("kind", &self.kind)
            .field("plural", &self.plural)
            .field("group", &self.group)
            .field("version", &self.version)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Result<&'v str, String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{} must be a non-empty string", pointer[1..].replace('/', ".")))
}

impl ServiceType {
    /// Reads an XRD document. Errors are messages without the source name.
    pub(crate) fn from_xrd(source: &str, xrd: &Value) -> Result<ServiceType, String> {
        let api_version = str_at(xrd, "/apiVersion")?;
        let kind = str_at(xrd, "/kind")?;
        if api_version != XRD_API_VERSION || kind != "CompositeResourceDefinition" {
            return Err(format!("expected {XRD_API_VERSION} CompositeResourceDefinition, found {api_version} {kind}"));
        }
        let xrd_name = str_at(xrd, "/metadata/name")?.to_owned();
        let annotation =
            |key: &str| xrd.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str);
        let scope = xrd.pointer("/spec/scope").and_then(Value::as_str);
        if !matches!(scope, None | Some("Namespaced")) {
            return Err(format!("spec.scope must be Namespaced (tenant resources are namespaced), found {scope:?}"));
        }
        let group = str_at(xrd, "/spec/group")?.to_owned();
        let kind = str_at(xrd, "/spec/names/kind")?.to_owned();
        let plural = str_at(xrd, "/spec/names/plural")?.to_owned();
        let singular = xrd
            .pointer("/spec/names/singular")
            .and_then(Value::as_str)
            .map_or_else(|| kind.to_lowercase(), str::to_owned);
        if xrd_name != format!("{plural}.{group}") {
            return Err(format!("metadata.name must be {plural}.{group} (<plural>.<group>), found {xrd_name}"));
        }

        let versions = xrd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .filter(|v| !v.is_empty())
            .ok_or("spec.versions must be a non-empty list")?;
        let referenceable: Vec<&Value> =
            versions.iter().filter(|v| v.get("referenceable").and_then(Value::as_bool) == Some(true)).collect();
        let version: &Value = match (referenceable.as_slice(), versions.as_slice()) {
            ([one], _) => one,
            ([], [one]) => one,
            _ => return Err("spec.versions must have exactly one referenceable version".into()),
        };
        let version_name = str_at(version, "/name")?.to_owned();
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            return Err(format!("version {version_name} must be served"));
        }
        let mut spec = version
            .pointer("/schema/openAPIV3Schema/properties/spec")
            .cloned()
            .ok_or_else(|| format!("version {version_name} has no schema.openAPIV3Schema.properties.spec"))?;
        if spec.get("type").and_then(Value::as_str) != Some("object") {
            return Err("the spec schema must have type: object".into());
        }
        // Crossplane adds `spec.crossplane` (composition selection); orders do not set it.
        if let Some(props) = spec.get_mut("properties").and_then(Value::as_object_mut) {
            props.remove("crossplane");
        }
        if let Some(required) = spec.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| r != "crossplane");
        }

        let mut json_schema = schema::to_json_schema(&spec, "")?;
        if let Some(obj) = json_schema.as_object_mut() {
            obj.insert("$schema".into(), schema::JSON_SCHEMA_DIALECT.into());
        }
        let validator = build_validator(&json_schema)?;
        check_defaults(&spec, "")?;
        let rules = cel::collect_rules(&spec)?;

        let property_names: Vec<String> =
            spec.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
        let ui_order = match annotation(ANNOTATION_UI_ORDER) {
            Some(list) => {
                let order: Vec<String> =
                    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                if let Some(unknown) = order.iter().find(|f| !property_names.contains(f)) {
                    return Err(format!(
                        "annotation {ANNOTATION_UI_ORDER} names {unknown:?}, which is not a spec field"
                    ));
                }
                order
            }
            None => property_names,
        };
        let description = annotation(ANNOTATION_DESCRIPTION)
            .or_else(|| spec.get("description").and_then(Value::as_str))
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut merge_policies = [MergePolicy::Auto; 3];
        for (slot, action) in merge_policies.iter_mut().zip(Action::ALL) {
            let key = format!("{ANNOTATION_MERGE_POLICY_PREFIX}{action}");
            if let Some(value) = annotation(&key) {
                *slot = value.parse().map_err(|e| format!("annotation {key}: {e}"))?;
            }
        }

        let price_paths = crate::footprint::PricePaths::parse(
            annotation(crate::footprint::ANNOTATION_PRICE_CPU),
            annotation(crate::footprint::ANNOTATION_PRICE_MEMORY),
            annotation(crate::footprint::ANNOTATION_PRICE_INSTANCES),
            &spec,
        )?;

        Ok(ServiceType {
            kind,
            plural,
            singular,
            group,
            version: version_name,
            description,
            ui_order,
            xrd_name,
            source: source.to_owned(),
            k8s_schema: spec,
            json_schema,
            validator,
            rules,
            merge_policies,
            price_paths,
        })
    }

    /// `params` with the schema's defaults applied, unvalidated: what a form starts from, and what the catalog
    /// prices when nothing is chosen yet.
    pub fn with_defaults(&self, params: &Value) -> Value {
        let mut spec = params.clone();
        schema::apply_defaults(&self.k8s_schema, &mut spec);
        spec
    }

    /// The spec fields the footprint is read from, if the XRD names them.
    pub fn footprint_fields(&self) -> Option<crate::footprint::FootprintFields> {
        self.price_paths.as_ref().map(|p| p.fields())
    }

    /// What one resource with this (defaulted) spec requests, if the XRD says where (`maxcloud.dev/price-*`).
    pub fn footprint(&self, spec: &Value) -> Option<crate::Footprint> {
        self.price_paths.as_ref()?.footprint(spec)
    }

    /// `<group>/<version>`, e.g. `maxcloud.dev/v1alpha1`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// JSON Schema (draft 7) of the spec: what order parameters must look like, with
    /// titles, descriptions, defaults and enums for forms. Unknown fields are rejected
    /// (`additionalProperties: false`); CEL rules are not part of it (see [`Self::rules`]).
    pub fn json_schema(&self) -> &serde_json::Value {
        &self.json_schema
    }

    /// The `x-kubernetes-validations` rules as (schema path, rule, message). The path is
    /// dotted relative to the spec, `""` for the spec itself, with `[*]` for array items and
    /// map values (e.g. `env[*]`).
    pub fn rules(&self) -> Vec<(String, String, String)> {
        self.rules.iter().map(|r| (r.node_path(), r.rule.clone(), r.message.clone())).collect()
    }

    /// How pull requests of `action` orders are merged (annotations
    /// `maxcloud.dev/merge-policy-{create,update,delete}`, default `auto`).
    pub fn merge_policy(&self, action: Action) -> MergePolicy {
        match action {
            Action::Create => self.merge_policies[0],
            Action::Update => self.merge_policies[1],
            Action::Delete => self.merge_policies[2],
        }
    }

    /// Path of a resource's file in the tenant repo: `<plural>/<name>.yaml`.
    pub fn path_for(&self, name: &ResourceName) -> String {
        format!("{}/{}.yaml", self.plural, name)
    }

    /// Validates order parameters (the XR's spec) as the API server would and returns them
    /// with schema defaults applied.
    ///
    /// Defaults are applied first (structural defaulting: absent fields get their default,
    /// then nested defaults apply inside it), then the JSON Schema and list types are checked,
    /// then — only if those passed — the CEL rules. Errors are sorted by field.
    pub fn validate(&self, params: &serde_json::Value) -> Result<serde_json::Value, Vec<FieldError>> {
        if !params.is_object() {
            return Err(vec![FieldError::new("", "must be an object")]);
        }
        let mut spec = params.clone();
        schema::apply_defaults(&self.k8s_schema, &mut spec);
        let mut errors: Vec<FieldError> =
            self.validator.iter_errors(&spec).flat_map(|e| schema::field_errors(&e, &spec)).collect();
        schema::check_list_types(&self.k8s_schema, &spec, "", &mut errors);
        if errors.is_empty() {
            errors = cel::evaluate(&self.rules, &spec);
        }
        if errors.is_empty() {
            return Ok(spec);
        }
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        errors.dedup();
        Err(errors)
    }

    /// The namespaced resource object for the tenant repo: `apiVersion`, `kind`, `metadata`
    /// (name, namespace `mc-<slug>`, labels `maxcloud.dev/tenant`,
    /// `app.kubernetes.io/managed-by: maxcloud` and — when it is a valid label value —
    /// `maxcloud.dev/order-id`, annotation `maxcloud.dev/order-id`) and `spec` (the validated,
    /// defaulted parameters).
    pub fn build_resource(
        &self,
        tenant: &TenantSlug,
        name: &ResourceName,
        order_id: &str,
        spec: &serde_json::Value,
    ) -> serde_json::Value {
        crate::resource::build(self, tenant, name, order_id, spec)
    }
}

fn build_validator(json_schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(json_schema)
        .map_err(|e| format!("invalid spec schema: {e}"))
}

/// Checks every `default` against its own schema node (after nested defaulting), as the API
/// server does when the CRD is created.
fn check_defaults(node: &Value, at: &str) -> Result<(), String> {
    if let Some(default) = node.get("default") {
        let mut value = default.clone();
        schema::apply_defaults(node, &mut value);
        let validator = build_validator(&schema::to_json_schema(node, at)?)?;
        let first_error = validator.iter_errors(&value).next().map(|e| e.to_string());
        if let Some(e) = first_error {
            return Err(format!("{}: invalid default: {e}", schema::display_at(at)));
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            check_defaults(sub, &schema::push_key(at, name))?;
        }
    }
    if let Some(sub) = node.get("items") {
        check_defaults(sub, &format!("{at}[*]"))?;
    }
    if let Some(sub) = node.get("additionalProperties").filter(|s| s.is_object()) {
        check_defaults(sub, &format!("{at}[*]"))?;
    }
    Ok(())
}
