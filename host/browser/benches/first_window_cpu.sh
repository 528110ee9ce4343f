#!/bin/bash
# The CPU a pooled Chromium spends on its first window (what the warm pool's
# capture tab or a restore's first tab costs), with sesshost's launch flags:
#   bash host/browser/benches/first_window_cpu.sh            # as launched
#   FEATURES= bash host/browser/benches/first_window_cpu.sh  # without the
#       omnibox-popup features disabled, for comparison
# Run it on an idle machine: it reads the whole machine's busy time from
# /proc/stat. Prints the CPU to DevTools ready, the CPU of the first
# PUT /json/new and the 1.5 s after it, and the targets then open.
# The flags below mirror BASE_FLAGS in host/browser/src/launch.rs (plus
# --no-startup-window, as a headless launch adds): change both together.
set -euo pipefail
FEATURES=${FEATURES-,WebUIOmniboxPopup,WebUIOmniboxAimPopup}
PORT=${PORT:-9335}
prof=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$prof" "$prof.err" 2>/dev/null || true' EXIT
busy() { awk '/^cpu /{print ($2+$3+$4+$7+$8+$9)*10}' /proc/stat; }
root=(); [ "$(id -u)" = 0 ] && root=(--no-sandbox)
b0=$(busy)
chromium --headless=new "${root[@]}" --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --no-default-browser-check --disable-gpu --disable-quic \
  --disable-default-apps --disable-extensions --password-store=basic --use-mock-keychain \
  "--disable-features=BackForwardCache,Translate,MediaRouter,OptimizationHints$FEATURES" \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port="$PORT" \
  --disable-field-trial-config --disable-breakpad --disable-hang-monitor \
  --disable-ipc-flooding-protection --disable-component-extensions-with-background-pages \
  --disable-search-engine-choice-screen --disable-background-timer-throttling \
  --disable-backgrounding-occluded-windows --disable-renderer-backgrounding \
  --no-service-autorun --metrics-recording-only --no-startup-window \
  --user-data-dir="$prof" 2>"$prof.err" &
pid=$!
until grep -q "DevTools listening" "$prof.err" 2>/dev/null; do sleep 0.01; done
ready=$(( $(busy) - b0 ))
sleep 2
b1=$(busy); s=$(date +%s%N)
curl -s -X PUT "localhost:$PORT/json/new?about:blank" >/dev/null
t=$(( ($(date +%s%N) - s) / 1000000 ))
sleep 1.5
echo "features off: ${FEATURES:-none}; CPU to DevTools ready ${ready} ms; first window: /json/new in ${t} ms, CPU over it and the 1.5 s after $(( $(busy) - b1 )) ms"
curl -s "localhost:$PORT/json/list" | grep '"url"' | sed 's/^ */  target /'
