#!/usr/bin/env bash
# Idle cost of a 3-host `host run --cluster` at the default T = 15 s and
# default GC settings: bucket calls (one S3 request each; list pages) over
# a window, by op, from sesshost_bucket_calls_total.
#
#   host/cli/benches/cluster_idle_cost.sh [WINDOW_SECONDS=120]
#
# Needs a built `host` (cargo build -p sesshost-cli; HOST=… to pick one),
# the plugins (plugins/build.sh) and Ceph RGW (.ci/setup). Ports 18701-3.
set -euo pipefail
W=${1:-120}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HOST=${HOST:-${CARGO_TARGET_DIR:-/var/tmp/sesshost-target}/debug/host}
WORK=$(mktemp -d)
cd "$WORK"
eval "$($ROOT/.ci/rgw start "$WORK/rgw" | sed 's/^/RGW_/')"
port=${RGW_endpoint##*:}
echo "correct horse battery staple" > pass
echo -n "$RGW_secret_key" > sk
cat > s3.toml <<T
endpoint = "$RGW_endpoint"
bucket = "$RGW_bucket"
access_key_id = "$RGW_access_key"
secret_access_key = "file:$WORK/sk"
prefix = "cost$$/"
T
printf '[pool]\nsize = 0\n' > cfg.toml
pids=()
for i in 1 2 3; do
  p=$((18700 + i))
  SESSHOST_HOME=$WORK/h$i $HOST run --listen 127.0.0.1:$p --config cfg.toml --cluster --plugin $ROOT/plugins/target/wasm32-wasip2/release/s3.wasm --plugin-config-file s3.toml --allow-host 127.0.0.1:$port --passphrase-file pass --host-id h$i > log$i 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 60); do curl -sf http://127.0.0.1:$((18700 + i))/readyz >/dev/null && break; sleep 1; done
done
sleep 20   # past start-up and first listings
snap() { for i in 1 2 3; do curl -s http://127.0.0.1:$((18700 + i))/metrics | grep '^sesshost_bucket_calls_total'; done | awk '{split($1,a,"\""); s[a[2]]+=$2} END {for (k in s) print k, s[k]}' | sort; }
snap > a; sleep "$W"; snap > b
echo "window $W s, 3 hosts, T = 15 s, default GC (hourly):"
join a b | awk -v w="$W" '{d=$3-$2; t+=d; printf "  %-10s %6d calls = %8.0f per host-hour\n", $1, d, d*3600/w/3} END {printf "  %-10s %6d calls = %8.0f per host-hour\n", "total", t, t*3600/w/3}'
kill "${pids[@]}"; wait || true
$ROOT/.ci/rgw stop "$WORK/rgw" >/dev/null
rm -rf "$WORK"
