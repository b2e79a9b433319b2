"""Kernel time per stage from cubecl's profiling log, as Markdown.

    python3 scripts/profile_table.py LOG [--top N]

LOG is the file that `[profiling.logger] level = "basic"` in a `cubecl.toml`
writes (plain or .gz). cubecl writes a table of the kernels run since the last
sync at every sync; `promoscope bench --repeats 1 --stages` syncs after each
run of each stage (its warm-up runs, then the timed one), so each stage
gives a group of tables of the same size, and the last of each group is one
clean run. Kernels are grouped by
family (products, elementwise, reductions, copies, ...).
"""
import argparse
import gzip
import re

STAGES = ["stem", "block 1", "block 2", "block 3", "transformer", "head"]
# The figures whose groups of tables `bench --stages` produces, in order
# (each figure's runs end at a sync).
LABELS = (["inference: whole network"] + [f"inference: {s}" for s in STAGES]
          + ["training step (Adam, MSE)", "forward + backward: whole network"]
          + [f"forward + backward: {s}" for s in STAGES]
          + ["ISM, incremental", "ISM, every row through the whole network"])


def tables(text):
    out, rows, inside = [], [], False
    for line in text.splitlines():
        if line.startswith("|⎺"):
            inside, rows = True, []
        elif line.startswith("|⎯"):
            inside = False
            out.append(rows)
        elif inside and not line.startswith("|⎼"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return out


def ms(text):
    value, unit = re.fullmatch(r"([0-9.]+)\s*(ns|µs|ms|s)", text.strip()).groups()
    return float(value) * {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def family(name):
    # cubek's implicit-GEMM convolution (`--implicit-gemm`) runs as a matmul
    # entry too; its direct convolution, the fallback, has its own kernel.
    if name.startswith(("MatmulEntry", "DirectConv2dKernel")):
        return "products"
    if name.startswith(("KernelBinop", "KernelScalarBinop", "UnaryFloat", "KernelScalarCmp",
                        "MaskFillKernel", "FullKernel")):
        return "elementwise"
    if name.startswith(("ReduceKernel", "SharedSumKernel")):
        return "reductions"
    if name.startswith(("CopyKernel", "SliceAssignKernel", "SliceKernel", "SliceWithSteps",
                        "RepeatDimKernel", "FlipKernel")):
        return "copies and slices"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--top", type=int, default=3)
    args = ap.parse_args()
    opener = gzip.open if args.log.endswith(".gz") else open
    with opener(args.log, "rt", errors="replace") as f:
        found = tables(f.read())
    # One group of tables per figure (its warm-ups, then the timed run); a
    # stage's first warm-up table also holds the earlier stages that made
    # its input.
    runs, left = divmod(len(found), len(LABELS))
    if runs == 0 or left:
        raise SystemExit(f"{args.log}: {len(found)} tables, not a multiple of {len(LABELS)} figures")
    timed = found[runs - 1::runs]
    print("| stage | kernels | kernel time ms | by family (ms) | largest kernels (ms × count) |")
    print("|---|---:|---:|---|---|")
    for label, rows in zip(LABELS, timed):
        # A kernel's name may itself hold " | "; duration, count and ratio end the row.
        kernels = [(" | ".join(r[:-3]), r[-3], r[-2]) for r in rows[1:] if r and r[0] != "Total"]
        total = sum(ms(duration) for _, duration, _ in kernels)
        count = sum(int(n) for _, _, n in kernels)
        families = {}
        for name, duration, _ in kernels:
            families[family(name)] = families.get(family(name), 0) + ms(duration)
        by_family = ", ".join(f"{k} {v:.1f}" for k, v in sorted(families.items(), key=lambda kv: -kv[1]))
        largest = ", ".join(f"{family(name)} `{name.split('_')[-1]}` {ms(duration):.1f} × {n}"
                            for name, duration, n in kernels[:args.top])
        print(f"| {label} | {count} | {total:.1f} | {by_family} | {largest} |")


if __name__ == "__main__":
    main()
