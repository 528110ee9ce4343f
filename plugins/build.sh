#!/bin/sh
# Builds every plugin in this workspace for wasm32-wasip2 (components, no
# cargo-component needed). Output: plugins/target/wasm32-wasip2/release/NAME.wasm
# for NAME in redact, fs, s3, ttl, notrack, hostile, fs01. Needs: rustup target add wasm32-wasip2
set -eu
cd "$(dirname "$0")"
# Always here, whatever CARGO_TARGET_DIR the caller has: the host tests look
# for the .wasm files at this path.
export CARGO_TARGET_DIR="$PWD/target"
cargo build --release --target wasm32-wasip2 "$@"
