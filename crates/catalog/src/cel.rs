//! `x-kubernetes-validations` CEL rules: collected and compiled once per XRD, evaluated with
//! `self` bound to each instance value of the rule's schema node (Kubernetes semantics).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cel_interpreter::objects::{Key, Map as CelMap};
use cel_interpreter::{Context, Program, Value as Cel};
use serde_json::Value;

use crate::schema::{display_at, push_index, push_key};
use crate::FieldError;

/// One step from a schema node to a child schema node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A named property.
    Prop(String),
    /// Every item of an array.
    Items,
    /// Every value of a map (`additionalProperties`).
    Values,
}

/// A compiled validation rule and where it applies.
#[derive(Debug)]
pub(crate) struct Rule {
    /// Path from the spec schema to the node carrying the rule.
    pub(crate) steps: Vec<Step>,
    /// The CEL source.
    pub(crate) rule: String,
    /// The message reported when the rule evaluates to false.
    pub(crate) message: String,
    /// `fieldPath` of the rule, relative to the node, as dotted-path segments.
    field_path: Vec<FieldSeg>,
    /// Transition rules (referencing `oldSelf`) only apply to updates of live objects and are
    /// not evaluated here.
    transition: bool,
    program: Program,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldSeg {
    Key(String),
    Index(usize),
}

/// Functions of the CEL standard library provided by the evaluator (cel-interpreter's default
/// context). Rules calling anything else (Kubernetes CEL extension libraries such as
/// `quantity()` or `url()`) are rejected at load time instead of failing on every order.
const SUPPORTED_FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "matches",
    "duration",
    "timestamp",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    // Kubernetes CEL list library (provided below by `k8s_sum`)
    "sum",
];

/// `list.sum()` from the Kubernetes CEL list library (`[1, 2].sum() == 3`): cel-interpreter has no such
/// function, and rules such as "traffic percents add up to 100" need it. Integers only (what the XRDs use).
fn k8s_sum(
    cel_interpreter::extractors::This(list): cel_interpreter::extractors::This<std::sync::Arc<Vec<Cel>>>,
) -> Result<Cel, cel_interpreter::ExecutionError> {
    let mut total: i64 = 0;
    for item in list.iter() {
        let n = match item {
            Cel::Int(n) => *n,
            Cel::UInt(n) => {
                i64::try_from(*n).map_err(|_| cel_interpreter::ExecutionError::function_error("sum", "overflow"))?
            }
            other => {
                return Err(cel_interpreter::ExecutionError::function_error("sum", format!("cannot sum {other:?}")))
            }
        };
        total =
            total.checked_add(n).ok_or_else(|| cel_interpreter::ExecutionError::function_error("sum", "overflow"))?;
    }
    Ok(Cel::Int(total))
}

fn root_context() -> Context<'static> {
    let mut ctx = Context::default();
    ctx.add_function("sum", k8s_sum);
    ctx
}

impl Rule {
    /// The schema node's path as text: `scaling`, `env[*]`, `""` for the spec itself.
    pub(crate) fn node_path(&self) -> String {
        node_path(&self.steps)
    }
}

/// Collects and compiles every rule under `schema` (the spec schema).
pub(crate) fn collect_rules(schema: &Value) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    collect(schema, &mut Vec::new(), &mut rules)?;
    Ok(rules)
}

fn collect(schema: &Value, steps: &mut Vec<Step>, out: &mut Vec<Rule>) -> Result<(), String> {
    if let Some(list) = schema.get("x-kubernetes-validations") {
        let list = list.as_array().ok_or("x-kubernetes-validations must be a list")?;
        for entry in list {
            out.push(compile(entry, steps)?);
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            steps.push(Step::Prop(name.clone()));
            collect(sub, steps, out)?;
            steps.pop();
        }
    }
    if let Some(sub) = schema.get("items") {
        steps.push(Step::Items);
        collect(sub, steps, out)?;
        steps.pop();
    }
    if let Some(sub) = schema.get("additionalProperties").filter(|s| s.is_object()) {
        steps.push(Step::Values);
        collect(sub, steps, out)?;
        steps.pop();
    }
    Ok(())
}

fn compile(entry: &Value, steps: &[Step]) -> Result<Rule, String> {
    let at = display_at(&node_path(steps));
    let source = entry
        .get("rule")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: x-kubernetes-validations entry without a rule"))?;
    let fail = |msg: String| format!("{at}: CEL rule {source:?}: {msg}");
    // cel-parser panics on some syntax errors instead of reporting them.
    let program = catch_unwind(|| Program::compile(source))
        .map_err(|_| fail("syntax error".into()))?
        .map_err(|e| fail(e.to_string()))?;
    let references = program.references();
    for function in references.functions() {
        // Operators (`_&&_`, `@in`, `!_`) are built into the evaluator; macros are expanded
        // by the parser.
        let builtin = !function.starts_with(|c: char| c.is_ascii_alphabetic());
        if !builtin && !SUPPORTED_FUNCTIONS.contains(&function) {
            return Err(fail(format!("function {function:?} is not supported by the catalog's CEL evaluator")));
        }
    }
    let transition = references.has_variable("oldSelf");
    let message = entry
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map_or_else(|| format!("failed rule: {source}"), str::to_owned);
    let field_path = match entry.get("fieldPath").and_then(Value::as_str) {
        Some(fp) => parse_field_path(fp).map_err(|e| fail(format!("fieldPath {fp:?}: {e}")))?,
        None => Vec::new(),
    };
    Ok(Rule { steps: steps.to_vec(), rule: source.to_owned(), message, field_path, transition, program })
}

/// A schema path as text: `scaling`, `env[*]`, `""` for the spec itself.
fn node_path(steps: &[Step]) -> String {
    let mut at = String::new();
    for step in steps {
        at = match step {
            Step::Prop(name) => push_key(&at, name),
            Step::Items | Step::Values => format!("{at}[*]"),
        };
    }
    at
}

/// Parses a Kubernetes rule `fieldPath` (`.a.b`, `.a['b.c']`, `.a[0]`).
fn parse_field_path(fp: &str) -> Result<Vec<FieldSeg>, String> {
    let mut segs = Vec::new();
    let mut rest = fp;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("empty field name".into());
            }
            segs.push(FieldSeg::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").ok_or("unterminated ['...']")?;
            segs.push(FieldSeg::Key(r[..end].to_owned()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unterminated [...]")?;
            let index = r[..end].parse().map_err(|_| "invalid index")?;
            segs.push(FieldSeg::Index(index));
            rest = &r[end + 1..];
        } else {
            return Err("must start with '.' or '['".into());
        }
    }
    Ok(segs)
}

/// Converts JSON to a CEL value; integers become CEL `int` (int64), as in Kubernetes.
pub(crate) fn to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cel::Int(i)
            } else if let Some(u) = n.as_u64() {
                Cel::UInt(u)
            } else {
                Cel::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(obj) => {
            let map: HashMap<Key, Cel> =
                obj.iter().map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v))).collect();
            Cel::Map(CelMap { map: Arc::new(map) })
        }
    }
}

/// Every instance value (with its dotted field path) the schema path `steps` selects.
fn select<'v>(value: &'v Value, steps: &[Step], at: String, out: &mut Vec<(String, &'v Value)>) {
    let Some((step, rest)) = steps.split_first() else {
        if !value.is_null() {
            out.push((at, value));
        }
        return;
    };
    match (step, value) {
        (Step::Prop(name), Value::Object(obj)) => {
            if let Some(v) = obj.get(name) {
                select(v, rest, push_key(&at, name), out);
            }
        }
        (Step::Items, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                select(item, rest, push_index(&at, i), out);
            }
        }
        (Step::Values, Value::Object(obj)) => {
            for (k, v) in obj {
                select(v, rest, push_key(&at, k), out);
            }
        }
        _ => {}
    }
}

/// Evaluates `rules` against a (defaulted, schema-valid) spec.
pub(crate) fn evaluate(rules: &[Rule], spec: &Value) -> Vec<FieldError> {
    let root = root_context();
    let mut errors = Vec::new();
    for rule in rules.iter().filter(|r| !r.transition) {
        let mut nodes = Vec::new();
        select(spec, &rule.steps, String::new(), &mut nodes);
        for (at, value) in nodes {
            let mut ctx = root.new_inner_scope();
            ctx.add_variable_from_value("self", to_cel(value));
            // cel-interpreter panics on a few unsupported constructs; never let a rule take
            // the caller down.
            let result = catch_unwind(AssertUnwindSafe(|| rule.program.execute(&ctx)));
            let message = match result {
                Ok(Ok(Cel::Bool(true))) => continue,
                Ok(Ok(Cel::Bool(false))) => rule.message.clone(),
                Ok(Ok(other)) => {
                    format!("rule {:?} evaluated to {:?}, not a boolean", rule.rule, other.type_of().to_string())
                }
                Ok(Err(e)) => format!("rule {:?} failed to evaluate: {e}", rule.rule),
                Err(_) => format!("rule {:?} failed to evaluate", rule.rule),
            };
            let mut field = at;
            for seg in &rule.field_path {
                field = match seg {
                    FieldSeg::Key(k) => push_key(&field, k),
                    FieldSeg::Index(i) => push_index(&field, *i),
                };
            }
            errors.push(FieldError::new(field, message));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(schema: Value) -> Vec<Rule> {
        collect_rules(&schema).unwrap()
    }

    #[test]
    fn integers_are_cel_ints() {
        let r = rules(json!({"x-kubernetes-validations": [
            {"rule": "self.a <= self.b && self.a + 1 == 2 && self.c == 1.5", "message": "m"}
        ]}));
        assert!(evaluate(&r, &json!({"a": 1, "b": 2, "c": 1.5})).is_empty());
        assert_eq!(evaluate(&r, &json!({"a": 3, "b": 2, "c": 1.5})), vec![FieldError::new("", "m")]);
    }

    #[test]
    fn supported_subset() {
        let r = rules(json!({"x-kubernetes-validations": [
            {"rule": "has(self.a) ? self.a.startsWith('x') : true"},
            {"rule": "self.l.all(i, i > 0) && self.l.exists(i, i == 2) && size(self.l) == 2 && self.l.size() < 3"},
            {"rule": "self.s.matches('^[a-z]+$') && self.s.endsWith('c') && self.s.contains('b')"},
            {"rule": "!(self.s in ['x', 'y']) && self.m.all(k, self.m[k] > 0)"}
        ]}));
        let ok = json!({"a": "xy", "l": [1, 2], "s": "abc", "m": {"k": 1}});
        assert_eq!(evaluate(&r, &ok), vec![]);
        let bad = json!({"a": "y", "l": [1, 2], "s": "abc", "m": {"k": 1}});
        assert_eq!(
            evaluate(&r, &bad),
            vec![FieldError::new("", "failed rule: has(self.a) ? self.a.startsWith('x') : true")]
        );
    }

    #[test]
    fn rules_on_items_and_field_paths() {
        let r = rules(json!({"properties": {"l": {"items": {"x-kubernetes-validations": [
            {"rule": "self.n != 'bad'", "message": "bad name", "fieldPath": ".n"}
        ]}}}}));
        assert_eq!(r[0].node_path(), "l[*]");
        let errors = evaluate(&r, &json!({"l": [{"n": "ok"}, {"n": "bad"}]}));
        assert_eq!(errors, vec![FieldError::new("l[1].n", "bad name")]);
        assert!(evaluate(&r, &json!({})).is_empty());
    }

    #[test]
    fn evaluation_errors_are_field_errors() {
        let r = rules(json!({"x-kubernetes-validations": [{"rule": "self.missing > 0"}]}));
        let errors = evaluate(&r, &json!({}));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("failed to evaluate"), "{}", errors[0]);
    }

    #[test]
    fn kubernetes_list_sum() {
        let r = rules(json!({"properties": {"t": {"x-kubernetes-validations": [
            {"rule": "self.map(x, x.p).sum() == 100", "message": "percents must add up to 100"}
        ]}}}));
        assert!(evaluate(&r, &json!({"t": [{"p": 90}, {"p": 10}]})).is_empty());
        let errors = evaluate(&r, &json!({"t": [{"p": 90}, {"p": 20}]}));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("add up to 100"), "{}", errors[0]);
        assert!(evaluate(&r, &json!({"t": []})).len() == 1, "an empty sum is 0");
    }

    #[test]
    fn transition_rules_are_skipped() {
        let r = rules(json!({"x-kubernetes-validations": [{"rule": "self == oldSelf"}]}));
        assert!(evaluate(&r, &json!({"a": 1})).is_empty());
    }

    #[test]
    fn load_errors() {
        let err = collect_rules(&json!({"properties": {"a": {"x-kubernetes-validations": [{"rule": "self.x <"}]}}}))
            .unwrap_err();
        assert!(err.contains("spec.a") && err.contains("self.x <"), "{err}");
        let err = collect_rules(
            &json!({"x-kubernetes-validations": [{"rule": "quantity(self.q).isGreaterThan(quantity('1'))"}]}),
        )
        .unwrap_err();
        assert!(err.contains("is not supported by the catalog's CEL evaluator"), "{err}");
        let err =
            collect_rules(&json!({"x-kubernetes-validations": [{"rule": "true", "fieldPath": "a"}]})).unwrap_err();
        assert!(err.contains("fieldPath"), "{err}");
        assert_eq!(
            parse_field_path(".a['b.c'][2].d").unwrap(),
            vec![FieldSeg::Key("a".into()), FieldSeg::Key("b.c".into()), FieldSeg::Index(2), FieldSeg::Key("d".into())]
        );
    }
}
