# tap.sh — TAP output for the integration scenarios (meson protocol 'tap').
# t_ok DESC CMD...        passes when CMD exits 0 (its output goes to the log on failure)
# t_fails DESC CMD...     passes when CMD exits non-zero
# t_like DESC REGEX TEXT  passes when TEXT matches the extended REGEX
# t_unlike DESC REGEX TEXT
# t_eq DESC EXPECTED ACTUAL
# t_skip DESC REASON      a planned check that cannot run yet (says why)
# t_done                  prints the plan and returns non-zero when anything failed
T_N=0; T_FAILED=0
t_result() { # $1 0|1 $2 desc [$3 diagnostics]
  T_N=$((T_N + 1))
  if [ "$1" = 0 ]; then echo "ok $T_N - $2"
  else
    T_FAILED=$((T_FAILED + 1)); echo "not ok $T_N - $2"
    [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
  fi
  return "$1"
}
t_ok() { local d=$1; shift; local out; out=$("$@" 2>&1); t_result $? "$d" "$out"; }
t_fails() { local d=$1; shift; local out; out=$("$@" 2>&1) && { t_result 1 "$d" "unexpectedly succeeded: $out"; return 1; }; t_result 0 "$d"; }
t_like() { if [[ $3 =~ $2 ]]; then t_result 0 "$1"; else t_result 1 "$1" "expected /$2/ in:
$3"; fi; }
t_unlike() { if [[ $3 =~ $2 ]]; then t_result 1 "$1" "unexpected /$2/ in:
$3"; else t_result 0 "$1"; fi; }
t_eq() { if [ "$2" = "$3" ]; then t_result 0 "$1"; else t_result 1 "$1" "expected '$2', got '$3'"; fi; }
t_skip() { T_N=$((T_N + 1)); echo "ok $T_N - $1 # SKIP $2"; }
t_done() { echo "1..$T_N"; [ "$T_FAILED" = 0 ]; }
# t_wait SECONDS CMD...: retries CMD every 0.1s until it succeeds or time runs out.
t_wait() { local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  while ! "$@" >/dev/null 2>&1; do [ "$(date +%s%N)" -ge "$end" ] && return 1; sleep 0.1; done; }
