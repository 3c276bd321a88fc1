# Declared networks under a real systemd 252 (issue #20): two networks, two containers, web on both.
#   - the generated units order the containers after berth-network@NAME.service and require it;
#     starting a container starts the network (bridge, nft table, dnsmasq);
#   - the two containers resolve each other by name, hostname and alias through the network's
#     dnsmasq, and connect;
#   - a changed network declaration shows in `berth plan` until the daemon-reload;
#   - web, on netpart and netpart2, requires both units and has its own resolver (127.0.0.11) in
#     its unit's cgroup;
#   - stopping the network unit stops its containers and leaves no bridge, dnsmasq or table.
# A part of test-features.sh (sourced on its booted systemd; see there).

t_ok "berth image import" it_in berth image import "$image_tar" --name busybox:networks
it_in sh -c 'mkdir -p /etc/berth/networks && printf "[network]\nsubnets = [\"10.89.61.0/24\"]\n" > /etc/berth/networks/netpart.toml'
it_in sh -c 'printf "[network]\nsubnets = [\"10.89.62.0/24\"]\n" > /etc/berth/networks/netpart2.toml'
it_declare_container netpart-db <<'EOF'
[container]
image = "busybox:networks"
ephemeral = true
hostname = "db"
command = ["sh", "-c", "trap 'exit 0' TERM; nc -ll -p 5432 -e echo db-served & wait"]
[network]
networks = [{ name = "netpart", aliases = ["database"] }]
[install]
wanted_by = []
EOF
it_declare_container netpart-web <<'EOF'
[container]
image = "busybox:networks"
ephemeral = true
command = ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]
[network]
networks = ["netpart", "netpart2"]
[install]
wanted_by = []
EOF
t_ok "systemctl daemon-reload" it_in systemctl daemon-reload
t_like "netpart-db requires its network's unit" 'berth-network@netpart.service' "$(it_unit_prop netpart-db Requires)"
t_like "netpart-db starts after its network's unit" 'berth-network@netpart.service' "$(it_unit_prop netpart-db After)"
t_ok "netpart-db and netpart-web start" it_in systemctl start berth@netpart-db.service berth@netpart-web.service
t_eq "the network's unit is active" active "$(it_in systemctl show -P ActiveState berth-network@netpart.service)"
t_ok "the network's dnsmasq runs in its unit" \
  it_in sh -c 'cg=$(systemctl show -P ControlGroup berth-network@netpart.service); grep -qx "$(cat /run/berth/networks/netpart/dnsmasq.pid)" "/sys/fs/cgroup$cg/cgroup.procs"' 
t_like "web resolves db by its hostname" 'Address: 10\.89\.61\.' "$(it_in berth exec --no-stdin netpart-web -- nslookup db 2>&1)"
t_like "web resolves db by its alias" 'Address: 10\.89\.61\.' "$(it_in berth exec --no-stdin netpart-web -- nslookup database 2>&1)"
t_like "db resolves web by its container name" 'Address: 10\.89\.61\.' "$(it_in berth exec --no-stdin netpart-db -- nslookup netpart-web 2>&1)"
t_eq "web connects to db by name" db-served "$(it_in berth exec --no-stdin netpart-web -- sh -c 'echo | nc -w 3 db 5432' 2>&1)"
t_like "web, on two networks, requires the second network's unit too" 'berth-network@netpart2.service' "$(it_unit_prop netpart-web Requires)"
t_eq "web asks its own resolver" "nameserver 127.0.0.11" "$(it_in berth exec --no-stdin netpart-web -- head -n1 /etc/resolv.conf 2>&1)"
t_ok "web's resolver runs in web's unit" \
  it_in sh -c 'cg=$(systemctl show -P ControlGroup berth@netpart-web.service); grep -qx "$(cat /run/berth/resolvers/netpart-web.pid)" "/sys/fs/cgroup$cg/cgroup.procs" || grep -rqx "$(cat /run/berth/resolvers/netpart-web.pid)" --include=cgroup.procs "/sys/fs/cgroup$cg"'
t_like "web has an address on netpart2 (eth1)" 'inet 10\.89\.62\.' "$(it_in berth exec --no-stdin netpart-web -- ip -4 addr show eth1 2>&1)"

it_in sh -c 'printf "mtu = 1400\n" >> /etc/berth/networks/netpart.toml'
t_like "berth plan shows the changed network declaration" 'netpart\.network' "$(it_in berth plan 2>&1)"
t_like "... with its change" '\+mtu = 1400' "$(it_in berth plan 2>&1)"
t_ok "daemon-reload" it_in systemctl daemon-reload
t_ok "berth plan no longer shows it" it_in sh -c '! berth plan 2>&1 | grep -q "netpart\.network"'

t_ok "stopping the network's unit" it_in systemctl stop berth-network@netpart.service
t_eq "it stopped netpart-db" inactive "$(it_unit_prop netpart-db ActiveState)"
t_eq "it stopped netpart-web" inactive "$(it_unit_prop netpart-web ActiveState)"
t_ok "no bridge is left" it_in sh -c '! test -e /sys/class/net/bn-netpart'
t_ok "no nft table is left" it_in sh -c '! nft list table inet berth-net-netpart >/dev/null 2>&1'
t_ok "no dnsmasq is left" it_in sh -c '! pgrep -f "[d]nsmasq.*networks/netpart/" >/dev/null'
t_ok "no resolver of web is left" it_in sh -c '! pgrep -f "[d]nsmasq.*resolvers/netpart-web" >/dev/null'
t_ok "stopping the second network's unit" it_in systemctl stop berth-network@netpart2.service
t_ok "no bridge of netpart2 is left" it_in sh -c '! test -e /sys/class/net/bn-netpart2'
it_in rm -f /etc/berth/containers/netpart-db.toml /etc/berth/containers/netpart-web.toml /etc/berth/networks/netpart.toml /etc/berth/networks/netpart2.toml
it_in systemctl daemon-reload
