#!/bin/bash
# The GPU checks of issue #21, on a machine with an NVIDIA GPU (/dev/nvidia*), the driver under
# /usr/local/nvidia (bin, lib64), python3 + PyTorch + CUDA, pure cgroup v2, no systemd, no `ip`,
# and nothing reachable outside it. Self-contained: writes the CDI spec (no nvidia-ctk there),
# the declarations, runs the four checks and prints a table (docs/GPU.md keeps the last one).
#   1. nvidia-smi -L inside a container with devices = ["nvidia.com/gpu=all"] lists the GPU;
#   2. a CUDA matrix product in a container whose root is the machine's own root, read-only,
#      gives the host's checksum;
#   3. the same container without the device: CUDA sees no GPU, /dev/nvidia0 cannot be opened
#      or made (CAP_MKNOD given on purpose: the device cgroup refuses it);
#   4. [resources] enforced: memory_max = "256M" OOM-kills a 1 GiB allocation (memory.events),
#      tasks_max stops a fork loop (pids.events), cpu_quota = "50%" holds a busy loop near half
#      a CPU (cpu.stat).
# Usage (repository root, as root): tests/device/run-gpu-checks.sh [CARRY_DIR]
# CARRY_DIR: what tests/device/build-carry.sh made (default build-carry).
set -uo pipefail
carry=$(realpath "${1:-build-carry}")
berth=$carry/bin/berth
export LD_LIBRARY_PATH=$carry/lib BERTH_CDI_YAML_MODULE=$carry/lib/berth-cdi-yaml.so
work=$(mktemp -d /tmp/berth-gpu-XXXXXX)
export BERTH_CDI_SPEC_DIRS=$work/cdi BERTH_RUN_DIR=$work/run BERTH_STATE_DIR=$work/state
mkdir -p "$work/cdi" "$work/decl" "$work/out" && chmod 777 "$work/out"
results=()
row() { results+=("$1|$2|$3"); echo "== $1: $2 ($3)"; }
trap 'rm -rf "$work"' EXIT

echo "== machine"; uname -r; head -1 /etc/os-release; nproc; ls -l /dev/nvidia* 2>&1 | head -20
mount | grep cgroup2; cat /sys/fs/cgroup/cgroup.controllers
# Hand the controllers down to berth's own parent (the root cgroup may hold processes: allowed).
for c in cpu memory pids io; do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; done
cat /sys/fs/cgroup/cgroup.subtree_control

# --- the CDI spec: nvidia-ctk's shape, written by hand ---
nodes=""; devices=""
for n in /dev/nvidia[0-9]*; do
  i=${n#/dev/nvidia}
  devices+="${devices:+,}{\"name\":\"$i\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"$n\"}]}}"
done
for n in /dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-uvm-tools /dev/nvidia-modeset; do
  [ -e "$n" ] && nodes+="${nodes:+,}{\"path\":\"$n\"}"
done
cat > "$work/cdi/nvidia.json" <<JSON
{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu",
 "containerEdits":{"deviceNodes":[$nodes],
   "env":["PATH=/usr/local/nvidia/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "LD_LIBRARY_PATH=/usr/local/nvidia/lib64"],
   "mounts":[{"hostPath":"/usr/local/nvidia","containerPath":"/usr/local/nvidia","options":["ro","rbind","nosuid"]}]},
 "devices":[$devices]}
JSON
cat "$work/cdi/nvidia.json"

decl() {  # NAME DEVICES(toml array) CAPS(toml array) RESOURCES(toml lines) COMMAND(sh -c)
  cat > "$work/decl/$1.toml" <<TOML
[container]
rootfs = "/"
read_only = true
command = ["/bin/sh", "-c", $(printf '%s' "$5" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]
[[mount]]
source = "$work/out"
target = "/out"
[network]
mode = "none"
[security]
devices = $2
capabilities_add = $3
[resources]
$4
TOML
}
run() { timeout 300 "$berth" run "$work/decl/$1.toml" > "$work/out/$1.log" 2>&1; echo $? > "$work/out/$1.rc"; cat "$work/out/$1.log"; }

# 1. nvidia-smi -L
decl smi '["nvidia.com/gpu=all"]' '[]' '' 'nvidia-smi -L > /out/smi.txt 2>&1'
run smi; cat "$work/out/smi.txt"
grep -q 'GPU 0:' "$work/out/smi.txt" && row 1 pass "$(head -1 "$work/out/smi.txt")" || row 1 FAIL "rc=$(cat $work/out/smi.rc) $(head -c 300 $work/out/smi.txt $work/out/smi.log)"

# 2. CUDA matrix product, host vs container
py='import torch; torch.manual_seed(0); a=torch.randn(4096,4096,device="cuda",dtype=torch.float64); print(torch.cuda.get_device_name(0), "%.10e" % (a@a).sum().item())'
host=$(python3 -c "$py" 2>&1 | tail -1)
decl cuda '["nvidia.com/gpu=all"]' '[]' '' "python3 -c '$py' > /out/cuda.txt 2>&1"
run cuda; inside=$(tail -1 "$work/out/cuda.txt")
echo "host: $host"; echo "container: $inside"
[ -n "$host" ] && [ "$host" = "$inside" ] && row 2 pass "$inside" || row 2 FAIL "host '$host' container '$inside'"

# 3. without the device
decl nogpu '[]' '["CAP_MKNOD"]' '' \
  "python3 -c 'import torch; print(torch.cuda.is_available(), torch.cuda.device_count())' > /out/nogpu.txt 2>&1;
   (exec 3< /dev/nvidia0) 2>> /out/nogpu.txt; echo open=\$? >> /out/nogpu.txt;
   mknod /tmp/nv c 195 0 2>> /out/nogpu.txt; echo mknod=\$? >> /out/nogpu.txt"
run nogpu; cat "$work/out/nogpu.txt"
grep -q '^False 0' "$work/out/nogpu.txt" && grep -q 'open=[1-9]' "$work/out/nogpu.txt" && grep -q 'mknod=[1-9]' "$work/out/nogpu.txt" \
  && row 3 pass "$(tr '\n' ' ' < "$work/out/nogpu.txt" | head -c 200)" || row 3 FAIL "$(tr '\n' ' ' < "$work/out/nogpu.txt" | head -c 300)"

# 4. cgroup v2 limits
decl mem '[]' '[]' 'memory_max = "256M"' \
  "python3 -c 'b=bytearray(1<<30); print(len(b))' > /out/mem.txt 2>&1; echo rc=\$? >> /out/mem.txt; cat /sys/fs/cgroup/memory.events >> /out/mem.txt"
run mem; cat "$work/out/mem.txt"
grep -q '^oom_kill [1-9]' "$work/out/mem.txt" && row 4a pass "memory_max 256M: $(grep -E '^(rc|oom_kill)' $work/out/mem.txt | tr '\n' ' ')" || row 4a FAIL "$(tr '\n' ' ' < $work/out/mem.txt)"
decl pids '[]' '[]' 'tasks_max = 32' \
  "n=0; for i in \$(seq 100); do sleep 3 & n=\$((n+1)); done 2>/out/fork-err; wait; cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids.events > /out/pids.txt; grep -c . /out/fork-err >> /out/pids.txt"
run pids; cat "$work/out/pids.txt"
grep -q '^max [1-9]' "$work/out/pids.txt" && row 4b pass "tasks_max 32: $(tr '\n' ' ' < $work/out/pids.txt)" || row 4b FAIL "$(tr '\n' ' ' < $work/out/pids.txt)"
decl cpu '[]' '[]' 'cpu_quota = "50%"' \
  "timeout 5 sh -c 'while :; do :; done'; cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.stat > /out/cpu.txt"
run cpu; cat "$work/out/cpu.txt"
usage=$(awk '/^usage_usec/ {print $2}' "$work/out/cpu.txt")
share=$(python3 -c "print('%.2f' % (${usage:-0}/5e6))")
python3 -c "import sys; sys.exit(0 if 0.40 <= $share <= 0.60 else 1)" && row 4c pass "cpu_quota 50%: $share CPU over 5 s, $(grep nr_throttled $work/out/cpu.txt)" || row 4c FAIL "share $share: $(tr '\n' ' ' < $work/out/cpu.txt)"

echo; echo "| check | result | detail |"; echo "|---|---|---|"
for r in "${results[@]}"; do IFS='|' read -r a b c <<< "$r"; echo "| $a | $b | $c |"; done
! printf '%s\n' "${results[@]}" | grep -q '|FAIL|'
