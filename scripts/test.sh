#!/usr/bin/env bash
# Run every test of the workspace on a fresh machine:
#   - installs the Debian packages the tests need when missing (git, OpenSSL headers, shellcheck, PostgreSQL 15),
#   - starts a throwaway PostgreSQL 15 on a free loopback port (the store suite runs on it and on SQLite),
#   - builds the pinned upstream tools the platform tests run (scripts/testbin.sh, cached in ~/.cache/maxcloud),
#   - builds the binaries the end-to-end tests run as processes (maxcloud-server, maxcloud),
#   - runs the Backstage plugins' suite (scripts/backstage.sh: Node 24, npm packages, type checks, builds, jest,
#     Playwright in Debian's chromium),
#   - runs `cargo test` over the workspace; extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v git >/dev/null 2>&1 || [ ! -x "$(git --exec-path 2>/dev/null)/git-http-backend" ]; then
    echo "test.sh: installing git" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq git
fi
# libgit2 speaks HTTPS to Git hosting providers through OpenSSL (git2's `https` feature).
if ! pkg-config --exists openssl 2>/dev/null; then
    echo "test.sh: installing libssl-dev and pkg-config" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config
fi
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "test.sh: installing shellcheck" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq shellcheck || { apt-get update -qq && apt-get install -y -qq shellcheck; }
fi

work=$(mktemp -d /tmp/maxcloud-test.XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
    scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

MAXCLOUD_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$work/pg" "$port")
export MAXCLOUD_TEST_POSTGRES_URL
echo "test.sh: PostgreSQL at $MAXCLOUD_TEST_POSTGRES_URL" >&2

# The pinned upstream tools of the platform tests (Crossplane core + CLI, composition functions, helm, kustomize,
# kubeconform, the test control plane, Flux, Gitea, the registry, Loki, upstream CRDs), built once from their Go
# modules into a cache outside the repo (a cold build takes minutes; Gitea alone ~3.5 min, Loki ~5 min on 2 cores).
MAXCLOUD_TESTBIN=$(scripts/testbin.sh)
export MAXCLOUD_TESTBIN

# A CI run builds everything once: incremental compilation data (tens of GB for the test binaries) would only
# cost disk and time there.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi
cargo build --workspace --bins --locked
# The Backstage plugins (TypeScript): their tests run against the maxcloud-server just built.
scripts/backstage.sh
cargo test --workspace --locked "$@"
