#!/usr/bin/env bash
# System packages promoscope's tests need on a fresh Debian bookworm machine:
# Mesa's lavapipe (CPU Vulkan, 25.x from bookworm-backports) so wgpu runs without a GPU.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
sources=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$sources" ]; then
  cat > "$sources" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
apt-get install -y -qq libvulkan1 vulkan-tools >/dev/null
