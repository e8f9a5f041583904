//! The Kubernetes structural schema of an XRD (`openAPIV3Schema`, a JSONSchemaProps tree):
//! conversion to plain JSON Schema, structural defaulting, list-type checks and error paths.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::FieldError;

/// The JSON Schema dialect of converted schemas.
pub(crate) const JSON_SCHEMA_DIALECT: &str = "http://json-schema.org/draft-07/schema#";

/// JSONSchemaProps keywords copied unchanged into the JSON Schema.
const COPIED: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "default",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
    "required",
];

/// JSONSchemaProps keywords that carry no validation and are left out.
const DROPPED: &[&str] = &["example", "externalDocs", "nullable", "exclusiveMinimum", "exclusiveMaximum"];

/// Appends an object member to a dotted field path (`scaling` + `maxScale`).
pub(crate) fn push_key(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// Appends an array index to a dotted field path (`env` + 2 -> `env[2]`).
pub(crate) fn push_index(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

fn flag(node: &Value, key: &str) -> bool {
    node.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Converts a Kubernetes structural schema node into JSON Schema (draft 7).
///
/// Objects reject unknown fields (`additionalProperties: false`) unless they carry
/// `x-kubernetes-preserve-unknown-fields`; `nullable` and `x-kubernetes-int-or-string` become
/// type unions; OpenAPI v3.0 boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric
/// form; other `x-kubernetes-*` keys are dropped. `at` is the node's position for errors.
pub(crate) fn to_json_schema(node: &Value, at: &str) -> Result<Value, String> {
    let Some(obj) = node.as_object() else {
        return Err(format!("{}: schema must be an object", display_at(at)));
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let key = key.as_str();
        if COPIED.contains(&key) {
            out.insert(key.to_owned(), value.clone());
        } else if DROPPED.contains(&key) || key.starts_with("x-kubernetes-") {
            // handled below or not part of the JSON Schema
        } else {
            match key {
                "properties" => {
                    let props =
                        value.as_object().ok_or_else(|| format!("{}: properties must be a map", display_at(at)))?;
                    let mut converted = Map::new();
                    for (name, sub) in props {
                        converted.insert(name.clone(), to_json_schema(sub, &push_key(at, name))?);
                    }
                    out.insert("properties".into(), Value::Object(converted));
                }
                "items" => {
                    out.insert("items".into(), to_json_schema(value, &format!("{at}[*]"))?);
                }
                "additionalProperties" => {
                    let converted = match value {
                        Value::Bool(_) => value.clone(),
                        _ => to_json_schema(value, &format!("{at}[*]"))?,
                    };
                    out.insert("additionalProperties".into(), converted);
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let list = value.as_array().ok_or_else(|| format!("{}: {key} must be a list", display_at(at)))?;
                    let converted = list.iter().map(|s| to_json_schema(s, at)).collect::<Result<Vec<_>, _>>()?;
                    out.insert(key.to_owned(), Value::Array(converted));
                }
                "not" => {
                    out.insert("not".into(), to_json_schema(value, at)?);
                }
                other => {
                    return Err(format!(
                        "{}: unsupported schema keyword {other:?} (not valid in a Kubernetes structural schema)",
                        display_at(at)
                    ))
                }
            }
        }
    }
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        if flag(node, exclusive) {
            if let Some(limit) = out.remove(bound) {
                out.insert(exclusive.to_owned(), limit);
            }
        }
    }
    if flag(node, "x-kubernetes-int-or-string") && !out.contains_key("type") {
        out.insert("type".into(), serde_json::json!(["integer", "string"]));
    }
    if flag(node, "nullable") {
        match out.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                out.insert("type".into(), serde_json::json!([t, "null"]));
            }
            Some(Value::Array(types)) => types.push("null".into()),
            _ => {}
        }
        if let Some(Value::Array(options)) = out.get_mut("enum") {
            options.push(Value::Null);
        }
    }
    let is_object = out.get("type").and_then(Value::as_str) == Some("object");
    if is_object && !out.contains_key("additionalProperties") && !flag(node, "x-kubernetes-preserve-unknown-fields") {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    Ok(Value::Object(out))
}

/// `at` for messages: the dotted schema path, or `spec` for the root.
pub(crate) fn display_at(at: &str) -> String {
    if at.is_empty() {
        "spec".to_owned()
    } else {
        format!("spec.{at}")
    }
}

/// Applies defaults with Kubernetes structural defaulting semantics: `null` in a non-nullable
/// field is dropped, absent fields with a `default` get it, and defaulting then descends into
/// every present value (so `default: {}` receives its nested defaults).
pub(crate) fn apply_defaults(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if obj.get(name).is_some_and(Value::is_null) && !flag(sub, "nullable") {
                        obj.remove(name);
                    }
                    if !obj.contains_key(name) {
                        if let Some(default) = sub.get("default") {
                            obj.insert(name.clone(), default.clone());
                        }
                    }
                    if let Some(v) = obj.get_mut(name) {
                        apply_defaults(sub, v);
                    }
                }
            }
            if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for v in obj.values_mut() {
                    apply_defaults(sub, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for item in items {
                    apply_defaults(sub, item);
                }
            }
        }
        _ => {}
    }
}

/// Checks `x-kubernetes-list-type: map` (unique key tuples) and `set` (unique items), as the
/// API server does during schema validation.
pub(crate) fn check_list_types(schema: &Value, value: &Value, at: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::Array(items) => {
            match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => {
                    let keys: Vec<&str> = schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| k.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let mut seen: HashMap<String, usize> = HashMap::new();
                    for (i, item) in items.iter().enumerate() {
                        let tuple: Vec<&Value> = keys.iter().map(|k| item.get(k).unwrap_or(&Value::Null)).collect();
                        let id = serde_json::to_string(&tuple).unwrap_or_default();
                        if seen.insert(id, i).is_some() {
                            let (field, shown) = match keys.as_slice() {
                                [key] => (push_key(&push_index(at, i), key), tuple[0].to_string()),
                                _ => {
                                    let entry: Map<String, Value> =
                                        keys.iter().zip(&tuple).map(|(k, v)| ((*k).to_owned(), (*v).clone())).collect();
                                    (push_index(at, i), Value::Object(entry).to_string())
                                }
                            };
                            errors.push(FieldError::new(field, format!("duplicate value {shown}")));
                        }
                    }
                }
                Some("set") => {
                    for (i, item) in items.iter().enumerate() {
                        if items[..i].contains(item) {
                            errors.push(FieldError::new(push_index(at, i), format!("duplicate value {item}")));
                        }
                    }
                }
                _ => {}
            }
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_list_types(sub, item, &push_index(at, i), errors);
                }
            }
        }
        Value::Object(obj) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    if let Some(v) = obj.get(name) {
                        check_list_types(sub, v, &push_key(at, name), errors);
                    }
                }
            } else if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (k, v) in obj {
                    check_list_types(sub, v, &push_key(at, k), errors);
                }
            }
        }
        _ => {}
    }
}

/// Turns a JSON pointer into `instance` into a dotted field path (`/env/2/name` ->
/// `env[2].name`), using the instance to tell array indices from object keys.
pub(crate) fn pointer_to_field(pointer: &str, instance: &Value) -> String {
    let mut field = String::new();
    let mut current = Some(instance);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match current {
            Some(Value::Array(items)) => match segment.parse::<usize>() {
                Ok(i) => {
                    field = push_index(&field, i);
                    current = items.get(i);
                }
                Err(_) => {
                    field = push_key(&field, &segment);
                    current = None;
                }
            },
            Some(Value::Object(obj)) => {
                field = push_key(&field, &segment);
                current = obj.get(&segment);
            }
            _ => {
                field = push_key(&field, &segment);
                current = None;
            }
        }
    }
    field
}

/// Maps a JSON Schema validation error to field errors with concise messages.
pub(crate) fn field_errors(error: &jsonschema::ValidationError<'_>, instance: &Value) -> Vec<FieldError> {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    let field = pointer_to_field(error.instance_path.as_str(), instance);
    let one = |message: String| vec![FieldError::new(field.clone(), message)];
    match &error.kind {
        K::AdditionalProperties { unexpected } => {
            unexpected.iter().map(|name| FieldError::new(push_key(&field, name), "unknown field")).collect()
        }
        K::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            vec![FieldError::new(push_key(&field, &name), "is required")]
        }
        K::Type { kind } => one(match kind {
            TypeKind::Single(t) => format!("must be of type {t}"),
            TypeKind::Multiple(set) => {
                format!("must be of type {}", set.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "))
            }
        }),
        K::Enum { options } => one(format!(
            "must be one of: {}",
            options
                .as_array()
                .map(|o| o.iter().map(show_scalar).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| options.to_string())
        )),
        K::Minimum { limit } => one(format!("must be greater than or equal to {limit}")),
        K::Maximum { limit } => one(format!("must be less than or equal to {limit}")),
        K::ExclusiveMinimum { limit } => one(format!("must be greater than {limit}")),
        K::ExclusiveMaximum { limit } => one(format!("must be less than {limit}")),
        K::MinLength { limit } => one(format!("must be at least {limit} characters long")),
        K::MaxLength { limit } => one(format!("must be at most {limit} characters long")),
        K::MinItems { limit } => one(format!("must have at least {limit} items")),
        K::MaxItems { limit } => one(format!("must have at most {limit} items")),
        K::MinProperties { limit } => one(format!("must have at least {limit} fields")),
        K::MaxProperties { limit } => one(format!("must have at most {limit} fields")),
        K::Pattern { pattern } => one(format!("invalid value {}: must match {pattern}", error.instance)),
        K::UniqueItems => one("must not contain duplicate items".into()),
        K::MultipleOf { multiple_of } => one(format!("must be a multiple of {multiple_of}")),
        _ => one(error.to_string()),
    }
}

fn show_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_structural_schema() {
        let k8s = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": 0, "exclusiveMinimum": true, "x-kubernetes-validations": []},
                "b": {"type": "string", "nullable": true, "enum": ["x"]},
                "c": {"x-kubernetes-int-or-string": true},
                "d": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "e": {"type": "object", "additionalProperties": {"type": "string"}},
                "f": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}
            }
        });
        let js = to_json_schema(&k8s, "").unwrap();
        assert_eq!(js["additionalProperties"], false);
        assert_eq!(js["properties"]["a"], json!({"type": "integer", "exclusiveMinimum": 0}));
        assert_eq!(js["properties"]["b"]["type"], json!(["string", "null"]));
        assert_eq!(js["properties"]["b"]["enum"], json!(["x", null]));
        assert_eq!(js["properties"]["c"]["type"], json!(["integer", "string"]));
        assert!(js["properties"]["d"].get("additionalProperties").is_none());
        assert_eq!(js["properties"]["e"]["additionalProperties"], json!({"type": "string"}));
        assert_eq!(js["properties"]["f"]["items"]["additionalProperties"], false);

        let err = to_json_schema(&json!({"type": "object", "properties": {"x": {"$ref": "#/y"}}}), "").unwrap_err();
        assert!(err.contains("spec.x") && err.contains("$ref"), "{err}");
    }

    #[test]
    fn defaults_nested_and_prunes_null() {
        let schema = json!({"type": "object", "properties": {
            "o": {"type": "object", "default": {}, "properties": {"n": {"type": "integer", "default": 3}}},
            "p": {"type": "integer", "default": 1},
            "q": {"type": "string", "nullable": true, "default": "d"},
            "l": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string", "default": "v"}}}}
        }});
        let mut v = json!({"p": null, "q": null, "l": [{}, {"k": "x"}]});
        apply_defaults(&schema, &mut v);
        assert_eq!(v, json!({"o": {"n": 3}, "p": 1, "q": null, "l": [{"k": "v"}, {"k": "x"}]}));
    }

    #[test]
    fn pointers_become_dotted_paths() {
        let v = json!({"env": [{}, {}, {"name": "x"}], "m": {"0": {"a/b": 1}}});
        assert_eq!(pointer_to_field("", &v), "");
        assert_eq!(pointer_to_field("/env/2/name", &v), "env[2].name");
        assert_eq!(pointer_to_field("/m/0/a~1b", &v), "m.0.a/b");
    }

    #[test]
    fn list_type_set() {
        let schema = json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}});
        let mut errors = Vec::new();
        check_list_types(&schema, &json!(["a", "b", "a"]), "tags", &mut errors);
        assert_eq!(errors, vec![FieldError::new("tags[2]", "duplicate value \"a\"")]);
    }
}
