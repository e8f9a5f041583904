//! Support for the platform tests: the pinned upstream tools that `scripts/testbin.sh` builds from their Go
//! modules (Crossplane core and CLI, composition functions, helm, kustomize, kubeconform) and helpers that run
//! them the way a platform engineer would.
//!
//! Composition functions run as local processes on free loopback ports (`--insecure`); the Crossplane CLI
//! reaches them through the `render.crossplane.io/runtime: Development` annotation and runs the composition
//! with the real Crossplane reconciler engine (`--crossplane-binary`, `crossplane internal render`). No Docker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace_root;

/// Pinned versions from `scripts/versions.env` (KEY=VALUE lines).
pub fn versions() -> &'static BTreeMap<String, String> {
    maxcloud_testenv::tools::versions()
}

pub fn version(key: &str) -> &'static str {
    maxcloud_testenv::tools::version(key).unwrap_or_else(|e| panic!("{e}"))
}

/// The tool cache, built by `scripts/testbin.sh` on first use (a no-op when everything is there).
pub fn testbin() -> &'static Path {
    maxcloud_testenv::tools::testbin().unwrap_or_else(|e| panic!("{e}"))
}

/// Path of a tool binary: `<testbin>/<name>-<version>/<binary>`.
pub fn tool(name: &str, version_key: &str, binary: &str) -> PathBuf {
    maxcloud_testenv::tools::tool(name, version_key, binary).unwrap_or_else(|e| panic!("{e}"))
}

pub fn crossplane_cli() -> PathBuf {
    tool("crossplane-cli", "CROSSPLANE_CLI_VERSION", "crossplane")
}

pub fn crossplane_core() -> PathBuf {
    tool("crossplane", "CROSSPLANE_VERSION", "crossplane")
}

/// Directory of one upstream project's CRDs, e.g. `crds("knative-serving", "KNATIVE_SERVING_VERSION")`.
pub fn crds(project: &str, version_key: &str) -> PathBuf {
    let dir = testbin().join("crds").join(format!("{project}-{}", version(version_key)));
    assert!(dir.join(".done").is_file(), "CRDs of {project} were not fetched by scripts/testbin.sh");
    dir
}

fn free_port() -> u16 {
    maxcloud_testenv::process::free_port().expect("a free port")
}

fn wait_listening(port: u16, child: &mut Child, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not listen on 127.0.0.1:{port}");
}

/// The composition functions the platform uses, each running as a local process for the life of this value.
pub struct Functions {
    children: Vec<Child>,
    /// A `Function` manifest per function, annotated for the Development runtime at its port.
    pub manifest: PathBuf,
    _dir: tempfile::TempDir,
}

impl Functions {
    /// Starts every function named by `compositions/functions.yaml`, with that file's package pins, and writes a
    /// copy of it annotated with each local process's address.
    pub fn start() -> Functions {
        let known = [
            ("function-go-templating", "FUNCTION_GO_TEMPLATING_VERSION"),
            ("function-auto-ready", "FUNCTION_AUTO_READY_VERSION"),
        ];
        let source = std::fs::read_to_string(workspace_root().join("compositions/functions.yaml"))
            .expect("compositions/functions.yaml");
        let mut docs: Vec<Value> = serde_saphyr::from_multiple(&source).expect("functions.yaml parses");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut children = Vec::new();
        for doc in &mut docs {
            let name = doc["metadata"]["name"].as_str().expect("Function name").to_string();
            let (_, key) = known
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("no local build of function {name}: add it to scripts/testbin.sh"));
            let port = free_port();
            let mut child = Command::new(tool(&name, key, "function"))
                .args(["--insecure", &format!("--address=127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {e}"));
            wait_listening(port, &mut child, &name);
            children.push(child);
            let annotations = doc["metadata"]
                .as_object_mut()
                .expect("metadata")
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            annotations["render.crossplane.io/runtime"] = "Development".into();
            annotations["render.crossplane.io/runtime-development-target"] = format!("127.0.0.1:{port}").into();
        }
        let manifest = dir.path().join("functions.yaml");
        let text: String = docs.iter().map(|d| format!("---\n{}", to_yaml(d))).collect();
        std::fs::write(&manifest, text).expect("write functions manifest");
        Functions { children, manifest, _dir: dir }
    }
}

impl Drop for Functions {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).expect("serialise YAML")
}

pub fn parse_yaml_docs(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("YAML: {e}\n{text}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// What `crossplane composition render` printed: the XR (with `--include-full-xr`) first, then each composed
/// resource, plus the raw text (to pipe into `validate`).
pub struct Rendered {
    pub text: String,
    pub xr: Value,
    pub composed: Vec<Value>,
}

impl Rendered {
    /// The composed resource with this `crossplane.io/composition-resource-name`.
    pub fn resource(&self, name: &str) -> &Value {
        self.composed
            .iter()
            .find(|r| r["metadata"]["annotations"]["crossplane.io/composition-resource-name"] == name)
            .unwrap_or_else(|| panic!("no composed resource {name:?}; have {:?}", self.names()))
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .composed
            .iter()
            .map(|r| {
                r["metadata"]["annotations"]["crossplane.io/composition-resource-name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        names.sort();
        names
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.composed.iter().filter(|r| r["kind"] == kind).collect()
    }
}

/// `crossplane composition render XR COMPOSITION FUNCTIONS --xrd XRD --include-full-xr` with the local core
/// binary. `observed` optionally names a file of observed composed resources (to render a later reconcile).
pub fn render(xr: &Path, composition: &Path, xrd: &Path, functions: &Functions, observed: Option<&Path>) -> Rendered {
    render_with(xr, composition, xrd, functions, observed, None)
}

/// [`render`] plus `--required-resources` (cluster objects a composition asks for, e.g. the platform's
/// EnvironmentConfig).
pub fn render_with(
    xr: &Path,
    composition: &Path,
    xrd: &Path,
    functions: &Functions,
    observed: Option<&Path>,
    required: Option<&Path>,
) -> Rendered {
    let mut cmd = Command::new(crossplane_cli());
    cmd.args(["composition", "render"])
        .arg(xr)
        .arg(composition)
        .arg(&functions.manifest)
        .arg(format!("--crossplane-binary={}", crossplane_core().display()))
        .arg(format!("--xrd={}", xrd.display()))
        .arg("--include-full-xr");
    if let Some(observed) = observed {
        cmd.arg(format!("--observed-resources={}", observed.display()));
    }
    if let Some(required) = required {
        cmd.arg(format!("--required-resources={}", required.display()));
    }
    let out = run(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "render {} with {} failed: {}\n{text}",
        xr.display(),
        composition.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut docs = parse_yaml_docs(&text);
    assert!(!docs.is_empty(), "render printed nothing");
    let xr = docs.remove(0);
    Rendered { text, xr, composed: docs }
}

/// `crossplane resource validate EXTENSIONS RESOURCES --error-on-missing-schemas`, offline: Crossplane's own
/// schemas come from the seeded package cache. Returns (success, combined output).
pub fn validate(extensions: &[PathBuf], resources: &Path) -> (bool, String) {
    let joined: Vec<String> = extensions.iter().map(|p| p.display().to_string()).collect();
    let out = run(Command::new(crossplane_cli())
        .args(["resource", "validate", "--error-on-missing-schemas"])
        .arg(format!("--cache-dir={}", testbin().join("xpkg-cache").display()))
        .arg(format!("--crossplane-image=xpkg.crossplane.io/crossplane/crossplane:{}", version("CROSSPLANE_VERSION")))
        .arg(joined.join(","))
        .arg(resources));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

pub fn helm() -> PathBuf {
    tool("helm", "HELM_VERSION", "helm")
}

pub fn kustomize() -> PathBuf {
    tool("kustomize", "KUSTOMIZE_VERSION", "kustomize")
}

pub fn kubeconform_bin() -> PathBuf {
    tool("kubeconform", "KUBECONFORM_VERSION", "kubeconform")
}

/// The kubeconform arguments shared by [`kubeconform`] and [`kubeconform_text`]: strict, a summary, and only the
/// local schema locations `scripts/testbin.sh` generated (Kubernetes built-in kinds at `KUBERNETES_VERSION`, then
/// every fetched CRD set), so kubeconform never reaches for the network. A kind without a schema is an error.
fn kubeconform_command() -> Command {
    let schemas = testbin().join("schemas");
    let k8s_version = version("KUBERNETES_VERSION");
    let k8s_dir = schemas.join("kubernetes-json-schema").join(format!("{k8s_version}-standalone-strict"));
    assert!(k8s_dir.join(".done").is_file(), "Kubernetes schemas were not generated by scripts/testbin.sh");
    assert!(schemas.join("crds/.done").is_file(), "CRD schemas were not generated by scripts/testbin.sh");
    let mut cmd = Command::new(kubeconform_bin());
    cmd.args(["-strict", "-summary", "-output", "text"])
        .arg(format!("-kubernetes-version={}", k8s_version.trim_start_matches('v')))
        .arg(format!("-schema-location={}", schemas.join("kubernetes-json-schema").display()))
        .arg(format!(
            "-schema-location={}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json",
            schemas.join("crds").display()
        ));
    cmd
}

/// `kubeconform -strict -summary` over files or directories, offline against the cached schemas; fails on kinds
/// without a schema. Returns (success, combined output).
pub fn kubeconform<P: AsRef<Path>>(paths: &[P]) -> (bool, String) {
    assert!(!paths.is_empty(), "kubeconform needs at least one path");
    let mut cmd = kubeconform_command();
    cmd.args(paths.iter().map(|p| p.as_ref().as_os_str()));
    let out = run(&mut cmd);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// [`kubeconform`] over manifests given as text (fed on stdin, e.g. the output of `helm template`).
pub fn kubeconform_text(manifests: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = kubeconform_command()
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubeconform");
    child.stdin.take().expect("stdin").write_all(manifests.as_bytes()).expect("write manifests to kubeconform");
    let out = child.wait_with_output().expect("kubeconform");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Whether a rendered object's kind has a schema this machine can fetch. Two do not: the Harbor provider's
/// managed resources (its CRDs are not published as a Go module) and the Barman Cloud plugin's `ObjectStore`
/// (its module is not in the checksum database the Go proxy verifies against). Those are checked by the render
/// assertions of the tests instead.
pub fn has_upstream_schema(object: &Value) -> bool {
    let api_version = object["apiVersion"].as_str().unwrap_or("");
    !api_version.contains("harbor") && !api_version.starts_with("barmancloud.cnpg.io/")
}

/// The CRDs Crossplane derives from every XRD in xrds/, as a test control plane installs them when Crossplane
/// itself is not running (see `maxcloud_testenv::tools::catalog_crds`).
pub fn catalog_crds() -> Vec<Value> {
    maxcloud_testenv::tools::catalog_crds().unwrap_or_else(|e| panic!("{e}"))
}
