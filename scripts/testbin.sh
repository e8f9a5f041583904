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

# build_in_module NAME VERSION MODULE BINARY: build the module's root package with the module itself as the main
# module. For modules the proxy serves under a path other than the one their go.mod declares (function-auto-ready
# moved from crossplane-contrib to crossplane), which `go get` refuses.
build_in_module() {
    local name=$1 version=$2 module=$3 binary=$4
    local dir="$TESTBIN/$name-$version"
    [ -x "$dir/$binary" ] && return 0
    local started=$SECONDS
    local scratch="$TESTBIN/.build/$name-$version"
    rm -rf "$scratch" && mkdir -p "$(dirname "$scratch")"
    cp -r "$(module_dir "$module" "$version")" "$scratch" && chmod -R u+w "$scratch"
    (cd "$scratch" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/$binary" .)
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
crds flux-source "$FLUX_SOURCE_CONTROLLER_VERSION" github.com/fluxcd/source-controller 'config/crd/bases/*.yaml'
crds flux-kustomize "$FLUX_KUSTOMIZE_CONTROLLER_VERSION" github.com/fluxcd/kustomize-controller 'config/crd/bases/*.yaml'
crds flux-helm "$FLUX_HELM_CONTROLLER_VERSION" github.com/fluxcd/helm-controller 'config/crd/bases/*.yaml'
crds flux-notification "$FLUX_NOTIFICATION_CONTROLLER_VERSION" github.com/fluxcd/notification-controller \
    'config/crd/bases/*.yaml'
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
log "ready in $((SECONDS - started))s: $TESTBIN"
echo "$TESTBIN"
