//! What one resource of a type requests, for price estimates: the XRD names the spec fields in annotations, so
//! the catalog needs no per-type code.
//!
//! ```yaml
//! maxcloud.dev/price-cpu: resources.cpu             # a Kubernetes quantity per instance
//! maxcloud.dev/price-memory: resources.memory       # a Kubernetes quantity per instance
//! maxcloud.dev/price-instances: scaling.minScale..scaling.maxScale   # or a single field: instances
//! ```

use serde_json::Value;

use crate::quantity;

pub const ANNOTATION_PRICE_CPU: &str = "maxcloud.dev/price-cpu";
pub const ANNOTATION_PRICE_MEMORY: &str = "maxcloud.dev/price-memory";
pub const ANNOTATION_PRICE_INSTANCES: &str = "maxcloud.dev/price-instances";

/// Where a type's requests are in its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PricePaths {
    cpu: Vec<String>,
    memory: Vec<String>,
    min_instances: Vec<String>,
    max_instances: Vec<String>,
}

/// Where a type's footprint is read from, as dotted spec paths (to name the field a limit is about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FootprintFields {
    pub cpu: String,
    pub memory: String,
    pub max_instances: String,
}

/// What one resource requests: per instance, and how many instances run (a range for types that autoscale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub cpu_milli: i64,
    pub memory_bytes: i64,
    pub min_instances: i64,
    pub max_instances: i64,
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// Check that `path` names a field of the spec schema of type `ty`.
fn check(schema: &Value, path: &[String], ty: &str, annotation: &str) -> Result<(), String> {
    let mut at = schema;
    for part in path {
        at = at
            .pointer(&format!("/properties/{part}"))
            .ok_or_else(|| format!("annotation {annotation}: {} is not a spec field", path.join(".")))?;
    }
    match at.get("type").and_then(Value::as_str) {
        Some(t) if t == ty => Ok(()),
        other => Err(format!("annotation {annotation}: {} is of type {other:?}, not {ty}", path.join("."))),
    }
}

impl PricePaths {
    /// From the three annotations (all or none) and the spec schema.
    pub(crate) fn parse(
        cpu: Option<&str>,
        memory: Option<&str>,
        instances: Option<&str>,
        spec: &Value,
    ) -> Result<Option<PricePaths>, String> {
        let (cpu, memory, instances) = match (cpu, memory, instances) {
            (None, None, None) => return Ok(None),
            (Some(c), Some(m), Some(i)) => (c.trim(), m.trim(), i.trim()),
            _ => {
                return Err(format!(
                    "annotations {ANNOTATION_PRICE_CPU}, {ANNOTATION_PRICE_MEMORY} and {ANNOTATION_PRICE_INSTANCES} \
                     go together"
                ))
            }
        };
        let (min, max) = instances.split_once("..").unwrap_or((instances, instances));
        let paths = PricePaths {
            cpu: split(cpu),
            memory: split(memory),
            min_instances: split(min.trim()),
            max_instances: split(max.trim()),
        };
        check(spec, &paths.cpu, "string", ANNOTATION_PRICE_CPU)?;
        check(spec, &paths.memory, "string", ANNOTATION_PRICE_MEMORY)?;
        check(spec, &paths.min_instances, "integer", ANNOTATION_PRICE_INSTANCES)?;
        check(spec, &paths.max_instances, "integer", ANNOTATION_PRICE_INSTANCES)?;
        Ok(Some(paths))
    }

    /// The spec fields (dotted) the footprint is read from: CPU, memory, maximum instances.
    pub(crate) fn fields(&self) -> FootprintFields {
        FootprintFields {
            cpu: self.cpu.join("."),
            memory: self.memory.join("."),
            max_instances: self.max_instances.join("."),
        }
    }

    /// The footprint of a (defaulted) spec; `None` if a field is missing or unusable.
    pub(crate) fn footprint(&self, spec: &Value) -> Option<Footprint> {
        let at = |path: &[String]| spec.pointer(&format!("/{}", path.join("/")));
        let cpu = quantity::scaled(at(&self.cpu)?.as_str()?, 3).ok()?;
        let memory = quantity::scaled(at(&self.memory)?.as_str()?, 0).ok()?;
        let min = at(&self.min_instances)?.as_i64()?;
        let max = at(&self.max_instances)?.as_i64()?;
        Some(Footprint { cpu_milli: cpu, memory_bytes: memory, min_instances: min.min(max), max_instances: max })
    }
}
