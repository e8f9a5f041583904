#!/usr/bin/env bash
# Bootstrap a max-cloud cluster: k3s on Hetzner Cloud, then Flux pointed at the platform repository.
#
#   deploy/bootstrap/hetzner-k3s.sh --env prod --admin-cidr 203.0.113.0/24 --ssh-key ops \
#       --repo-url ssh://git@git.example.de/platform/max-cloud.git [--control-planes 3 --workers 3]
#
# Creates (or reuses, by name) a private network + subnet, a firewall (22 and 6443 from --admin-cidr only, 80/443 from
# anywhere; node-to-node traffic stays on the private network, which the firewall does not filter), one spread
# placement group per location, the control-plane servers (1 or 3, embedded etcd) and the workers, spread over the
# locations round-robin. k3s is installed by cloud-init at the pinned version with traefik disabled (Knative brings
# Kourier), secrets encryption at rest, and the nodes talking over the private network. Then it waits for the API,
# writes the kubeconfig and runs `flux bootstrap git` with --path flux/clusters/<env>.
#
# --dry-run prints every command it would run (and the cloud-init it would pass) and changes nothing; it needs
# neither an hcloud token nor any of the tools. Without it: hcloud (with HCLOUD_TOKEN or an active context), ssh,
# flux, and, for an https --repo-url, the Git token in FLUX_GIT_TOKEN.
set -euo pipefail

# The k3s release; scripts/versions.env (K3S_VERSION) names the same one (a test checks).
K3S_VERSION_DEFAULT="v1.35.4+k3s1"

usage() {
    cat <<'EOF'
Usage: hetzner-k3s.sh --env ENV --admin-cidr CIDR --ssh-key NAME --repo-url URL [options]

Required:
  --env ENV               environment; Flux syncs flux/clusters/ENV of the platform repository (e.g. dev, prod)
  --admin-cidr CIDR       network allowed to reach SSH (22) and the Kubernetes API (6443), e.g. 203.0.113.0/24
  --ssh-key NAME          name of the SSH key in the Hetzner project, put on every server for root
  --repo-url URL          platform repository for `flux bootstrap git` (ssh://... or https://...)

Options:
  --name NAME             cluster name, prefix of every Hetzner resource (default: maxcloud-ENV)
  --location LOC[,LOC]    Hetzner locations, servers spread round-robin (default: fsn1,nbg1; one network zone)
  --control-planes N      control-plane servers: 1, or 3 for an HA etcd quorum (default: 1)
  --workers N             worker servers, 0-50 (default: 2; 0 = workloads run on the control planes)
  --server-type TYPE      Hetzner server type of every node (default: cpx31)
  --image IMAGE           server image (default: ubuntu-24.04)
  --network-cidr CIDR     private network; the nodes' subnet is its first /24 (default: 10.0.0.0/16)
  --branch BRANCH         branch of the platform repository Flux follows (default: main)
  --k3s-version VERSION   k3s release (default: K3S_VERSION_DEFAULT)
  --kubeconfig PATH       where to write the cluster's kubeconfig (default: ./kubeconfig-NAME)
  --dry-run               print every command instead of running it; needs no token and no tools
  -h, --help              this help
EOF
}

die() {
    echo "hetzner-k3s: $*" >&2
    exit 2
}

# --- flags -----------------------------------------------------------------------------------------------------------

env_name="" name="" locations="fsn1,nbg1" control_planes=1 workers=2 server_type="cpx31" image="ubuntu-24.04"
admin_cidr="" ssh_key="" repo_url="" branch="main" k3s_version="$K3S_VERSION_DEFAULT" kubeconfig=""
network_cidr="10.0.0.0/16" dry_run=false

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
    flag=$1
    case "$flag" in
    -h | --help)
        usage | sed "s/K3S_VERSION_DEFAULT/$K3S_VERSION_DEFAULT/"
        exit 0
        ;;
    --dry-run)
        dry_run=true
        shift
        continue
        ;;
    --*=*)
        set -- "${flag%%=*}" "${flag#*=}" "${@:2}"
        continue
        ;;
    --env | --name | --location | --control-planes | --workers | --server-type | --image | --admin-cidr | --ssh-key | \
        --repo-url | --branch | --k3s-version | --kubeconfig | --network-cidr)
        need_value "$flag" $#
        value=$2
        shift 2
        ;;
    *) die "unknown flag $flag (see --help)" ;;
    esac
    case "$flag" in
    --env) env_name=$value ;;
    --name) name=$value ;;
    --location) locations=$value ;;
    --control-planes) control_planes=$value ;;
    --workers) workers=$value ;;
    --server-type) server_type=$value ;;
    --image) image=$value ;;
    --admin-cidr) admin_cidr=$value ;;
    --ssh-key) ssh_key=$value ;;
    --repo-url) repo_url=$value ;;
    --branch) branch=$value ;;
    --k3s-version) k3s_version=$value ;;
    --kubeconfig) kubeconfig=$value ;;
    --network-cidr) network_cidr=$value ;;
    esac
done

# --- validation ------------------------------------------------------------------------------------------------------

is_ipv4_cidr() {
    local ip=${1%/*} bits=${1#*/} octet
    [[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$ ]] || return 1
    [ "$bits" -le 32 ] || return 1
    IFS=. read -r -a octets <<<"$ip"
    for octet in "${octets[@]}"; do
        [ "$((10#$octet))" -le 255 ] || return 1
    done
}

is_ipv6_cidr() {
    [[ $1 =~ ^[0-9a-fA-F:]*:[0-9a-fA-F:]*/[0-9]{1,3}$ ]] && [ "${1#*/}" -le 128 ]
}

[ -n "$env_name" ] || die "--env is required (e.g. --env prod; Flux syncs flux/clusters/<env>)"
[[ $env_name =~ ^[a-z][a-z0-9-]{0,19}$ ]] ||
    die "--env '$env_name' is invalid: lowercase letters, digits and '-', starting with a letter, at most 20 characters"
name=${name:-maxcloud-$env_name}
[[ $name =~ ^[a-z][a-z0-9-]{0,38}[a-z0-9]$ ]] ||
    die "--name '$name' is invalid: a DNS label of 2-40 lowercase letters, digits and '-'"
[ -n "$admin_cidr" ] || die "--admin-cidr is required: the network allowed to reach SSH and the Kubernetes API"
if ! is_ipv4_cidr "$admin_cidr" && ! is_ipv6_cidr "$admin_cidr"; then
    die "--admin-cidr '$admin_cidr' is not an IPv4 or IPv6 CIDR (e.g. 203.0.113.0/24)"
fi
case "$admin_cidr" in
0.0.0.0/0 | ::/0) die "--admin-cidr $admin_cidr would open SSH and the Kubernetes API to the whole internet" ;;
esac
[ -n "$ssh_key" ] || die "--ssh-key is required: the name of an SSH key in the Hetzner project"
[[ $ssh_key =~ ^[A-Za-z0-9@._-]{1,128}$ ]] || die "--ssh-key '$ssh_key' is not a Hetzner SSH key name"
[ -n "$repo_url" ] || die "--repo-url is required: the platform repository Flux bootstraps from"
[[ $repo_url =~ ^(ssh://[^[:space:]]+@[^[:space:]/]+/[^[:space:]]+|https://[^[:space:]/]+/[^[:space:]]+)$ ]] ||
    die "--repo-url '$repo_url' must be ssh://user@host/path or https://host/path"
[[ $control_planes =~ ^[0-9]+$ ]] || die "--control-planes '$control_planes' is not a number"
case "$control_planes" in
1 | 3) ;;
*) die "--control-planes must be 1 or 3 (an etcd quorum needs an odd number), got $control_planes" ;;
esac
if ! [[ $workers =~ ^[0-9]+$ ]] || [ "$workers" -gt 50 ]; then
    die "--workers '$workers' must be a number from 0 to 50"
fi
[[ $server_type =~ ^[a-z]+[0-9]+$ ]] || die "--server-type '$server_type' is not a Hetzner server type (e.g. cpx31)"
[[ $image =~ ^[a-z0-9][a-z0-9._-]*$ ]] || die "--image '$image' is not a Hetzner image name (e.g. ubuntu-24.04)"
[[ $branch =~ ^[A-Za-z0-9._/-]+$ ]] || die "--branch '$branch' is not a branch name"
[[ $k3s_version =~ ^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$ ]] ||
    die "--k3s-version '$k3s_version' is not a k3s release (e.g. $K3S_VERSION_DEFAULT)"
if ! is_ipv4_cidr "$network_cidr" || ! [[ $network_cidr =~ ^10\.[0-9]+\.0\.0/16$ ]]; then
    die "--network-cidr '$network_cidr' must be a 10.x.0.0/16 network"
fi
kubeconfig=${kubeconfig:-./kubeconfig-$name}

# every location of one network zone: the private network spans exactly one zone
zone=""
IFS=, read -r -a location_list <<<"$locations"
[ "${#location_list[@]}" -ge 1 ] || die "--location is empty"
for loc in "${location_list[@]}"; do
    case "$loc" in
    fsn1 | nbg1 | hel1) loc_zone=eu-central ;;
    ash) loc_zone=us-east ;;
    hil) loc_zone=us-west ;;
    sin) loc_zone=ap-southeast ;;
    *) die "--location '$loc' is not a Hetzner location (fsn1, nbg1, hel1, ash, hil, sin)" ;;
    esac
    [ -z "$zone" ] || [ "$zone" = "$loc_zone" ] ||
        die "--location $locations mixes network zones ($zone, $loc_zone): a private network spans one zone"
    zone=$loc_zone
done
subnet_cidr="${network_cidr%.0.0/16}.1.0/24"
subnet_prefix="${subnet_cidr%.0/24}" # 10.x.1
label="maxcloud.dev/cluster=$name"

# --- running -----------------------------------------------------------------------------------------------------------

log() { echo "hetzner-k3s: $*" >&2; }

# run CMD...: run it, or under --dry-run print it (shell-quoted, prefixed with '+'; <placeholders> left as they are).
run() {
    if $dry_run; then
        {
            printf '+'
            printf ' %q' "$@"
            printf '\n'
        } | sed 's/\\\([<>]\)/\1/g'
    else
        "$@"
    fi
}

# exists TYPE NAME: whether the Hetzner resource exists (never, under --dry-run: everything would be created).
exists() {
    ! $dry_run && hcloud "$1" describe "$2" >/dev/null 2>&1
}

if ! $dry_run; then
    for tool in hcloud ssh flux; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (needed without --dry-run)"
    done
    [ -n "${HCLOUD_TOKEN:-}" ] || [ -n "$(hcloud context active 2>/dev/null)" ] ||
        die "no Hetzner Cloud credentials: export HCLOUD_TOKEN or create an hcloud context"
    if [[ $repo_url == https://* ]] && [ -z "${FLUX_GIT_TOKEN:-}" ]; then
        die "--repo-url is https: export FLUX_GIT_TOKEN (a token with write access to the repository)"
    fi
fi

work=""
if ! $dry_run; then
    work=$(mktemp -d)
    chmod 700 "$work"
    trap 'rm -rf "$work"' EXIT
fi

# The join token of the cluster: generated once, kept only in the servers' user data and the first server's state.
if $dry_run; then
    k3s_token="<generated-token>"
else
    k3s_token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
fi

# cloud_init ROLE SERVER_URL: the user data of a node. ROLE: init (first control plane), server, agent.
cloud_init() {
    local role=$1 server_url=$2 exec_args
    local common="--node-ip=\$ip --flannel-iface=\$iface"
    case "$role" in
    init | server)
        exec_args="server $common --disable=traefik --secrets-encryption --write-kubeconfig-mode=0600"
        exec_args+=" --tls-san=\$public_ip --advertise-address=\$ip --kube-apiserver-arg=anonymous-auth=false"
        if [ "$workers" -gt 0 ]; then
            exec_args+=" --node-taint=CriticalAddonsOnly=true:NoExecute"
        fi
        if [ "$role" = init ]; then
            exec_args+=" --cluster-init"
        else
            exec_args+=" --server=$server_url"
        fi
        ;;
    agent) exec_args="agent $common --server=$server_url" ;;
    esac
    cat <<EOF
#cloud-config
package_update: true
packages: [curl, ca-certificates]
write_files:
  - path: /usr/local/sbin/maxcloud-k3s-install
    permissions: "0700"
    content: |
      #!/bin/sh
      set -eu
      # the private network's address (DHCP on the attached network) and interface
      for _ in \$(seq 60); do
        ip=\$(ip -4 -o addr show scope global | awk '\$4 ~ /^${subnet_prefix//./\\.}\\./ {sub("/.*", "", \$4); print \$4; exit}')
        [ -n "\$ip" ] && break
        sleep 2
      done
      [ -n "\$ip" ] || { echo "no address in ${subnet_cidr}" >&2; exit 1; }
      iface=\$(ip -4 -o addr show scope global | awk -v ip="\$ip" '\$4 ~ "^"ip"/" {print \$2; exit}')
      public_ip=\$(ip -4 -o route get 1.1.1.1 | awk '{for (i = 1; i < NF; i++) if (\$i == "src") print \$(i + 1)}')
      curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION='${k3s_version}' K3S_TOKEN='${k3s_token}' \\
        sh -s - ${exec_args}
runcmd:
  - [/usr/local/sbin/maxcloud-k3s-install]
EOF
}

# create_server NAME ROLE LOCATION SERVER_URL
create_server() {
    local server=$1 role=$2 location=$3 server_url=$4 user_data
    if exists server "$server"; then
        log "server $server exists, keeping it"
        return 0
    fi
    if $dry_run; then
        user_data="<user-data-$server.yaml>"
        echo "# cloud-init of $server ($role):"
        cloud_init "$role" "$server_url" | sed 's/^/#   /'
    else
        user_data="$work/user-data-$server.yaml"
        (umask 077 && cloud_init "$role" "$server_url" >"$user_data")
    fi
    local node_role=worker
    [ "$role" = agent ] || node_role=control-plane
    run hcloud server create --name "$server" --type "$server_type" --image "$image" --location "$location" \
        --ssh-key "$ssh_key" --network "$name" --firewall "$name" --placement-group "$name-$location" \
        --label "$label" --label "maxcloud.dev/role=$node_role" --user-data-from-file "$user_data"
}

# ip_of SERVER private|public
ip_of() {
    if $dry_run; then
        echo "<$1-$2-ip>"
    elif [ "$2" = private ]; then
        hcloud server describe "$1" -o format='{{ (index .PrivateNet 0).IP }}'
    else
        hcloud server ip "$1"
    fi
}

ssh_opts=(-o BatchMode=yes -o ConnectTimeout=10 -o StrictHostKeyChecking=accept-new
    -o "UserKnownHostsFile=${work:-/tmp}/known_hosts")

log "cluster $name (env $env_name): $control_planes control plane(s), $workers worker(s), $server_type in $locations"

# network, firewall, placement groups
if ! exists network "$name"; then
    run hcloud network create --name "$name" --ip-range "$network_cidr" --label "$label"
    run hcloud network add-subnet "$name" --type cloud --network-zone "$zone" --ip-range "$subnet_cidr"
fi
if ! exists firewall "$name"; then
    firewall_rules() {
        cat <<EOF
[
  {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["$admin_cidr"], "description": "ssh from admins"},
  {"direction": "in", "protocol": "tcp", "port": "6443", "source_ips": ["$admin_cidr"], "description": "kube-apiserver from admins"},
  {"direction": "in", "protocol": "tcp", "port": "80", "source_ips": ["0.0.0.0/0", "::/0"], "description": "http"},
  {"direction": "in", "protocol": "tcp", "port": "443", "source_ips": ["0.0.0.0/0", "::/0"], "description": "https"},
  {"direction": "in", "protocol": "icmp", "source_ips": ["0.0.0.0/0", "::/0"], "description": "ping, path MTU"}
]
EOF
    }
    if $dry_run; then
        echo "# firewall rules of $name:"
        firewall_rules | sed 's/^/#   /'
        rules_file="<rules-$name.json>"
    else
        rules_file="$work/rules.json"
        firewall_rules >"$rules_file"
    fi
    run hcloud firewall create --name "$name" --label "$label" --rules-file "$rules_file"
fi
for loc in "${location_list[@]}"; do
    exists placement-group "$name-$loc" ||
        run hcloud placement-group create --name "$name-$loc" --type spread --label "$label"
done

# servers: the first control plane initialises etcd, the others join it
location_at() { echo "${location_list[$(($1 % ${#location_list[@]}))]}"; }
create_server "$name-cp-1" init "$(location_at 0)" ""
cp1_ip=$(ip_of "$name-cp-1" private)
cp1_public=$(ip_of "$name-cp-1" public)
server_url="https://$cp1_ip:6443"
for i in $(seq 2 "$control_planes"); do
    create_server "$name-cp-$i" server "$(location_at $((i - 1)))" "$server_url"
done
for i in $(seq 1 "$workers"); do
    create_server "$name-worker-$i" agent "$(location_at $((i - 1)))" "$server_url"
done

# wait for the API, then fetch the kubeconfig (the API address becomes the first server's public address)
if $dry_run; then
    run ssh "${ssh_opts[@]}" "root@$cp1_public" "cloud-init status --wait >/dev/null && k3s kubectl get --raw /readyz"
else
    log "waiting for k3s on $name-cp-1 ($cp1_public)"
    for attempt in $(seq 90); do
        if ssh "${ssh_opts[@]}" "root@$cp1_public" "cloud-init status --wait >/dev/null && k3s kubectl get --raw /readyz" \
            >/dev/null 2>&1; then
            break
        fi
        [ "$attempt" -lt 90 ] || die "k3s on $name-cp-1 did not become ready in 15 minutes"
        sleep 10
    done
fi
if $dry_run; then
    run ssh "${ssh_opts[@]}" "root@$cp1_public" cat /etc/rancher/k3s/k3s.yaml
    echo "# ... with https://127.0.0.1:6443 replaced by https://$cp1_public:6443, written to $kubeconfig (mode 600)"
else
    (umask 077 && ssh "${ssh_opts[@]}" "root@$cp1_public" cat /etc/rancher/k3s/k3s.yaml |
        sed "s#https://127.0.0.1:6443#https://$cp1_public:6443#; s#: default\$#: $name#" >"$kubeconfig")
    log "kubeconfig written to $kubeconfig"
fi
expected_nodes=$((control_planes + workers))
run flux check --pre --kubeconfig "$kubeconfig"

# Flux: the cluster syncs flux/clusters/<env> of the platform repository from now on
flux_args=(bootstrap git --kubeconfig "$kubeconfig" --url "$repo_url" --branch "$branch"
    --path "flux/clusters/$env_name" --silent)
if [[ $repo_url == https://* ]]; then
    if $dry_run; then
        flux_args+=(--token-auth --username git --password "\$FLUX_GIT_TOKEN")
    else
        flux_args+=(--token-auth --username git --password "$FLUX_GIT_TOKEN")
    fi
fi
run flux "${flux_args[@]}"

log "done: $expected_nodes node(s); KUBECONFIG=$kubeconfig kubectl get nodes; flux get kustomizations"
