# Sourced (from the repository root) by the scripts that run on the GPU
# machine: the Vulkan loader from the copied `.gl/` Debian packages, NVIDIA's
# Vulkan driver, and the release binaries from `.gpu/` (scripts/pack-gpu.sh)
# unpacked to /tmp: /tmp/promoscope and any variants, /tmp/promoscope-NAME.
if ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
tar -xJf .gpu/promoscope.tar.xz -C /tmp
