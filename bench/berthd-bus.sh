# bench/berthd-bus.sh: sourced by the benchmarks. start_berthd NAME BACKEND ROOT starts a private
# system-style dbus-daemon (deny by default + berth's policy file, as the system bus) and berthd
# on it, serving ROOT; sets A_<NAME> to the bus address. Needs $W, $top, $BERTHD and a `pids`
# array (the caller's cleanup kills them).
# berthd on its own private system-style bus per backend (deny by default + berth's policy file).
start_berthd() { # name backend root -> sets A_<name>
  local d=$W/bus-$1
  mkdir -p "$d"
  cat > "$d/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
  </policy>
  <include>$top/dbus/org.berth.Storage1.conf</include>
</busconfig>
EOF
  dbus-daemon --nofork --nopidfile --nosyslog --config-file="$d/bus.conf" 2>"$d/dbus.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$d/socket" ] && break; sleep 0.05; done
  local a=unix:path=$d/socket
  BERTH_DAEMON_CONFIG=$W/no-berthd.toml "$BERTHD" --root "$3" --backend "$2" --bus-address "$a" 2>"$d/berthd.log" &
  pids+=($!)
  for _ in $(seq 200); do busctl --address="$a" status org.berth.Storage1 >/dev/null 2>&1 && break; sleep 0.05; done
  busctl --address="$a" status org.berth.Storage1 >/dev/null || { cat "$d/berthd.log" >&2; exit 1; }
  printf -v "A_$1" %s "$a"
}
