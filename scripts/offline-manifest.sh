#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): writes the page's files and a version,
# the hash of their contents, into the staged sw.js (www/sw.js), so that every
# build that changes a file is a new service worker with a new cache.
set -euo pipefail
cd "$TRUNK_STAGING_DIR"
mapfile -t files < <(find . -type f ! -name sw.js | sed 's|^\./||' | LC_ALL=C sort)
version=$(cat "${files[@]}" | sha256sum | cut -c1-16)
list=$(printf "'%s', " "${files[@]}")
sed -i "s|/\*VERSION\*/|$version|; s|/\*FILES\*/|${list%, }|" sw.js
