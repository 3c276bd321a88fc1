# Sourced by the registry CLI tests (test-pull-cli.sh, test-push-cli.sh): the test images, a
# scratch directory with a private berthd's store on a tmpfs (cleaned up on exit, with every
# process in `pids`), a free port, and a plain-HTTP docker-registry on 127.0.0.1. The caller sets
# `here`, `src` and `build`.

# setup_registry_test NAME: $images (built once), $tmp with decl/ and reg/ (registries.toml goes
# there), the store on $tmp/mnt, BERTH_* pointing at them.
setup_registry_test() {
  images="$build/test-images/store"
  bash "$src/tests/lib/make-test-images.sh" "$images" >&2
  tmp=$(mktemp -d "/tmp/berth-$1-$$-XXXXXX")
  pids=()
  trap registry_test_cleanup EXIT
  mkdir -p "$tmp/mnt" "$tmp/decl" "$tmp/reg"
  mount -t tmpfs -o size=1g,mode=0700 tmpfs "$tmp/mnt"
  export BERTH_STORAGE=embedded BERTH_STORE_ROOT="$tmp/mnt/store" BERTH_STATE_DIR="$tmp/mnt/state"
  export BERTH_DAEMON_CONFIG="$tmp/berthd.toml" BERTH_REGISTRIES_PATH="$tmp/reg" BERTH_PROGRESS=lines
  export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
}
registry_test_cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  umount -l "$tmp/mnt" 2>/dev/null || true
  rm -rf "$tmp"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 200); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
# Starts docker-registry and sets `host` (127.0.0.1:PORT); its log is $tmp/registry.log.
start_registry() {
  local port
  port=$(free_port)
  cat > "$tmp/registry.yml" <<EOT
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $tmp/registry-data
http:
  addr: 127.0.0.1:$port
EOT
  docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
  pids+=($!)
  wait_port "$port" || { cat "$tmp/registry.log"; echo "FAIL: docker-registry did not start"; exit 1; }
  host=127.0.0.1:$port
}
