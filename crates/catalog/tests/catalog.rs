//! Catalog tests against the real `xrds/` directory and synthetic XRDs.

use std::path::Path;

use maxcloud_catalog::{
    to_yaml, Action, Catalog, CatalogError, FieldError, ImageRef, MergePolicy, ResourceName, ServiceType, TenantSlug,
};
use serde_json::{json, Value};

const XRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../xrds");

fn catalog() -> Catalog {
    Catalog::load_dir(Path::new(XRDS)).unwrap_or_else(|e| panic!("loading {XRDS}: {e}"))
}

fn app(c: &Catalog) -> &ServiceType {
    c.get("App").expect("App in catalog")
}

/// Validates and expects exactly these errors.
fn errors(params: Value) -> Vec<FieldError> {
    let c = catalog();
    app(&c).validate(&params).expect_err("parameters should be rejected")
}

fn err(field: &str, message: &str) -> FieldError {
    FieldError::new(field, message)
}

#[test]
fn loads_app_xrd() {
    let c = catalog();
    let app = app(&c);
    assert_eq!(app.kind, "App");
    assert_eq!(app.plural, "apps");
    assert_eq!(app.singular, "app");
    assert_eq!(app.group, "maxcloud.dev");
    assert_eq!(app.version, "v1alpha1");
    assert_eq!(app.api_version(), "maxcloud.dev/v1alpha1");
    assert_eq!(app.xrd_name, "apps.maxcloud.dev");
    assert_eq!(app.source, "app.yaml");
    assert!(!app.description.is_empty() && !app.description.contains('\n'));
    assert_eq!(
        app.ui_order,
        [
            "image",
            "port",
            "env",
            "secretEnv",
            "envFromSecrets",
            "scaling",
            "resources",
            "visibility",
            "domains",
            "revision",
            "traffic",
            "imagePullSecret",
            "command",
            "args"
        ]
    );
    for name in ["App", "app", "apps", "APPS"] {
        assert_eq!(c.get(name).map(|t| t.kind.as_str()), Some("App"), "{name}");
    }
    assert!(c.get("nope").is_none());
    assert_eq!(app.merge_policy(Action::Create), MergePolicy::Auto);
    assert_eq!(app.merge_policy(Action::Delete), MergePolicy::Auto);
    assert_eq!(app.path_for(&ResourceName::parse("shop").unwrap()), "apps/shop.yaml");
    let rules = app.rules();
    assert!(rules.iter().any(|(path, rule, message)| path == "scaling"
        && rule == "!has(self.minScale) || !has(self.maxScale) || self.minScale <= self.maxScale"
        && message == "minScale must not exceed maxScale"));
    assert!(rules.iter().any(|(path, _, _)| path == "env[*]"));
}

#[test]
fn app_traffic_domains_and_secret_references() {
    let c = catalog();
    let app = app(&c);
    let ok = json!({
        "image": "nginx:1.27",
        "revision": "v2",
        "traffic": [
            {"revision": "v1", "percent": 90},
            {"latestRevision": true, "percent": 10, "tag": "canary"}
        ],
        "domains": ["shop.example.com"],
        "secretEnv": [{"name": "DB_PASSWORD", "secretName": "shop-db-app", "key": "password"}],
        "envFromSecrets": ["shop-config"],
        "scaling": {"scaleDownDelay": "5m"}
    });
    app.validate(&ok).expect("a full App validates");
    let cases = [
        (json!({"traffic": [{"revision": "v1", "percent": 90}]}), "traffic", "add up to 100"),
        (
            json!({"traffic": [{"revision": "v1", "latestRevision": true, "percent": 100}]}),
            "traffic[0]",
            "exactly one of revision or latestRevision",
        ),
        (
            json!({"traffic": [{"latestRevision": true, "percent": 50}, {"latestRevision": true, "percent": 50}]}),
            "traffic",
            "at most one",
        ),
        (
            json!({"traffic": [{"revision": "a", "percent": 50, "tag": "x"}, {"revision": "b", "percent": 50, "tag": "x"}]}),
            "traffic",
            "tags must be unique",
        ),
        (json!({"domains": ["Not A Domain"]}), "domains[0]", ""),
        (json!({"scaling": {"scaleDownDelay": "2h"}}), "scaling.scaleDownDelay", "at most 1h"),
        (
            json!({"secretEnv": [{"name": "MAXCLOUD_X", "secretName": "s", "key": "k"}]}),
            "secretEnv[0].name",
            "reserved",
        ),
        (json!({"secretEnv": [{"name": "A", "secretName": "s"}]}), "secretEnv[0].key", "is required"),
    ];
    for (extra, field, message) in cases {
        let mut spec = json!({"image": "nginx:1.27"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let errors = app.validate(&spec).expect_err(&format!("{spec} must be refused"));
        assert!(
            errors.iter().any(|e| e.field == field && e.message.contains(message)),
            "{spec}: expected {field}: {message}, got {errors:?}"
        );
    }
}

#[test]
fn json_schema_of_app() {
    let c = catalog();
    let s = app(&c).json_schema();
    assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(s["type"], "object");
    assert_eq!(s["required"], json!(["image"]));
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(s["properties"]["port"]["default"], 8080);
    assert_eq!(s["properties"]["visibility"]["enum"], json!(["public", "internal"]));
    assert_eq!(s["properties"]["scaling"]["additionalProperties"], false);
    assert_eq!(s["properties"]["env"]["items"]["additionalProperties"], false);
    assert_eq!(
        s["properties"]["image"]["pattern"],
        maxcloud_catalog::names::image_ref_pattern(),
        "xrds/app.yaml spec.image pattern must equal names::image_ref_pattern()"
    );
    let text = s.to_string();
    assert!(!text.contains("x-kubernetes"), "{text}");
    assert!(!text.contains("crossplane"), "{text}");
}

#[test]
fn defaults_applied() {
    let c = catalog();
    let spec = app(&c).validate(&json!({"image": "nginx"})).unwrap();
    assert_eq!(
        spec,
        json!({
            "image": "nginx",
            "port": 8080,
            "scaling": {"minScale": 0, "maxScale": 10, "containerConcurrency": 0},
            "resources": {"cpu": "1", "memory": "512Mi"},
            "visibility": "public"
        })
    );
    // Partial objects get the remaining defaults; given values win; null means absent.
    let spec = app(&c)
        .validate(&json!({"image": "nginx", "port": null, "scaling": {"maxScale": 3}, "resources": {"cpu": "250m"}}))
        .unwrap();
    assert_eq!(spec["port"], 8080);
    assert_eq!(spec["scaling"], json!({"minScale": 0, "maxScale": 3, "containerConcurrency": 0}));
    assert_eq!(spec["resources"], json!({"cpu": "250m", "memory": "512Mi"}));
}

#[test]
fn full_valid_order() {
    let c = catalog();
    let params = json!({
        "image": "ghcr.io/acme/shop:1.2.3",
        "port": 3000,
        "command": ["/bin/shop"],
        "args": ["--listen", ":3000"],
        "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "_X"}],
        "scaling": {"minScale": 1, "maxScale": 5, "target": 50, "containerConcurrency": 100},
        "resources": {"cpu": "0.5", "memory": "1Gi"},
        "visibility": "internal"
    });
    assert_eq!(app(&c).validate(&params).unwrap(), params);
}

#[test]
fn unknown_fields_rejected_with_path() {
    assert_eq!(errors(json!({"image": "nginx", "replicas": 3})), vec![err("replicas", "unknown field")]);
    assert_eq!(
        errors(json!({"image": "nginx", "scaling": {"maxscale": 3}})),
        vec![err("scaling.maxscale", "unknown field")]
    );
    assert_eq!(
        errors(json!({"image": "nginx", "env": [{"name": "A", "valeu": "x"}]})),
        vec![err("env[0].valeu", "unknown field")]
    );
    // Crossplane's own spec field is not an order parameter.
    assert_eq!(errors(json!({"image": "nginx", "crossplane": {}})), vec![err("crossplane", "unknown field")]);
}

#[test]
fn required_type_and_object_errors() {
    assert_eq!(errors(json!({})), vec![err("image", "is required")]);
    assert_eq!(errors(json!({"image": null})), vec![err("image", "is required")]);
    assert_eq!(errors(json!({"image": "nginx", "port": "80"})), vec![err("port", "must be of type integer")]);
    assert_eq!(errors(json!({"image": "nginx", "port": 1.5})), vec![err("port", "must be of type integer")]);
    for not_object in [json!(null), json!([]), json!("nginx"), json!(1)] {
        assert_eq!(errors(not_object), vec![err("", "must be an object")]);
    }
    assert_eq!(errors(json!({"image": "nginx", "env": [{"value": "x"}]})), vec![err("env[0].name", "is required")]);
}

#[test]
fn ranges() {
    assert_eq!(
        errors(json!({"image": "nginx", "scaling": {"maxScale": 101}})),
        vec![err("scaling.maxScale", "must be less than or equal to 100")]
    );
    assert_eq!(
        errors(json!({"image": "nginx", "port": 0, "scaling": {"minScale": -1}})),
        vec![
            err("port", "must be greater than or equal to 1"),
            err("scaling.minScale", "must be greater than or equal to 0"),
        ]
    );
    assert_eq!(
        errors(json!({"image": "nginx", "port": 65536})),
        vec![err("port", "must be less than or equal to 65535")]
    );
}

#[test]
fn cel_scaling_rules() {
    assert_eq!(
        errors(json!({"image": "nginx", "scaling": {"minScale": 5, "maxScale": 2}})),
        vec![err("scaling.minScale", "minScale must not exceed maxScale")]
    );
    // Defaults take part in the rule: minScale 20 > default maxScale 10.
    assert_eq!(
        errors(json!({"image": "nginx", "scaling": {"minScale": 20}})),
        vec![err("scaling.minScale", "minScale must not exceed maxScale")]
    );
    assert_eq!(
        errors(json!({"image": "nginx", "scaling": {"target": 200, "containerConcurrency": 100}})),
        vec![err("scaling.target", "target must not exceed containerConcurrency")]
    );
    let c = catalog();
    // Unlimited concurrency (0) allows any target.
    assert!(app(&c).validate(&json!({"image": "nginx", "scaling": {"target": 200}})).is_ok());
    // CEL is skipped when the schema already failed.
    assert_eq!(
        errors(json!({"image": "nginx", "scaling": {"minScale": 5, "maxScale": 2, "x": 1}})),
        vec![err("scaling.x", "unknown field")]
    );
}

#[test]
fn image_validation_agrees_with_image_ref() {
    let c = catalog();
    let app = app(&c);
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let good = [
        "nginx".to_owned(),
        "nginx:latest".into(),
        "ghcr.io/acme/shop:1.2.3".into(),
        format!("registry.example.com:5000/a/b@{digest}"),
        "localhost:5000/app".into(),
        "library/nginx".into(),
    ];
    let bad = [
        "",
        "nginx latest",
        "Nginx",
        "ghcr.io/Acme/shop:1",
        "Acme/shop",
        "nginx:",
        "nginx:-x",
        "nginx@sha256:abc",
        "exa_mple.com/app",
        "nginx/",
    ];
    for image in &good {
        assert!(ImageRef::parse(image).is_ok(), "{image}");
        assert!(app.validate(&json!({"image": image})).is_ok(), "{image}");
    }
    for image in bad {
        assert!(ImageRef::parse(image).is_err(), "{image}");
        let errors = app.validate(&json!({"image": image})).unwrap_err();
        assert!(errors.iter().all(|e| e.field == "image"), "{image}: {errors:?}");
    }
    let e = &app.validate(&json!({"image": "Nginx"})).unwrap_err()[0];
    assert!(e.message.starts_with("invalid value \"Nginx\": must match"), "{e}");
    let e = &app.validate(&json!({"image": ""})).unwrap_err()[0];
    assert_eq!(e.to_string(), "image: must be at least 1 characters long");
    let e = app.validate(&json!({"image": "a".repeat(513)})).unwrap_err();
    assert_eq!(e, vec![err("image", "must be at most 512 characters long")]);
}

#[test]
fn env_rules() {
    assert_eq!(
        errors(json!({"image": "nginx", "env": [
            {"name": "A", "value": "1"}, {"name": "FOO"}, {"name": "B"}, {"name": "FOO", "value": "2"}
        ]})),
        vec![err("env[3].name", "duplicate value \"FOO\"")]
    );
    assert_eq!(
        errors(json!({"image": "nginx", "env": [{"name": "OK"}, {"name": "MAXCLOUD_URL", "value": "x"}]})),
        vec![err("env[1].name", "names starting with MAXCLOUD_ are reserved")]
    );
    let e = errors(json!({"image": "nginx", "env": [{"name": "1BAD"}]}));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].field, "env[0].name");
    let many: Vec<Value> = (0..101).map(|i| json!({"name": format!("V{i}")})).collect();
    assert_eq!(errors(json!({"image": "nginx", "env": many})), vec![err("env", "must have at most 100 items")]);
}

#[test]
fn enum_and_quantities() {
    assert_eq!(
        errors(json!({"image": "nginx", "visibility": "private"})),
        vec![err("visibility", "must be one of: public, internal")]
    );
    let c = catalog();
    for (cpu, memory) in [("100m", "128Mi"), ("1", "1Gi"), ("0.5", "512Mi"), ("2", "1.5Gi")] {
        let params = json!({"image": "nginx", "resources": {"cpu": cpu, "memory": memory}});
        assert!(app(&c).validate(&params).is_ok(), "{cpu} {memory}");
    }
    for (cpu, memory) in [("1 core", "128Mi"), ("-1", "1Gi"), ("1", "1GB"), ("m", "1Gi")] {
        let params = json!({"image": "nginx", "resources": {"cpu": cpu, "memory": memory}});
        assert!(app(&c).validate(&params).is_err(), "{cpu} {memory}");
    }
}

#[test]
fn build_resource_and_yaml_round_trip() {
    let c = catalog();
    let app = app(&c);
    let tenant = TenantSlug::parse("acme").unwrap();
    let name = ResourceName::parse("shop").unwrap();
    let order_id = "0196f1c2-7a3b-7c4d-8e5f-0123456789ab";
    let spec = app
        .validate(&json!({
            "image": "ghcr.io/acme/shop:1.2.3",
            "env": [
                {"name": "TRUTHY", "value": "true"},
                {"name": "NUM", "value": "8080"},
                {"name": "EMPTY", "value": ""},
                {"name": "MULTI", "value": "line one\nline two\n"},
                {"name": "QUOTES", "value": "it's \"quoted\": # not a comment"},
                {"name": "LONG", "value": "word ".repeat(40)},
                {"name": "NULLISH", "value": "null"},
                {"name": "UNI", "value": "Müller – ✓"}
            ],
            "args": ["--flag=1", "- dash", "*star", "&amp", "{x}", "0x10", "1e3", "~"]
        }))
        .unwrap();
    let obj = app.build_resource(&tenant, &name, order_id, &spec);
    assert_eq!(obj["apiVersion"], "maxcloud.dev/v1alpha1");
    assert_eq!(obj["kind"], "App");
    assert_eq!(
        obj["metadata"],
        json!({
            "name": "shop",
            "namespace": "mc-acme",
            "labels": {
                "maxcloud.dev/tenant": "acme",
                "app.kubernetes.io/managed-by": "maxcloud",
                "maxcloud.dev/order-id": order_id
            },
            "annotations": {"maxcloud.dev/order-id": order_id}
        })
    );
    assert_eq!(obj["spec"], spec);

    let yaml = to_yaml(&obj).unwrap();
    assert!(yaml.ends_with('\n'));
    assert!(yaml.starts_with("apiVersion: maxcloud.dev/v1alpha1\n"), "{yaml}");
    let back: Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back, obj, "{yaml}");
    // The resource is valid for the API server too: its spec validates unchanged.
    assert_eq!(app.validate(&back["spec"]).unwrap(), spec);

    // An order id that is not a valid label value is only an annotation.
    let odd = app.build_resource(&tenant, &name, "not a label!", &spec);
    assert!(odd["metadata"]["labels"].get("maxcloud.dev/order-id").is_none());
    assert_eq!(odd["metadata"]["annotations"]["maxcloud.dev/order-id"], "not a label!");
}

const WIDGET_XRD: &str = r#"
apiVersion: apiextensions.crossplane.io/v2
kind: CompositeResourceDefinition
metadata:
  name: widgets.example.org
  annotations:
    maxcloud.dev/merge-policy-create: review
    maxcloud.dev/merge-policy-delete: review
spec:
  scope: Namespaced
  group: example.org
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      served: true
      referenceable: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              description: A widget.
              properties:
                crossplane:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                size:
                  type: string
                  enum: [small, large]
                  default: small
                replicas:
                  type: integer
                  nullable: true
                labels:
                  type: object
                  maxProperties: 10
                  additionalProperties:
                    type: string
                    maxLength: 63
                    x-kubernetes-validations:
                      - rule: "!self.startsWith('-')"
                tags:
                  type: array
                  maxItems: 5
                  x-kubernetes-list-type: set
                  items: {type: string, maxLength: 20}
              x-kubernetes-validations:
                - rule: "self.size == 'large' || !has(self.replicas) || self.replicas == null || self.replicas <= 2"
                  message: small widgets have at most 2 replicas
                  fieldPath: .replicas
"#;

fn with_widget() -> Catalog {
    let app = std::fs::read_to_string(format!("{XRDS}/app.yaml")).unwrap();
    Catalog::from_xrds(&[("widget.yaml".to_owned(), WIDGET_XRD.to_owned()), ("app.yaml".to_owned(), app)]).unwrap()
}

#[test]
fn synthetic_xrd_with_own_rule() {
    let c = with_widget();
    assert_eq!(c.types().map(|t| t.kind.as_str()).collect::<Vec<_>>(), ["App", "Widget"]);
    let w = c.get("widget").unwrap();
    assert_eq!(w.singular, "widget");
    assert_eq!(w.description, "A widget.");
    assert_eq!(w.ui_order, ["labels", "replicas", "size", "tags"]);
    assert_eq!(w.merge_policy(Action::Create), MergePolicy::Review);
    assert_eq!(w.merge_policy(Action::Update), MergePolicy::Auto);
    assert_eq!(w.merge_policy(Action::Delete), MergePolicy::Review);
    assert_eq!(w.api_version(), "example.org/v1");

    assert_eq!(w.validate(&json!({})).unwrap(), json!({"size": "small"}));
    assert_eq!(w.validate(&json!({"replicas": null})).unwrap(), json!({"size": "small", "replicas": null}));
    assert!(w.validate(&json!({"size": "large", "replicas": 9})).is_ok());
    assert_eq!(
        w.validate(&json!({"replicas": 3})).unwrap_err(),
        vec![err("replicas", "small widgets have at most 2 replicas")]
    );
    assert_eq!(
        w.validate(&json!({"labels": {"a": "ok", "b": "-no"}})).unwrap_err(),
        vec![err("labels.b", "failed rule: !self.startsWith('-')")]
    );
    assert_eq!(w.validate(&json!({"labels": {"a": 1}})).unwrap_err(), vec![err("labels.a", "must be of type string")]);
    assert_eq!(
        w.validate(&json!({"tags": ["x", "y", "x"]})).unwrap_err(),
        vec![err("tags[2]", "duplicate value \"x\"")]
    );
}

fn load_error(file: &str, yaml: &str) -> String {
    let e = Catalog::from_xrds(&[(file.to_owned(), yaml.to_owned())]).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with(&format!("{file}: ")), "{text}");
    text
}

#[test]
fn malformed_xrds_name_their_source() {
    let e = load_error("broken.yaml", "apiVersion: [unclosed");
    assert!(e.contains("invalid YAML"), "{e}");
    let e = load_error("cm.yaml", "apiVersion: v1\nkind: ConfigMap\n");
    assert!(e.contains("CompositeResourceDefinition"), "{e}");
    let e = load_error("badrule.yaml", &WIDGET_XRD.replace("self.replicas <= 2", "self.replicas <="));
    assert!(e.contains("CEL rule") && e.contains("self.replicas <="), "{e}");
    let e = load_error("badname.yaml", &WIDGET_XRD.replace("name: widgets.example.org", "name: gadgets.example.org"));
    assert!(e.contains("widgets.example.org"), "{e}");
    let e = load_error("cluster.yaml", &WIDGET_XRD.replace("scope: Namespaced", "scope: Cluster"));
    assert!(e.contains("Namespaced"), "{e}");
    let e = load_error("policy.yaml", &WIDGET_XRD.replace("merge-policy-create: review", "merge-policy-create: maybe"));
    assert!(e.contains("merge-policy-create"), "{e}");
    let e = load_error("default.yaml", &WIDGET_XRD.replace("default: small", "default: medium"));
    assert!(e.contains("spec.size") && e.contains("invalid default"), "{e}");
    let e = load_error("keyword.yaml", &WIDGET_XRD.replace("maxProperties: 10", "x-ui-order: [a]"));
    assert!(e.contains("x-ui-order") && e.contains("spec.labels"), "{e}");

    // Duplicate kinds across files.
    let e = Catalog::from_xrds(&[
        ("a.yaml".to_owned(), WIDGET_XRD.to_owned()),
        ("b.yaml".to_owned(), WIDGET_XRD.to_owned()),
    ])
    .unwrap_err();
    assert!(matches!(e, CatalogError::Duplicate { .. }), "{e}");
    assert!(e.to_string().contains("a.yaml") && e.to_string().contains("b.yaml"), "{e}");
}

#[test]
fn load_dir_reads_yaml_files_and_names_bad_file() {
    let dir = std::env::temp_dir().join(format!("maxcloud-catalog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("widget.yml"), WIDGET_XRD).unwrap();
    std::fs::write(dir.join("README.md"), "not an XRD").unwrap();
    let c = Catalog::load_dir(&dir).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c.get("widgets").unwrap().source, "widget.yml");
    std::fs::write(dir.join("zz-bad.yaml"), "kind: [").unwrap();
    let e = Catalog::load_dir(&dir).unwrap_err().to_string();
    assert!(e.starts_with("zz-bad.yaml: "), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    let e = Catalog::load_dir(&dir).unwrap_err();
    assert!(matches!(e, CatalogError::Io { .. }), "{e}");
}

#[test]
fn catalog_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
    assert_send_sync::<CatalogError>();
}

#[test]
fn action_and_policy_strings() {
    assert_eq!("delete".parse::<Action>().unwrap(), Action::Delete);
    assert_eq!(Action::Update.as_str(), "update");
    let e = "remove".parse::<Action>().unwrap_err();
    assert!(e.contains("create, update or delete"), "{e}");
    assert_eq!(MergePolicy::Review.to_string(), "review");
    assert_eq!(serde_json::to_value(MergePolicy::Auto).unwrap(), "auto");
    assert_eq!(serde_json::from_value::<MergePolicy>(json!("review")).unwrap(), MergePolicy::Review);
}

#[test]
fn footprints_follow_the_price_annotations() {
    let catalog = catalog();
    let app = catalog.get("App").unwrap();
    let spec =
        app.validate(&json!({"image": "nginx", "scaling": {"maxScale": 3}, "resources": {"cpu": "250m"}})).unwrap();
    let f = app.footprint(&spec).unwrap();
    assert_eq!((f.cpu_milli, f.memory_bytes, f.min_instances, f.max_instances), (250, 512 << 20, 0, 3));
    let db = catalog.get("Database").unwrap();
    let spec = db.validate(&json!({"instances": 2})).unwrap();
    let f = db.footprint(&spec).unwrap();
    assert_eq!((f.cpu_milli, f.memory_bytes, f.min_instances, f.max_instances), (1000, 1 << 30, 2, 2));
    assert!(catalog.get("DNSRecord").unwrap().footprint(&json!({})).is_none(), "no annotations, no footprint");
}

#[test]
fn price_annotations_are_checked() {
    let dir = std::env::temp_dir().join(format!("maxcloud-catalog-price-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xrd = std::fs::read_to_string(Path::new(XRDS).join("database.yaml")).unwrap();
    let load = |text: &str| {
        std::fs::write(dir.join("database.yaml"), text).unwrap();
        Catalog::load_dir(&dir).map(|_| ()).unwrap_err().to_string()
    };
    let e = load(&xrd.replace("price-instances: instances", "price-instances: replicas"));
    assert!(e.contains("maxcloud.dev/price-instances: replicas is not a spec field"), "{e}");
    let e = load(&xrd.replace("price-cpu: resources.cpu", "price-cpu: instances"));
    assert!(e.contains("not string"), "{e}");
    let e = load(&xrd.replace("    maxcloud.dev/price-memory: resources.memory\n", ""));
    assert!(e.contains("go together"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
