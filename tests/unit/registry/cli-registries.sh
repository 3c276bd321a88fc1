#!/bin/bash
# berth registries / login / logout through the real binary, in a temporary directory
# (BERTH_REGISTRIES_PATH points the search path there; nothing global is touched).
# Usage: cli-registries.sh BERTH
set -euo pipefail
berth=$1
tmp=$(mktemp -d /tmp/berth-cli-registries-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BERTH_REGISTRIES_PATH=$tmp/etc:$tmp/lib
mkdir -p "$tmp/etc/registries.toml.d" "$tmp/lib"
fails=0
check() {  # check DESCRIPTION EXPECTED-STATUS PATTERN -- COMMAND...
  local what=$1 want=$2 pattern=$3; shift 4
  local out status=0
  out=$("$@" 2>&1) || status=$?
  if [ "$status" != "$want" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $what: status $status (want $want), output:"; echo "$out"; echo "(wanted /$pattern/)"
    fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}

check "no file: the defaults" 0 "default registry: docker.io" -- "$berth" registries
cat >"$tmp/etc/registries.toml" <<EOT
auth_file = "$tmp/auth.json"
[[registry]]
prefix = "localhost:5000"
insecure = true
EOT
printf '[[registry]]\nprefix = "docker.io"\nmirorr = 1\n' >"$tmp/etc/registries.toml.d/50-typo.toml"
check "a typo in a drop-in: file:line:col and a hint" 1 \
  "berth registries: $tmp/etc/registries.toml.d/50-typo.toml:3:1: unknown key 'mirorr' in \[\[registry\]\], expected a known key; did you mean 'mirror'\?" \
  -- "$berth" registries
printf '[[registry]]\nprefix = "docker.io"\n[[registry.mirror]]\nlocation = "mirror.local/hub"\n' \
  >"$tmp/etc/registries.toml.d/50-typo.toml"
check "the table" 0 "localhost:5000 +localhost:5000 +http" -- "$berth" registries
check "a short name resolved, mirror first" 0 \
  "docker.io/library/nginx:latest.*https://mirror.local/hub/library/nginx \(mirror\).*https://registry-1.docker.io/library/nginx" \
  -- bash -c "'$berth' registries nginx | tr '\n' ' '"
check "an insecure registry" 0 "http://localhost:5000/app" -- "$berth" registries localhost:5000/app:v1
check "a bad reference" 1 "repository name must be lowercase" -- "$berth" registries Nginx

check "login from stdin" 0 "Credentials for 'localhost:5000' stored in $tmp/auth.json \(checked at the next pull\)" \
  -- bash -c "printf 'pa:ss\n' | '$berth' login -u alice --password-stdin localhost:5000"
check "the auth file is 0600" 0 "^600$" -- stat -c %a "$tmp/auth.json"
check "podman's format" 0 '"localhost:5000": \{"auth": "YWxpY2U6cGE6c3M="\}' -- \
  bash -c "tr -d '\n\t' <'$tmp/auth.json' | sed 's/\":{/\": {/g; s/\":\"/\": \"/g'"
check "login needs a user name with --password-stdin" 1 "username is needed" \
  -- bash -c "printf 'pw\n' | '$berth' login --password-stdin quay.io"
check "login refuses a non-registry" 1 "is not a registry" \
  -- bash -c "printf 'pw\n' | '$berth' login -u a --password-stdin https://quay.io"
check "login without a terminal or --password-stdin" 1 "stdin is not a terminal" \
  -- bash -c "'$berth' login -u a quay.io </dev/null"
check "login to docker hub into another file" 0 "stored in $tmp/other.json" \
  -- bash -c "printf 'pw' | '$berth' login -u bob --password-stdin --authfile '$tmp/other.json' index.docker.io"
check "index.docker.io is stored as docker.io" 0 '"docker.io"' -- cat "$tmp/other.json"
chmod 644 "$tmp/auth.json"
check "an auth file others can read is refused" 1 "open to group or others.*chmod 600" \
  -- bash -c "printf 'pw' | '$berth' login -u a --password-stdin quay.io"
chmod 600 "$tmp/auth.json"
check "logout" 0 "Removed the credentials for 'localhost:5000'" -- "$berth" logout localhost:5000
check "logout again" 1 "not logged in to 'localhost:5000'" -- "$berth" logout localhost:5000
check "logout --all" 0 "Removed the credentials of 1 registry" -- "$berth" logout --all --authfile "$tmp/other.json"
check "logout needs one of REGISTRY and --all" 1 "give a REGISTRY or --all" -- "$berth" logout
check "login's help says the credentials are not checked now" 0 "checked at the next pull" -- "$berth" login --help

# A declaration's reference changed: plan says what changed before the diff, and the unit of a
# remote image waits for the network.
export BERTH_CONTAINERS_PATH=$tmp/containers
mkdir -p "$tmp/containers"
printf '[container]\nimage = "nginx:1.25"\nephemeral = true\n' >"$tmp/containers/web.toml"
check "generate" 0 "" -- "$berth" generate --output "$tmp/gen" --bindir /usr/bin
printf '[container]\nimage = "docker.io/library/nginx:1.27"\npull = "newer"\nephemeral = true\n' \
  >"$tmp/containers/web.toml"
check "plan names the changed reference" 2 \
  "container web: image 'nginx:1.25' -> 'docker.io/library/nginx:1.27'; pull \"missing\" -> \"newer\"" \
  -- "$berth" plan --output "$tmp/gen" --bindir /usr/bin
check "plan's diff adds the network wait" 2 "^\+Wants=network-online.target" \
  -- "$berth" plan --output "$tmp/gen" --bindir /usr/bin
printf '[container]\nimage = "docker.io/library/Nginx"\n' >"$tmp/containers/web.toml"
check "validate: a bad reference at file:line:col" 1 "web.toml:2:9: container.image = 'docker.io/library/Nginx' is not a valid image reference" \
  -- "$berth" validate web

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
