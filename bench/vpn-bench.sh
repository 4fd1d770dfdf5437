#!/usr/bin/env bash
# vpn-bench: iperf3 TCP throughput (1 and 4 streams, client -> internet) through
#   1. the raw veth path (no tunnel): client -> router -> exit, no encryption;
#   2. boringtun (userspace WireGuard, `boringtun-cli` + `wg`) between client and exit;
#   3. skywire vpn-client -> dmsg relay (on the router) -> skywire vpn-server (exit, NAT).
# Same four network namespaces as cli/tests/vpn.rs (prefix swvpnb<pid>), deleted on exit.
# Needs root, iproute2, iperf3, wireguard-tools (wg), ~/.cargo/bin/boringtun-cli and a release
# build (`cargo build --release -p skywire`). Run under `flock /work/wt/bench.lock`.
# Usage: bench/vpn-bench.sh [seconds-per-run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-10}
SW=$PWD/target/release/skywire
BT=${BORINGTUN:-$HOME/.cargo/bin/boringtun-cli}
[ -x "$SW" ] || { echo "build first: cargo build --release -p skywire" >&2; exit 1; }
for x in iperf3 wg "$BT"; do command -v "$x" >/dev/null || { echo "missing $x" >&2; exit 1; }; done

P=swvpnb$$
I=${P}i S=${P}s R=${P}r C=${P}c
TMP=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # iperf3 -D daemonizes: stop it by its pid file, or it outlives the namespaces (and any flock).
  for f in "$TMP"/iperf-*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  sleep 0.5
  for n in $I $S $R $C; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
x() { ip netns exec "$@"; }

for n in $I $S $R $C; do ip netns add "$n"; ip -n "$n" link set lo up; done
veth() { ip link add "$1" netns "$2" type veth peer name "$3" netns "$4"; ip -n "$2" link set "$1" up; ip -n "$4" link set "$3" up; }
veth inet0 $I exit0 $S
veth lan0 $S rs0 $R
veth rc0 $R eth0 $C
ip -n $I addr add 198.18.0.2/24 dev inet0
ip -n $S addr add 198.18.0.1/24 dev exit0
ip -n $S addr add 10.202.0.2/24 dev lan0
ip -n $R addr add 10.202.0.1/24 dev rs0
ip -n $R addr add 10.203.0.1/24 dev rc0
ip -n $C addr add 10.203.0.2/24 dev eth0
ip -n $S route add default via 198.18.0.2
ip -n $S route add 10.203.0.0/24 via 10.202.0.1
ip -n $C route add default via 10.203.0.1
x $R sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
x $S sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
ip -n $I route add 10.99.0.0/24 via 198.18.0.1

x $I iperf3 -s -B 198.18.0.2 -D -I "$TMP/iperf-i.pid" --logfile "$TMP/iperf-i.log"
x $S iperf3 -s -B 10.202.0.2 -D -I "$TMP/iperf-s.pid" --logfile "$TMP/iperf-s.log"
sleep 0.5

run() { # ns target streams -> Mbit/s (receiver side)
  x "$1" iperf3 -c "$2" -t "$T" -P "$3" -J 2>/dev/null |
    python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e6))'
}
declare -A res

# 1. raw veth path (client -> exit, two veth hops, no tunnel)
res[raw,1]=$(run $C 10.202.0.2 1); res[raw,4]=$(run $C 10.202.0.2 4)

# 2. boringtun between client and exit, exit forwards to the internet namespace
wg genkey > "$TMP/ks"; wg pubkey < "$TMP/ks" > "$TMP/ps"
wg genkey > "$TMP/kc"; wg pubkey < "$TMP/kc" > "$TMP/pc"
x $S "$BT" -f wgs --disable-drop-privileges -l "$TMP/bt-s.log" & bts=$!; pids+=($bts)
x $C "$BT" -f wgc --disable-drop-privileges -l "$TMP/bt-c.log" & btc=$!; pids+=($btc)
for _ in $(seq 50); do ip -n $C link show wgc >/dev/null 2>&1 && ip -n $S link show wgs >/dev/null 2>&1 && break; sleep 0.2; done
x $S wg set wgs listen-port 51820 private-key "$TMP/ks" peer "$(cat "$TMP/pc")" allowed-ips 10.99.0.2/32
x $C wg set wgc private-key "$TMP/kc" peer "$(cat "$TMP/ps")" allowed-ips 10.99.0.0/24,198.18.0.0/24 endpoint 10.202.0.2:51820
ip -n $S addr add 10.99.0.1/24 dev wgs; ip -n $S link set wgs mtu 1420 up
ip -n $C addr add 10.99.0.2/24 dev wgc; ip -n $C link set wgc mtu 1420 up
ip -n $C route add 198.18.0.0/24 dev wgc
x $C ping -c1 -W3 198.18.0.2 >/dev/null
res[bt,1]=$(run $C 198.18.0.2 1); res[bt,4]=$(run $C 198.18.0.2 4)
ip -n $C route del 198.18.0.0/24 dev wgc
kill $bts $btc; wait $bts $btc 2>/dev/null || true

# 3. skywire VPN through a dmsg relay on the router
x $R "$SW" dmsg disc --addr 10.202.0.1:9090 --store memory 2>"$TMP/disc.log" & pids+=($!)
"$SW" dmsg server config gen -o "$TMP/relay.json" --discovery http://10.202.0.1:9090 \
  --local-address 10.202.0.1:8081 --public-address 10.202.0.1:8081 --health-address 10.202.0.1:8082
for _ in $(seq 50); do x $R curl -s -o /dev/null http://10.202.0.1:9090/health && break; sleep 0.2; done
x $R "$SW" dmsg server -c "$TMP/relay.json" 2>"$TMP/relay.log" & pids+=($!)
for _ in $(seq 50); do x $R curl -s http://10.202.0.1:9090/dmsg-discovery/all_servers | grep -q 10.202.0.1 && break; sleep 0.2; done
SK=2222222222222222222222222222222222222222222222222222222222222222
x $S "$SW" app vpn-server --sk $SK --disc http://10.202.0.1:9090 --state-dir "$TMP/ss" \
  --status-file "$TMP/ss.json" 2>"$TMP/srv.log" & pids+=($!)
for _ in $(seq 100); do [ -s "$TMP/ss.json" ] && break; sleep 0.2; done
PK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pk"])' "$TMP/ss.json")
x $C "$SW" app vpn-client --srv "$PK" --disc http://10.202.0.1:9090 --state-dir "$TMP/cs" \
  --status-file "$TMP/cs.json" 2>"$TMP/cli.log" & pids+=($!)
for _ in $(seq 150); do grep -q '"connected"' "$TMP/cs.json" 2>/dev/null && break; sleep 0.2; done
x $C ping -c1 -W3 198.18.0.2 >/dev/null
res[sw,1]=$(run $C 198.18.0.2 1); res[sw,4]=$(run $C 198.18.0.2 4)

ratio() { python3 -c "print('%.2f' % ($1/$2))"; }
echo
echo "iperf3 TCP, ${T}s per run, Mbit/s (receiver); 2 shared cores"
echo "| path | 1 stream | 4 streams | vs raw (1/4) | vs boringtun (1/4) |"
echo "|---|---|---|---|---|"
echo "| raw veth (client -> exit) | ${res[raw,1]} | ${res[raw,4]} | 1.00 / 1.00 | - |"
echo "| boringtun (WireGuard, userspace) | ${res[bt,1]} | ${res[bt,4]} | $(ratio ${res[bt,1]} ${res[raw,1]}) / $(ratio ${res[bt,4]} ${res[raw,4]}) | 1.00 / 1.00 |"
echo "| skywire vpn (dmsg relay) | ${res[sw,1]} | ${res[sw,4]} | $(ratio ${res[sw,1]} ${res[raw,1]}) / $(ratio ${res[sw,4]} ${res[raw,4]}) | $(ratio ${res[sw,1]} ${res[bt,1]}) / $(ratio ${res[sw,4]} ${res[bt,4]}) |"
