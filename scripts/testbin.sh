#!/usr/bin/env bash
# Build the pinned upstream tools the platform tests run, from their Go modules, into a cache outside the repo,
# and fetch the upstream CRDs the rendered resources are validated against.
#
#   scripts/testbin.sh            build what is missing, print the cache directory
#   scripts/testbin.sh --print    print the cache directory only
#
# Cache: ${MAXCLOUD_TESTBIN:-~/.cache/maxcloud/testbin}. Each tool lands in <tool>-<version>/, each CRD set in
# crds/<project>-<version>/; a finished entry is never rebuilt, so a warm run costs seconds.
#
# Every version is pinned in scripts/versions.env, which flux/ and deploy/ must agree with (a test checks that).
# Modules whose own go.mod carries replace directives (Crossplane core) are built as a dependency of a throwaway
# module, so `go` resolves their requirements from the module proxy exactly as `go install` would.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
. scripts/versions.env

TESTBIN=${MAXCLOUD_TESTBIN:-$HOME/.cache/maxcloud/testbin}
if [ "${1:-}" = "--print" ]; then
    echo "$TESTBIN"
    exit 0
fi
command -v go >/dev/null 2>&1 || { echo "testbin: the Go toolchain is required (go 1.26)" >&2; exit 1; }
mkdir -p "$TESTBIN"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

log() { echo "testbin: $*" >&2; }

# build NAME VERSION MODULE PACKAGE BINARY [MODULE@VERSION...]: the extra requirements stand in for the tool's own
# replace directives (which Go ignores outside the main module), pinned to the same tag.
build() {
    local name=$1 version=$2 module=$3 package=$4 binary=$5
    shift 5
    local dir="$TESTBIN/$name-$version"
    [ -x "$dir/$binary" ] && return 0
    local started=$SECONDS
    local scratch="$TESTBIN/.build/$name-$version"
    rm -rf "$scratch" && mkdir -p "$scratch"
    (
        cd "$scratch"
        go mod init "maxcloud.dev/testbin/$name" >/dev/null 2>&1
        go get "$module@$version" "$@" >/dev/null
        go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$binary" "$package"
    )
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$scratch"
    log "built $name $version in $((SECONDS - started))s"
}

# build_in_module NAME VERSION MODULE BINARY [--keep DIR]... [GO-BUILD-FLAG...]: build the module's root package
# with the module itself as the main module, so its own replace directives hold. For modules the proxy serves under
# a path other than the one their go.mod declares (function-auto-ready moved from crossplane-contrib to crossplane),
# which `go get` refuses, and for modules whose replaces cannot be restated as requirements (Gitea).
# Each --keep DIR of the module tree (runtime files the binary reads) is copied next to the binary. GO-BUILD-FLAGs
# replace the default `-ldflags "-s -w"`; the caller's environment applies (`CGO_ENABLED=1 build_in_module ...`).
build_in_module() {
    local name=$1 version=$2 module=$3 binary=$4
    shift 4
    local keep=()
    while [ "${1:-}" = "--keep" ]; do
        keep+=("$2")
        shift 2
    done
    [ $# -gt 0 ] || set -- -ldflags "-s -w"
    local dir="$TESTBIN/$name-$version"
    [ -x "$dir/$binary" ] && return 0
    local started=$SECONDS
    local scratch="$TESTBIN/.build/$name-$version"
    rm -rf "$scratch" "$dir.tmp" && mkdir -p "$(dirname "$scratch")"
    cp -r "$(module_dir "$module" "$version")" "$scratch" && chmod -R u+w "$scratch"
    (cd "$scratch" && go build -trimpath "$@" -o "$dir.tmp/$binary" .)
    local kept
    for kept in "${keep[@]}"; do cp -r "$scratch/$kept" "$dir.tmp/"; done
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$scratch"
    log "built $name $version in $((SECONDS - started))s"
}

# module_dir MODULE VERSION: download a module (read-only, into the Go module cache) and print its directory.
module_dir() {
    go mod download -json "$1@$2" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if "Dir" not in info:
    sys.exit("testbin: cannot download %s: %s" % (sys.argv[1], info.get("Error", "no directory")))
print(info["Dir"])' "$1@$2"
}

# crds NAME VERSION MODULE FILE...: copy upstream CRD files (paths relative to the module root, globs allowed).
crds() {
    local name=$1 version=$2 module=$3
    shift 3
    local dir="$TESTBIN/crds/$name-$version"
    [ -f "$dir/.done" ] && return 0
    local src
    src=$(module_dir "$module" "$version")
    rm -rf "$dir" && mkdir -p "$dir"
    local pattern file
    for pattern in "$@"; do
        # shellcheck disable=SC2086 # the pattern is a glob on purpose
        for file in $src/$pattern; do
            [ -f "$file" ] || { log "missing $file in $module@$version"; exit 1; }
            install -m 644 "$file" "$dir/"
        done
    done
    touch "$dir/.done"
    log "fetched CRDs of $name $version"
}

started=$SECONDS
build crossplane "$CROSSPLANE_VERSION" github.com/crossplane/crossplane/v2 \
    github.com/crossplane/crossplane/v2/cmd/crossplane crossplane \
    "github.com/crossplane/crossplane/apis/v2@$CROSSPLANE_VERSION"
build crossplane-cli "$CROSSPLANE_CLI_VERSION" github.com/crossplane/cli/v2 \
    github.com/crossplane/cli/v2/cmd/crossplane crossplane
build function-go-templating "$FUNCTION_GO_TEMPLATING_VERSION" github.com/crossplane-contrib/function-go-templating \
    github.com/crossplane-contrib/function-go-templating function
build_in_module function-auto-ready "$FUNCTION_AUTO_READY_VERSION" github.com/crossplane-contrib/function-auto-ready \
    function
build helm "$HELM_VERSION" helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm helm
build kustomize "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 sigs.k8s.io/kustomize/kustomize/v5 kustomize

crds crossplane "$CROSSPLANE_VERSION" github.com/crossplane/crossplane/v2 'cluster/crds/*.yaml'
crds knative-serving "$KNATIVE_SERVING_VERSION" knative.dev/serving 'config/core/300-resources/*.yaml'
crds cloudnative-pg "$CNPG_VERSION" github.com/cloudnative-pg/cloudnative-pg 'config/crd/bases/*.yaml'
crds external-dns "$EXTERNAL_DNS_VERSION" sigs.k8s.io/external-dns 'config/crd/standard/*.yaml'
# input schema of the go-templating function (validates the compositions' pipeline inputs)
crds function-go-templating "$FUNCTION_GO_TEMPLATING_VERSION" github.com/crossplane-contrib/function-go-templating \
    'package/input/*.yaml'
crds flux-source "$FLUX_SOURCE_CONTROLLER_VERSION" github.com/fluxcd/source-controller 'config/crd/bases/*.yaml'
crds flux-kustomize "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" github.com/fluxcd/kustomize-controller 'config/crd/bases/*.yaml'
crds flux-helm "$FLUX_HELM_CONTROLLER_VERSION" github.com/fluxcd/helm-controller 'config/crd/bases/*.yaml'
crds flux-notification "$FLUX_NOTIFICATION_CONTROLLER_VERSION" github.com/fluxcd/notification-controller \
    'config/crd/bases/*.yaml'
# build_kubernetes VERSION STAGING_VERSION BINARY...: Kubernetes components from k8s.io/kubernetes. Its go.mod
# replaces every k8s.io staging module with ./staging/src/...; as a dependency those replaces are ignored, so the
# throwaway module points each of them at the published staging module of the same release (v0.x.y).
build_kubernetes() {
    local version=$1 staging=$2
    shift 2
    local dir="$TESTBIN/kubernetes-$version" binary missing=
    for binary in "$@"; do [ -x "$dir/$binary" ] || missing=1; done
    [ -z "$missing" ] && return 0
    local started=$SECONDS
    local scratch="$TESTBIN/.build/kubernetes-$version"
    rm -rf "$scratch" && mkdir -p "$scratch"
    local src
    src=$(module_dir k8s.io/kubernetes "$version")
    (
        cd "$scratch"
        go mod init maxcloud.dev/testbin/kubernetes >/dev/null 2>&1
        local module
        awk '$2 == "=>" && $3 ~ /^\.\/staging\// {print $1}' "$src/go.mod" | while read -r module; do
            go mod edit -replace "$module=$module@$staging"
        done
        go get "k8s.io/kubernetes@$version" >/dev/null
        for binary in "$@"; do
            go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$binary" "k8s.io/kubernetes/cmd/$binary"
        done
    )
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$scratch"
    log "built kubernetes $version ($*) in $((SECONDS - started))s"
}

# The test control plane (crates/testenv): etcd and the Kubernetes control-plane components.
build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 etcd
build_kubernetes "$KUBERNETES_VERSION" "v0.${KUBERNETES_VERSION#v1.}" kube-apiserver kube-controller-manager

# build_flux NAME VERSION MODULE BINARY [MODULE@VERSION...]: a Flux controller (GitOps Toolkit), built with its own
# module as the main module so its other replace directives (go-digest, kustomize) hold; its `<module>/api => ./api`
# replace points at a nested module the module zip leaves out, so it is dropped and the published api module of the
# same tag required. The extra MODULE@VERSION pins replace requirements the module proxy refuses to serve.
build_flux() {
    local name=$1 version=$2 module=$3 binary=$4
    shift 4
    local dir="$TESTBIN/$name-$version"
    [ -x "$dir/$binary" ] && return 0
    local started=$SECONDS
    local scratch="$TESTBIN/.build/$name-$version"
    rm -rf "$scratch" && mkdir -p "$(dirname "$scratch")"
    cp -r "$(module_dir "$module" "$version")" "$scratch" && chmod -R u+w "$scratch"
    (
        cd "$scratch"
        go mod edit -dropreplace "$module/api" -require "$module/api@$version"
        local pin
        for pin in "$@"; do go mod edit -require "$pin"; done
        go mod download "$module/api@$version"
        go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$binary" .
    )
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$scratch"
    log "built $name $version in $((SECONDS - started))s"
}

# Flux, run as processes against the test control plane (crates/testenv/src/flux.rs).
# source-controller v1.9.5 requires github.com/fluxcd/pkg/artifact v0.18.3, which proxy.golang.org refuses ("not
# available"); v0.18.1, the newest it serves, builds with it (a main-module requirement, so MVS keeps it).
build_flux flux-source-controller "$FLUX_SOURCE_CONTROLLER_VERSION" github.com/fluxcd/source-controller \
    source-controller github.com/fluxcd/pkg/artifact@v0.18.1
build_flux flux-kustomize-controller "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" github.com/fluxcd/kustomize-controller \
    kustomize-controller
build_flux flux-notification-controller "$FLUX_NOTIFICATION_CONTROLLER_VERSION" \
    github.com/fluxcd/notification-controller notification-controller

# `crossplane resource validate` loads Crossplane's own schemas from its package cache (it would pull the
# crossplane image otherwise): seed that cache with the CRDs of the pinned core, keyed as the CLI keys images.
xpkg="$TESTBIN/xpkg-cache/xpkg.crossplane.io/crossplane/crossplane@$CROSSPLANE_VERSION"
if [ ! -f "$xpkg/package.yaml" ]; then
    mkdir -p "$xpkg"
    for file in "$TESTBIN/crds/crossplane-$CROSSPLANE_VERSION"/*.yaml; do
        echo "---"
        cat "$file"
    done >"$xpkg/package.yaml"
fi
# kubeconform validates Kubernetes-native manifests (the Helm chart under deploy/, flux/) against JSON schemas that
# live only in this cache: it is always given local -schema-location templates and never touches the network.
build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform \
    github.com/yannh/kubeconform/cmd/kubeconform kubeconform

# Gitea, the Git hosting provider of the provider tests (crates/testenv/src/gitea.rs): its go.mod carries replace
# directives `go install` refuses, so it is built as the main module; cgo for its SQLite driver (the other tools
# build without cgo). It reads options/ (locales, licences, ...) and templates/ at run time: copied next to the
# binary, the entry is its STATIC_ROOT_PATH. The module has no built frontend (JS/CSS): the API, Git over HTTP and
# webhooks do not need it.
gitea_tags="sqlite sqlite_unlock_notify"
CGO_ENABLED=1 build_in_module gitea "$GITEA_VERSION" code.gitea.io/gitea gitea --keep options --keep templates \
    -tags "$gitea_tags" -ldflags "-s -w -X \"main.Version=${GITEA_VERSION#v}\" -X \"main.Tags=$gitea_tags\""

# The CNCF Distribution registry (crates/testenv/src/registry.rs): token auth against the order service's
# /api/v1/registry/token, filesystem storage. Plain `go get` + build, no replace directives (80–150 s cold on the
# 2-core VM, empty Go caches).
build registry "$DISTRIBUTION_VERSION" github.com/distribution/distribution/v3 \
    github.com/distribution/distribution/v3/cmd/registry registry

# Grafana Loki, single binary (crates/testenv/src/loki.rs): the log store behind `maxcloud-server --loki-url`. Its
# go.mod carries replace directives `go install` refuses, so it is built as the main module; its
# `github.com/grafana/loki/pkg/push => ./pkg/push` replace points at a nested module the module zip leaves out, so it
# is dropped and the pkg/push version the go.mod requires is taken from the proxy. Heavy: ~9 CPU-minutes cold
# (11–13 min wall on the shared 2-core VM under load), a 150 MB binary.
build_loki() {
    local version=$1
    local dir="$TESTBIN/loki-$version"
    [ -x "$dir/loki" ] && return 0
    local started=$SECONDS
    local scratch="$TESTBIN/.build/loki-$version"
    rm -rf "$scratch" "$dir.tmp" && mkdir -p "$(dirname "$scratch")"
    cp -r "$(module_dir github.com/grafana/loki/v3 "$version")" "$scratch" && chmod -R u+w "$scratch"
    (
        cd "$scratch"
        go mod edit -dropreplace github.com/grafana/loki/pkg/push
        go build -trimpath -tags netgo -o "$dir.tmp/loki" \
            -ldflags "-s -w -X github.com/grafana/loki/v3/pkg/util/build.Version=${version#v}" ./cmd/loki
    )
    rm -rf "$dir" && mv "$dir.tmp" "$dir" && rm -rf "$scratch"
    log "built loki $version in $((SECONDS - started))s"
}
build_loki "$LOKI_VERSION"

# PyYAML for the converters below (Debian's python3 may lack it).
if ! python3 -c 'import yaml' 2>/dev/null; then
    log "installing python3-yaml"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml >/dev/null; }
fi

# Schemas of the built-in kinds at the pinned Kubernetes version, from the OpenAPI v3 documents the kube-apiserver
# serves (api/openapi-spec/v3 of k8s.io/kubernetes), in kubeconform's default layout:
#   schemas/kubernetes-json-schema/v<ver>-standalone-strict/<kind>[-<group>]-<version>.json
# standalone (every $ref inlined) and strict (additionalProperties: false wherever properties are listed, kind and
# apiVersion fixed by enum), as yannh/kubernetes-json-schema publishes them.
k8s_schemas() {
    local version=$1
    local dir="$TESTBIN/schemas/kubernetes-json-schema/$version-standalone-strict"
    [ -f "$dir/.done" ] && return 0
    local started=$SECONDS src
    src=$(module_dir k8s.io/kubernetes "$version")/api/openapi-spec/v3
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    python3 - "$src" "$dir.tmp" <<'PY'
import copy, glob, json, os, sys

src, out = sys.argv[1], sys.argv[2]
schemas = {}
for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    with open(path) as f:
        schemas.update(json.load(f).get("components", {}).get("schemas", {}))

PREFIX = "#/components/schemas/"

def expand(node, stack):
    if isinstance(node, list):
        return [expand(x, stack) for x in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    # {allOf: [{$ref}], default, description} -> the referenced schema with the siblings kept
    if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1 and set(node["allOf"][0]) == {"$ref"}:
        ref = node.pop("allOf")[0]
        node = dict(node, **ref)
    if isinstance(node.get("$ref"), str):  # (a property named "$ref" is a dict)
        name = node.pop("$ref")[len(PREFIX):]
        if name in stack:  # recursive type (JSONSchemaProps): accept anything below this point
            return {k: v for k, v in node.items() if k == "description"}
        target = expand(schemas[name], stack | {name})
        merged = dict(target)
        merged.update({k: v for k, v in node.items() if k == "description"})
        return merged
    node = {k: expand(v, stack) for k, v in node.items()}
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        node["additionalProperties"] = False
    return node

count = 0
for name, schema in sorted(schemas.items()):
    for gvk in schema.get("x-kubernetes-group-version-kind", []):
        group, version, kind = gvk["group"], gvk["version"], gvk["kind"]
        api_version = f"{group}/{version}" if group else version
        doc = expand(schema, {name})
        props = doc.get("properties", {})
        if "kind" not in props or "apiVersion" not in props:
            continue  # not a top-level object
        props["kind"] = dict(props["kind"], enum=[kind])
        props["apiVersion"] = dict(props["apiVersion"], enum=[api_version])
        doc["$schema"] = "http://json-schema.org/schema#"
        suffix = (f"-{group.split('.')[0]}" if group else "") + f"-{version}"
        with open(os.path.join(out, f"{kind.lower()}{suffix}.json"), "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
        count += 1
if count < 100:
    sys.exit(f"testbin: only {count} Kubernetes schemas found in {src}")
PY
    touch "$dir.tmp/.done"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    log "converted Kubernetes $version schemas in $((SECONDS - started))s"
}
k8s_schemas "$KUBERNETES_VERSION"

# The chart's optional ServiceMonitor (and PodMonitor, PrometheusRule) are validated against prometheus-operator's CRDs.
crds prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator \
    'example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml' \
    'example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml' \
    'example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml'

# Schemas of every fetched CRD set (Flux, Crossplane, Knative, CNPG, external-dns, ...), converted by kubeconform's
# own scripts/openapi2jsonschema.py (strict: the root too), laid out as schemas/crds/<group>/<kind>_<version>.json
# (kubeconform: -schema-location '<dir>/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json').
# Rebuilt whenever the set of fetched CRD directories changes; sets are converted oldest version first, so if a
# stale version of a project is still cached, the pinned newer one wins.
crd_schemas() {
    local dir="$TESTBIN/schemas/crds" converter sets
    converter=$(module_dir github.com/yannh/kubeconform "$KUBECONFORM_VERSION")/scripts/openapi2jsonschema.py
    sets=$(cd "$TESTBIN/crds" && for set in */; do [ -f "$set.done" ] && echo "${set%/}"; done | sort -V)
    # the marker names the converted sets and the layout (bump it when the conversion below changes)
    local stamp="layout 2 $KUBECONFORM_VERSION"$'\n'"$sets"
    [ -f "$dir/.done" ] && [ "$(cat "$dir/.done")" = "$stamp" ] && return 0
    local started=$SECONDS set file
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp/.work"
    for set in $sets; do
        (cd "$dir.tmp/.work" && DENY_ROOT_ADDITIONAL_PROPERTIES=1 FILENAME_FORMAT='{fullgroup}@{kind}_{version}' \
            python3 "$converter" "$TESTBIN/crds/$set"/*.yaml >/dev/null)
    done
    # the converter closes every object with properties; one that keeps unknown fields
    # (x-kubernetes-preserve-unknown-fields, e.g. a Knative Service's template metadata) must stay open
    python3 - "$dir.tmp/.work" <<'PY'
import glob, json, os, sys

def reopen(node):
    if isinstance(node, dict):
        if node.get("x-kubernetes-preserve-unknown-fields") is True and node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for value in node.values():
            reopen(value)
    elif isinstance(node, list):
        for value in node:
            reopen(value)

for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    with open(path) as f:
        schema = json.load(f)
    reopen(schema)
    with open(path, "w") as f:
        json.dump(schema, f, indent=2)
PY
    for file in "$dir.tmp/.work"/*@*.json; do
        local base=${file##*/}
        mkdir -p "$dir.tmp/${base%%@*}"
        mv "$file" "$dir.tmp/${base%%@*}/${base#*@}"
    done
    rmdir "$dir.tmp/.work"
    echo "$stamp" >"$dir.tmp/.done"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    log "converted CRD schemas of $(echo "$sets" | wc -w) projects in $((SECONDS - started))s"
}
crd_schemas
log "ready in $((SECONDS - started))s: $TESTBIN"
echo "$TESTBIN"
