# Sourced by the registry CLI tests (test-pull-cli.sh, test-push-cli.sh): a free port, waiting for
# one, and a plain-HTTP docker-registry on 127.0.0.1 with its data under $tmp. The caller has
# `tmp` (a scratch directory) and a `pids` array that its EXIT trap kills.

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
