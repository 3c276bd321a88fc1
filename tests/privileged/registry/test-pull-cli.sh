#!/bin/bash
# `berth image pull` end to end (issue #17): a real docker-registry on 127.0.0.1 (plain HTTP,
# declared insecure in a registries.toml under BERTH_REGISTRIES_PATH), a busybox image pushed by
# skopeo, pulled through berthd's PullImage job (a private berthd: BERTH_STORAGE=embedded), listed,
# and run with `berth run`. Then a registry that trickles a blob: Ctrl-C (SIGINT) cancels the job,
# and nothing is published, staging empty.
# Usage: test-pull-cli.sh BUILD_DIR BERTH_BINARY            (root; meson suite 'privileged')
set -euo pipefail
build=${1:?usage: test-pull-cli.sh BUILD_DIR BERTH_BINARY}
berth=${2:?usage: test-pull-cli.sh BUILD_DIR BERTH_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (run as root in CI)"; exit 77; }
for t in docker-registry skopeo python3; do
  command -v $t >/dev/null || { echo "FAIL: $t missing (scripts/install-deps.sh)"; exit 1; }
done
. "$here/registry-lib.sh"
setup_registry_test pull-cli

start_registry
skopeo copy -q --dest-tls-verify=false "oci:$images/oci:busybox" "docker://$host/test/bb:v1"

printf '[[registry]]\nprefix = "%s"\nlocation = "%s"\ninsecure = true\n' "$host" "$host" > "$tmp/reg/registries.toml"
if ! out=$("$berth" image pull "$host/test/bb:v1" 2>&1); then
  echo "$out"; echo "FAIL: berth image pull"; exit 1
fi
echo "$out"
grep -q "^pull progress: fraction=1.000" <<<"$out" || { echo "FAIL: no progress lines"; exit 1; }
id=$(sed -n 's/^Pulled \(sha256:[0-9a-f]*\) as .*/\1/p' <<<"$out")
[ -n "$id" ] || { echo "FAIL: no 'Pulled <id> as <name>' line"; exit 1; }
"$berth" image list | grep -q "$host/test/bb" || { "$berth" image list; echo "FAIL: not listed"; exit 1; }
json=$("$berth" image pull --json "$host/test/bb@$id")
grep -q "\"$id\"" <<<"$json" || { echo "$json"; echo "FAIL: by digest is not the same image"; exit 1; }

# Per-layer lines when stderr is not a terminal (BERTH_PROGRESS unset): "layered" is busybox plus
# a layer, so its base is present and the other one goes through its states, each on a line of
# its own, in order (berthd publishes a few times a second: quick states may be folded into the next).
skopeo copy -q --dest-tls-verify=false "oci:$images/oci:layered" "docker://$host/test/lay:v1"
if ! env -u BERTH_PROGRESS "$berth" image pull "$host/test/lay:v1" >"$tmp/lay.out" 2>"$tmp/lay.err"; then
  cat "$tmp/lay.out" "$tmp/lay.err"; echo "FAIL: berth image pull (layered)"; exit 1
fi
cat "$tmp/lay.err"
! grep -q $'\033' "$tmp/lay.err" || { echo "FAIL: escape codes on a non-terminal"; exit 1; }
grep -Eq '^layer sha256:[0-9a-f]{12} \([0-9.]+ [KMG]?i?B\): present$' "$tmp/lay.err" || { echo "FAIL: no 'present' line for the base layer"; exit 1; }
new=$(sed -n 's/^layer \(sha256:[0-9a-f]*\) (.*): done$/\1/p' "$tmp/lay.err")
[ "$(wc -l <<<"$new")" = 1 ] && [ -n "$new" ] || { echo "FAIL: expected one layer to end 'done', got: $new"; exit 1; }
states=$(sed -n "s/^layer $new (.*): //p" "$tmp/lay.err" | tr '\n' ' ')
python3 - "$states" <<'PY' || { echo "FAIL: layer states out of order: $states"; exit 1; }
import sys
order = ["waiting", "downloading", "verifying", "downloaded", "extracting", "done"]
seen = sys.argv[1].split()
idx = [order.index(s) for s in seen]
sys.exit(0 if idx == sorted(set(idx)) and seen[-1] == "done" else 1)
PY
grep -q "^Pulled sha256:" "$tmp/lay.out" || { echo "FAIL: no 'Pulled' line"; exit 1; }
# On a terminal (forced: BERTH_PROGRESS=tty) one line per layer is redrawn in place above the total.
skopeo copy -q --dest-tls-verify=false "oci:$images/oci:sibling" "docker://$host/test/sib:v1"
BERTH_PROGRESS=tty "$berth" image pull "$host/test/sib:v1" >/dev/null 2>"$tmp/sib.err" || { cat "$tmp/sib.err"; echo "FAIL: pull (tty)"; exit 1; }
grep -q $'\033\\[K' "$tmp/sib.err" || { echo "FAIL: no redraw on a terminal"; exit 1; }
grep -Eq $'^(\033\\[[0-9]+F)?\033\\[Ksha256:[0-9a-f]{12}  present ' "$tmp/sib.err" || { cat -v "$tmp/sib.err"; echo "FAIL: no line for the present layer"; exit 1; }
grep -Eq $'\033\\[Ksha256:[0-9a-f]{12}  done ' "$tmp/sib.err" || { cat -v "$tmp/sib.err"; echo "FAIL: no 'done' line for the new layer"; exit 1; }

"$berth" image tag "$host/test/bb:v1" "pulled-$$:1"
cat > "$tmp/decl/pulled-$$.toml" <<EOF
[container]
image = "pulled-$$:1"
command = ["sh", "-c", "cat /data/a; echo ran-pulled"]
EOF
if ! out=$(timeout 120 "$berth" run "$tmp/decl/pulled-$$.toml" 2>&1); then
  echo "$out"; echo "FAIL: berth run of the pulled image"; exit 1
fi
echo "$out"
grep -q '^ran-pulled$' <<<"$out" || { echo "FAIL: the pulled image did not run"; exit 1; }

# Errors name the reference: an unknown tag, a platform the image does not offer.
out=$("$berth" image pull "$host/test/bb:nope" 2>&1) && { echo "FAIL: an unknown tag pulled"; exit 1; }
echo "$out"
grep -q "pull '$host/test/bb:nope': manifest 'nope' not found" <<<"$out" || { echo "FAIL: unclear error"; exit 1; }
out=$("$berth" image pull --platform linux "$host/test/bb:v1" 2>&1) && { echo "FAIL: a bad platform pulled"; exit 1; }
grep -q "invalid platform 'linux'" <<<"$out" || { echo "$out"; echo "FAIL: unclear platform error"; exit 1; }

# Ctrl-C: a registry whose one layer trickles (python3, tests/privileged/registry/trickle-registry.py).
tport=$(free_port)
python3 "$here/trickle-registry.py" "$tport" "$tmp/trickle.log" &
pids+=($!)
wait_port "$tport" || { cat "$tmp/trickle.log"; echo "FAIL: trickle registry did not start"; exit 1; }
printf '[[registry]]\nprefix = "127.0.0.1:%s"\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$tport" "$tport" >> "$tmp/reg/registries.toml"
before=$("$berth" image list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
"$berth" image pull "127.0.0.1:$tport/slow/app:v1" >"$tmp/slow.out" 2>&1 &
pull=$!
pids+=($pull)
for _ in $(seq 100); do grep -q "blob started" "$tmp/trickle.log" 2>/dev/null && break; sleep 0.1; done
grep -q "blob started" "$tmp/trickle.log" || { cat "$tmp/slow.out" "$tmp/trickle.log"; echo "FAIL: the pull never reached the blob"; exit 1; }
kill -INT $pull
rc=0; timeout 30 tail --pid=$pull -f /dev/null || true; wait $pull || rc=$?
cat "$tmp/slow.out"
[ "$rc" = 130 ] || { echo "FAIL: Ctrl-C: exit status $rc, expected 130"; exit 1; }
grep -q "pull cancelled" "$tmp/slow.out" || { echo "FAIL: no 'pull cancelled'"; exit 1; }
# The job's Layers came over the bus while the layer was still arriving (its bytes counted; the
# importer follows a layer as it downloads, so its state may say "extracting" already).
grep -Eq "^pull layer: digest=sha256:abab[0-9a-f]* state=(downloading|extracting) done=[1-9]" "$tmp/slow.out" || { echo "FAIL: no per-layer progress while downloading"; exit 1; }
after=$("$berth" image list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$before" = "$after" ] || { echo "FAIL: a cancelled pull published an image"; exit 1; }
[ -z "$(ls -A "$BERTH_STORE_ROOT/staging")" ] || { ls -la "$BERTH_STORE_ROOT/staging"; echo "FAIL: staging left behind"; exit 1; }

# berthd.toml's pull_parallel_layers (issue #17): the number of layers one pull downloads at once.
# Two images, each busybox (present) and 3 layers of 256 KiB of random bytes (gzip cannot shrink
# them), served through throttle-proxy.py at 256 KiB/s per blob, which logs the blob bodies in
# flight: at 1 never more than one, at 3 more than one.
pport=$(free_port)
python3 "$here/throttle-proxy.py" "$pport" "$host" 262144 "$tmp/proxy.log" >"$tmp/proxy.out" 2>&1 &
pids+=($!)
wait_port "$pport" || { cat "$tmp/proxy.out"; echo "FAIL: throttle proxy did not start"; exit 1; }
printf '[[registry]]\nprefix = "127.0.0.1:%s"\nlocation = "127.0.0.1:%s"\ninsecure = true\n' "$pport" "$pport" >> "$tmp/reg/registries.toml"
cp -a "$images/oci" "$tmp/par-oci"
for n in 1 3; do
  from=busybox
  for i in 1 2 3; do
    mkdir -p "$tmp/par$n-$i/p$n-$i"
    head -c 262144 /dev/urandom > "$tmp/par$n-$i/p$n-$i/data"
    tar -C "$tmp/par$n-$i" -cf "$tmp/par$n-$i.tar" "p$n-$i"
    umoci raw add-layer --image "$tmp/par-oci:$from" --tag "par$n" "$tmp/par$n-$i.tar"
    from=par$n
  done
  skopeo copy -q --dest-tls-verify=false "oci:$tmp/par-oci:par$n" "docker://$host/test/par$n:v1"
done
max_in_flight() { sed -n 's/^blob started (\([0-9]*\) in flight)$/\1/p' "$tmp/proxy.log" | sort -n | tail -1; }
for n in 1 3; do
  printf '# a comment, then the key\n[store]\npull_parallel_layers = %s\n' "$n" > "$BERTH_DAEMON_CONFIG"
  : > "$tmp/proxy.log"
  if ! out=$("$berth" image pull "127.0.0.1:$pport/test/par$n:v1" 2>&1); then
    echo "$out"; echo "FAIL: pull with pull_parallel_layers = $n"; exit 1
  fi
  most=$(max_in_flight)
  echo "pull_parallel_layers = $n: at most $most blobs in flight"
  [ "$(grep -c 'GET /v2/test/par'"$n"'/blobs/' "$tmp/proxy.log")" = 4 ] || { cat "$tmp/proxy.log"; echo "FAIL: expected the config and 3 layers"; exit 1; }
  if [ "$n" = 1 ]; then [ "$most" = 1 ] || { cat "$tmp/proxy.log"; echo "FAIL: pull_parallel_layers = 1 had $most blobs in flight"; exit 1; }
  else [ "$most" -gt 1 ] || { cat "$tmp/proxy.log"; echo "FAIL: pull_parallel_layers = 3 had $most blob in flight"; exit 1; }
  fi
done
# A bad value is refused naming the file, line and column.
printf '[store]\npull_parallel_layers = 0\n' > "$BERTH_DAEMON_CONFIG"
out=$("$berth" image pull "$host/test/bb:v1" 2>&1) && { echo "$out"; echo "FAIL: pull_parallel_layers = 0 accepted"; exit 1; }
grep -q "$BERTH_DAEMON_CONFIG:2:24: 'pull_parallel_layers' must be a whole number from 1 to 16" <<<"$out" || { echo "$out"; echo "FAIL: unclear error for pull_parallel_layers = 0"; exit 1; }
rm -f "$BERTH_DAEMON_CONFIG"
echo "PASS"
