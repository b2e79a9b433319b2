#!/usr/bin/env bash
# Builds the page and serves it on http://127.0.0.1:${PORT:-8080} (static files only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-page.sh
port="${PORT:-8080}"
echo "promoscope: open http://127.0.0.1:$port/"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory dist
