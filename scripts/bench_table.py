"""One Markdown table of promoscope's and the PyTorch peer's figures from the
same run, with their ratios.

    python3 scripts/bench_table.py --promoscope P.json [P2.json ...] --peer PEER.json [PEER2.json ...] \
        --title "..." [--append docs/BENCHMARKS.md]

P.json is `promoscope bench --json`; PEER.json is `peer_bench.py --out` (GPU)
or `scripts/peer_cpu_bench.py --out` (CPU). Ratios are promoscope ÷ peer, so
above 1 means promoscope is faster (for ISM: peer time ÷ promoscope time).

Several files on each side are rounds, the i-th promoscope file and the i-th
peer file one after the other: each figure is then the median of its rounds,
each ratio the median of the rounds' own ratios, and every round's ratio is
listed. On a shared VM one side's figure can move by half between runs
minutes apart, so one round's ratio says little. The stage tables come from
the first round.
"""
import argparse
import json
import os
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promoscope", required=True, nargs="+")
    ap.add_argument("--peer", required=True, nargs="+")
    ap.add_argument("--title", required=True)
    ap.add_argument("--notes", default="")
    ap.add_argument("--append")
    ap.add_argument("--readme", help="write the ratios into this file's cpu-tables block (README.md)")
    ap.add_argument("--benchmarks", help="write the table into this file's cpu-tables block (docs/BENCHMARKS.md)")
    args = ap.parse_args()
    if len(args.promoscope) != len(args.peer):
        raise SystemExit("bench_table: as many --peer files as --promoscope files (one pair a round)")
    rounds = [(json.load(open(o)), json.load(open(p))) for o, p in zip(args.promoscope, args.peer)]
    ours, peer = rounds[0]
    modes = [m for m in ("fp32", "tf32") if f"infer_seq_per_s_{m}" in peer]
    several = len(rounds) > 1
    head = "| figure | batch | promoscope | " + " | ".join(
        f"PyTorch {m} | ratio" for m in modes) + " |" + (" ratio by round |" if several else "")
    ours_golden = ours.get("golden_max_diff")
    ours_golden = "" if ours_golden is None else f" (golden max diff {ours_golden:.1e})"
    # Builds before 2026-12-02 did not write their features.
    features = ours.get("features")
    features = "" if features is None else f", build features `{','.join(features) or 'none'}`"
    if ours.get("cpu"):
        features += f", vector extensions `{ours['cpu']}`"
    lines = [f"### {args.title}", "",
             f"promoscope {ours['promoscope']} on `{ours['backend']}`{features}{ours_golden}; PyTorch {peer['torch']} on "
             f"`{peer['device']}` (golden max diff {peer.get('golden_maxdiff_output', float('nan')):.1e}).",
             ""]
    if args.notes:
        lines += [args.notes, ""]
    lines += [head, "|---|---:|---:|" + "---:|---:|" * len(modes) + ("---|" if several else "")]
    for f in ours["figures"]:
        if f["key"] in ("data", "stage", "train_stage"):
            continue
        ism = f["key"] in ("ism", "ism_whole")
        ours_values = [ours_value(o, f) for o, _ in rounds]
        ours_median = statistics.median(ours_values)
        ours_cell = f"{1000 * ours_median:.1f} ms" if ism else f"{ours_median:,.0f} seq/s"
        cells = []
        for m in modes:
            peer_median = statistics.median(peer_value(p, f, m) for _, p in rounds)
            ratio = statistics.median(ratio_of(o, p, f, m) for o, p in rounds)
            cells.append(f"{1000 * peer_median:.1f} ms | {ratio:.2f}" if ism
                         else f"{peer_median:,.0f} seq/s | {ratio:.2f}")
        row = f"| {f['what']} | {f['batch']} | {ours_cell} | " + " | ".join(cells) + " |"
        if several:
            row += " " + ", ".join(f"{ratio_of(o, p, f, modes[0]):.2f}" for o, p in rounds) + " |"
        lines.append(row)
    for key, what in (("stage", "forward pass"), ("train_stage", "forward + backward")):
        stages = [f for f in ours["figures"] if f["key"] == key and ":" in f["what"]
                  and "whole network" not in f["what"]]
        if not stages:
            continue
        total = sum(f["seconds"] for f in stages)
        # The CPU peer times its inference stages too: then both, and the ratio.
        peer_stages = peer.get("stages_ms_fp32", {}) if key == "stage" else {}
        both = all(f["what"].split(": ", 1)[1] in peer_stages for f in stages)
        lines += ["", f"promoscope's {what} stage by stage (batch {stages[0]['batch']}, each stage alone):", ""]
        lines += (["| stage | ms | share | PyTorch fp32 ms | ratio |", "|---|---:|---:|---:|---:|"] if both
                  else ["| stage | ms | share |", "|---|---:|---:|"])
        for f in stages:
            name = f["what"].split(": ", 1)[1]
            row = f"| {name} | {1000 * f['seconds']:.1f} | {100 * f['seconds'] / total:.0f}% |"
            if both:
                row += f" {peer_stages[name]:.1f} | {peer_stages[name] / (1000 * f['seconds']):.2f} |"
            lines.append(row)
        whole = [f for f in ours["figures"] if f["key"] == key and "whole network" in f["what"]]
        for f in whole:
            lines.append(f"| {f['what'].split(': ', 1)[1]} | {1000 * f['seconds']:.1f} | |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a") as out:
            out.write("\n" + text)
    level = ours.get("cpu", "unrecorded").split(" ")[0]
    if args.readme:
        ratios = readme_table(args.title, rounds, modes[0])
        replace_cpu_block(args.readme, level, ratios)
    if args.benchmarks:
        replace_cpu_block(args.benchmarks, level, text.rstrip("\n").split("\n"))


BEGIN, END = "<!-- cpu-tables -->", "<!-- /cpu-tables -->"


def same_figure(figures, f):
    """`f` among another round's figures."""
    return next(g for g in figures if (g["key"], g["what"], g["batch"]) == (f["key"], f["what"], f["batch"]))


def ours_value(ours, f):
    """promoscope's figure `f` in a round: seconds for ISM, sequences per second otherwise."""
    g = same_figure(ours["figures"], f)
    return g["seconds"] if f["key"] in ("ism", "ism_whole") else g["seq_per_s"]


def peer_value(peer, f, mode):
    """The peer's figure beside `f`, in the same unit as `ours_value`."""
    if f["key"] in ("ism", "ism_whole"):
        return peer[f"ism_one_seq_ms_{mode}"] / 1000
    key = {"inference": "infer", "training": "train"}[f["key"]]
    return peer[f"{key}_seq_per_s_{mode}"]


def ratio_of(ours, peer, f, mode):
    """promoscope ÷ peer for `f` in one round (time ratios inverted)."""
    a, b = ours_value(ours, f), peer_value(peer, f, mode)
    return b / a if f["key"] in ("ism", "ism_whole") else a / b


def readme_table(title, rounds, mode):
    """The three ratios of a run (medians over its rounds), for the README."""
    ours, peer = rounds[0]
    rows = []
    for f in ours["figures"]:
        if f["key"] not in ("ism", "inference", "training"):
            continue
        ratios = sorted(ratio_of(o, p, f, mode) for o, p in rounds)
        spread = f" ({ratios[0]:.2f}–{ratios[-1]:.2f})" if len(ratios) > 1 else ""
        rows.append(f"| {f['what']} | {f['batch']} | {statistics.median(ratios):.2f}×{spread} |")
    what = f"median of {len(rounds)} rounds (lowest–highest)" if len(rounds) > 1 else "same run"
    return [f"{title}; vector extensions `{ours.get('cpu', 'not recorded')}`; "
            f"promoscope ÷ PyTorch {peer['torch']} {mode}, {what}:", "",
            "| figure | batch | promoscope ÷ PyTorch |", "|---|---:|---:|", *rows]


def replace_cpu_block(path, level, lines):
    """Writes `lines` as the block of CPUs of `level` (x86-64-v3, x86-64-v4...)
    between the file's cpu-tables markers: a run replaces the last run on
    the same kind of CPU and keeps the others. Written atomically."""
    text = open(path).read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} markers")
    open_mark, close_mark = f"<!-- cpu: {level} -->", f"<!-- /cpu: {level} -->"
    block = "\n".join([open_mark, *lines, close_mark])
    if open_mark in text:
        start, end = text.index(open_mark), text.index(close_mark) + len(close_mark)
    else:
        start = end = text.index(END)
        block += "\n"
    with open(path + ".tmp", "w") as out:
        out.write(text[:start] + block + text[end:])
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
