"""Runs a command and prints its peak resident memory (the largest of the
process and its children), for the host-memory figures in docs/BENCHMARKS.md.

    python3 scripts/peak_rss.py COMMAND [ARGS...]

Exits with the command's status; the figure goes to stderr, after the command's
own output. (`/usr/bin/time -v` reports the same where it is installed; the GPU
machine has python3 but not necessarily GNU time.)
"""
import resource
import subprocess
import sys

if len(sys.argv) < 2:
    sys.exit(__doc__)
status = subprocess.run(sys.argv[1:]).returncode
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
print(f"peak resident memory: {peak_kib / 1024:.0f} MiB ({sys.argv[1]} exit {status})", file=sys.stderr)
sys.exit(status if status >= 0 else 128 - status)
