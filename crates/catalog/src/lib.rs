//! The max-cloud service catalog.
//!
//! Every orderable service type is defined by one Crossplane v2 `CompositeResourceDefinition`
//! in `xrds/`. This crate reads them into [`ServiceType`]s and derives from each:
//!
//! * the JSON Schema of its order parameters ([`ServiceType::json_schema`]);
//! * validation of order parameters as the Kubernetes API server would do it — structural
//!   defaulting, the OpenAPI schema (unknown fields rejected), list types and the
//!   `x-kubernetes-validations` CEL rules ([`ServiceType::validate`]);
//! * the namespaced resource object written to the tenant repo
//!   ([`ServiceType::build_resource`], [`to_yaml`], [`ServiceType::path_for`]).
//!
//! Pure: no I/O apart from reading the XRD directory in [`Catalog::load_dir`].
//!
//! Module map: [`names`] (domain name types), `schema` (schema conversion, defaulting,
//! list types, error paths), `cel` (rules), `service` (XRD -> [`ServiceType`]), `resource`
//! (resource objects, YAML).

mod cel;
mod footprint;
pub mod names;
pub mod quantity;
mod resource;
pub mod revisions;
mod schema;
mod service;

use std::path::{Path, PathBuf};

pub use footprint::{
    Footprint, FootprintFields, ANNOTATION_PRICE_CPU, ANNOTATION_PRICE_INSTANCES, ANNOTATION_PRICE_MEMORY,
};
pub use names::{ImageRef, NameError, ResourceName, TenantSlug};
pub use resource::{is_label_value, to_yaml, LABEL_MANAGED_BY, LABEL_ORDER_ID, LABEL_TENANT, MANAGED_BY};
pub use service::{
    Action, FieldError, MergePolicy, ServiceType, ANNOTATION_DESCRIPTION, ANNOTATION_MERGE_POLICY_PREFIX,
    ANNOTATION_UI_ORDER, XRD_API_VERSION,
};

/// Errors loading the catalog or serialising resources.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The XRD directory or a file in it could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An XRD is malformed or unsupported.
    #[error("{file}: {message}")]
    Xrd {
        /// Source name of the XRD (file name).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Two XRDs define the same kind, plural or singular name.
    #[error("{second}: {name:?} is already defined by {first}")]
    Duplicate {
        /// The conflicting name.
        name: String,
        /// Source of the first definition.
        first: String,
        /// Source of the second definition.
        second: String,
    },
    /// A resource could not be serialised as YAML.
    #[error("cannot serialise resource as YAML: {0}")]
    Yaml(String),
}

/// The orderable service types, one per XRD.
#[derive(Debug)]
pub struct Catalog {
    /// Sorted by kind.
    types: Vec<ServiceType>,
}

impl Catalog {
    /// Loads every `*.yaml` / `*.yml` file of `dir` (sorted by file name), each one XRD.
    /// Errors name the offending file.
    pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CatalogError::Io { path, source }
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let is_yaml = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml");
            if is_yaml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut docs = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            docs.push((name, text));
        }
        Catalog::from_xrds(&docs)
    }

    /// Builds the catalog from XRD documents given as (source name, YAML text).
    pub fn from_xrds(docs: &[(String, String)]) -> Result<Catalog, CatalogError> {
        let mut types: Vec<ServiceType> = Vec::with_capacity(docs.len());
        for (file, text) in docs {
            let xrd_error = |message: String| CatalogError::Xrd { file: file.clone(), message };
            let doc: serde_json::Value =
                serde_saphyr::from_str(text).map_err(|e| xrd_error(format!("invalid YAML: {e}")))?;
            let service = ServiceType::from_xrd(file, &doc).map_err(xrd_error)?;
            for existing in &types {
                let taken = [&existing.kind, &existing.plural, &existing.singular];
                for name in [&service.kind, &service.plural, &service.singular] {
                    if taken.iter().any(|t| t.eq_ignore_ascii_case(name)) {
                        return Err(CatalogError::Duplicate {
                            name: name.clone(),
                            first: existing.source.clone(),
                            second: file.clone(),
                        });
                    }
                }
            }
            types.push(service);
        }
        types.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(Catalog { types })
    }

    /// The service type with this kind, plural or singular name (case-insensitive).
    pub fn get(&self, kind_or_plural: &str) -> Option<&ServiceType> {
        self.types
            .iter()
            .find(|t| [&t.kind, &t.plural, &t.singular].iter().any(|n| n.eq_ignore_ascii_case(kind_or_plural)))
    }

    /// All service types, sorted by kind.
    pub fn types(&self) -> impl Iterator<Item = &ServiceType> {
        self.types.iter()
    }

    /// Number of service types.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the catalog has no service types.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}
