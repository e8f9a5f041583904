//! Local parsing of `--env K=V`, `--set key.path=value` and parameter files, with precise errors that name
//! the flag.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

/// Parses `--env` values (`KEY=VALUE`, the value may contain `=`; later duplicates win).
pub fn parse_env(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for item in items {
        let (key, value) =
            item.split_once('=').ok_or_else(|| anyhow!("invalid --env \"{item}\": expected KEY=VALUE"))?;
        if key.is_empty() {
            bail!("invalid --env \"{item}\": the variable name before '=' is empty");
        }
        env.insert(key.to_string(), value.to_string());
    }
    Ok(env)
}

/// `--secret-env VAR=SECRET:KEY` flags, each checked for its three parts.
pub fn parse_secret_env(items: &[String]) -> Result<BTreeMap<String, maxcloud_api_model::SecretKeyRef>> {
    let mut env = BTreeMap::new();
    for item in items {
        let parsed =
            item.split_once('=').and_then(|(var, r)| r.split_once(':').map(|(secret, key)| (var, secret, key)));
        match parsed {
            Some((var, secret, key)) if !var.is_empty() && !secret.is_empty() && !key.is_empty() => {
                let r = maxcloud_api_model::SecretKeyRef { secret: secret.to_string(), key: key.to_string() };
                env.insert(var.to_string(), r);
            }
            _ => bail!("invalid --secret-env \"{item}\": expected VAR=SECRET:KEY, e.g. DB_PASSWORD=db:password"),
        }
    }
    Ok(env)
}

/// One step of a `--set` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Parses `scaling.maxScale` or `env[0].name` into segments.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    if path.is_empty() {
        return Err("the key before '=' is empty".into());
    }
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(format!("empty key segment in \"{path}\""));
        }
        segments.push(Segment::Key(name.to_string()));
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| format!("unclosed '[' in \"{path}\""))?;
            let index = &rest[1..close];
            let index = index.parse::<usize>().map_err(|_| format!("invalid array index \"{index}\" in \"{path}\""))?;
            segments.push(Segment::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected \"{rest}\" after ']' in \"{path}\""));
            }
        }
    }
    Ok(segments)
}

/// A `--set` value: JSON when it parses as JSON (`5`, `true`, `null`, `"quoted"`, `[..]`, `{..}`),
/// otherwise the literal string.
pub fn parse_value(raw: &str) -> Value {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => v,
        Err(_) => Value::String(raw.to_string()),
    }
}

/// Applies one `--set key=value` to `params`.
pub fn apply_set(params: &mut Value, item: &str) -> Result<()> {
    let (key, raw) = item.split_once('=').ok_or_else(|| anyhow!("invalid --set \"{item}\": expected key=value"))?;
    let path = parse_path(key).map_err(|e| anyhow!("invalid --set \"{item}\": {e}"))?;
    set_path(params, &path, parse_value(raw)).map_err(|e| anyhow!("invalid --set \"{item}\": {e}"))
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn set_path(target: &mut Value, path: &[Segment], value: Value) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        *target = value;
        return Ok(());
    };
    match first {
        Segment::Key(key) => {
            if target.is_null() {
                *target = Value::Object(Map::new());
            }
            let kind = describe(target);
            let obj = target.as_object_mut().ok_or_else(|| format!("cannot set \"{key}\" in {kind}"))?;
            let child = obj.entry(key.clone()).or_insert(Value::Null);
            set_path(child, rest, value)
        }
        Segment::Index(index) => {
            if target.is_null() {
                *target = Value::Array(Vec::new());
            }
            let kind = describe(target);
            let arr = target.as_array_mut().ok_or_else(|| format!("cannot index [{index}] into {kind}"))?;
            if *index > arr.len() {
                return Err(format!(
                    "index [{index}] is out of range: the array has {} element(s), so the next index is [{}]",
                    arr.len(),
                    arr.len()
                ));
            }
            if *index == arr.len() {
                arr.push(Value::Null);
            }
            set_path(&mut arr[*index], rest, value)
        }
    }
}

/// Parses a parameter document (JSON or YAML) that must be a mapping.
pub fn parse_params_document(text: &str, origin: &str) -> Result<Value> {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => serde_saphyr::from_str(text).map_err(|e| {
            let reason = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            anyhow!("invalid YAML/JSON in {origin}: {reason}")
        })?,
    };
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        other => bail!("invalid parameters in {origin}: expected a mapping, found {}", describe(&other)),
    }
}

/// Reads `-f FILE` (`-` = stdin).
pub fn read_params_file(path: &str) -> Result<Value> {
    let text = if path == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("cannot read parameters from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read parameters file {path}"))?
    };
    let origin = if path == "-" { "stdin".to_string() } else { path.to_string() };
    parse_params_document(&text, &origin)
}

/// `-f` then every `--set`, in order.
pub fn build_params(file: Option<&str>, sets: &[String]) -> Result<Value> {
    let mut params = match file {
        Some(path) => read_params_file(path)?,
        None => Value::Object(Map::new()),
    };
    for item in sets {
        apply_set(&mut params, item)?;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_pairs() {
        let env =
            parse_env(&["A=1".into(), "URL=postgres://u:p@h/db?x=y".into(), "EMPTY=".into(), "A=2".into()]).unwrap();
        assert_eq!(env.get("A").map(String::as_str), Some("2"));
        assert_eq!(env.get("URL").map(String::as_str), Some("postgres://u:p@h/db?x=y"));
        assert_eq!(env.get("EMPTY").map(String::as_str), Some(""));
        let err = parse_env(&["FOO".into()]).unwrap_err().to_string();
        assert_eq!(err, "invalid --env \"FOO\": expected KEY=VALUE");
        let err = parse_env(&["=x".into()]).unwrap_err().to_string();
        assert!(err.starts_with("invalid --env \"=x\""), "{err}");
    }

    #[test]
    fn paths() {
        use Segment::*;
        assert_eq!(parse_path("image").unwrap(), vec![Key("image".into())]);
        assert_eq!(parse_path("scaling.maxScale").unwrap(), vec![Key("scaling".into()), Key("maxScale".into())]);
        assert_eq!(parse_path("env[0].name").unwrap(), vec![Key("env".into()), Index(0), Key("name".into())]);
        assert_eq!(parse_path("m[1][2]").unwrap(), vec![Key("m".into()), Index(1), Index(2)]);
        for bad in ["", "a..b", ".a", "a.", "a[x]", "a[1", "a[1]b", "[0]", "a.[0]"] {
            assert!(parse_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("5"), json!(5));
        assert_eq!(parse_value("1.5"), json!(1.5));
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value("null"), json!(null));
        assert_eq!(parse_value("nginx:1.27"), json!("nginx:1.27"));
        assert_eq!(parse_value("\"5\""), json!("5"));
        assert_eq!(parse_value("0123"), json!("0123"));
        assert_eq!(parse_value(""), json!(""));
        assert_eq!(parse_value("[\"sh\",\"-c\"]"), json!(["sh", "-c"]));
        assert_eq!(parse_value("a=b"), json!("a=b"));
    }

    #[test]
    fn set_builds_nested_parameters() {
        let mut p = json!({"image": "nginx", "scaling": {"minScale": 0}});
        for s in ["scaling.maxScale=5", "env[0].name=FOO", "env[0].value=a=b", "env[1].name=BAR", "image=nginx:1.27"] {
            apply_set(&mut p, s).unwrap();
        }
        assert_eq!(
            p,
            json!({
                "image": "nginx:1.27",
                "scaling": {"minScale": 0, "maxScale": 5},
                "env": [{"name": "FOO", "value": "a=b"}, {"name": "BAR"}],
            })
        );
    }

    #[test]
    fn set_errors_name_the_flag() {
        let mut p = json!({"image": "nginx", "env": []});
        let e = apply_set(&mut p, "scaling").unwrap_err().to_string();
        assert_eq!(e, "invalid --set \"scaling\": expected key=value");
        let e = apply_set(&mut p, "image.tag=1").unwrap_err().to_string();
        assert_eq!(e, "invalid --set \"image.tag=1\": cannot set \"tag\" in a string");
        let e = apply_set(&mut p, "env[2].name=X").unwrap_err().to_string();
        assert!(e.starts_with("invalid --set \"env[2].name=X\": index [2] is out of range"), "{e}");
        let e = apply_set(&mut p, "=1").unwrap_err().to_string();
        assert!(e.starts_with("invalid --set \"=1\""), "{e}");
    }

    #[test]
    fn parameter_documents() {
        let v = parse_params_document("image: nginx\nscaling:\n  maxScale: 3\n", "p.yaml").unwrap();
        assert_eq!(v, json!({"image": "nginx", "scaling": {"maxScale": 3}}));
        let v = parse_params_document("{\"image\": \"nginx\"}", "p.json").unwrap();
        assert_eq!(v, json!({"image": "nginx"}));
        assert_eq!(parse_params_document("", "p.yaml").unwrap(), json!({}));
        let e = parse_params_document("- a\n- b\n", "p.yaml").unwrap_err().to_string();
        assert_eq!(e, "invalid parameters in p.yaml: expected a mapping, found an array");
        let e = parse_params_document("a: [\n", "p.yaml").unwrap_err().to_string();
        assert!(e.starts_with("invalid YAML/JSON in p.yaml: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn file_then_sets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, "image: nginx\nscaling:\n  maxScale: 3\n").unwrap();
        let v = build_params(Some(path.to_str().unwrap()), &["scaling.maxScale=5".into()]).unwrap();
        assert_eq!(v, json!({"image": "nginx", "scaling": {"maxScale": 5}}));
        let e = build_params(Some("/nonexistent/p.yaml"), &[]).unwrap_err();
        assert!(format!("{e:#}").starts_with("cannot read parameters file /nonexistent/p.yaml: "));
    }
}
