#!/usr/bin/env bash
# Installs the web page's build and test tools (idempotent): Debian's Chromium,
# wasm-bindgen-cli equal to the wasm-bindgen of Cargo.lock, trunk, and the npm
# packages of package-lock.json (playwright-core). Nothing is downloaded at build time.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v chromium >/dev/null; then
  apt-get install -y -qq chromium >/dev/null
fi
bindgen=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen" ]; then
  # Its own lockfile pins a crate the registry no longer serves: no --locked.
  cargo install -q wasm-bindgen-cli --version "$bindgen"
fi
if [ "$(trunk --version 2>/dev/null)" != "trunk 0.21.14" ]; then
  # Without its default features (TLS and the update check, which an offline
  # build never uses): 16 crates fewer, ring and rustls among them.
  cargo install -q trunk --version 0.21.14 --locked --no-default-features
fi
npm ci --silent --no-audit --no-fund
