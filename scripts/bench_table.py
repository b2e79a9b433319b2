"""One Markdown table of promoscope's and the PyTorch peer's figures from the
same run, with their ratios.

    python3 scripts/bench_table.py --promoscope P.json --peer PEER.json --title "..." [--append docs/BENCHMARKS.md]

P.json is `promoscope bench --json`; PEER.json is `peer_bench.py --out` (GPU)
or `scripts/peer_cpu_bench.py --out` (CPU). Ratios are promoscope ÷ peer, so
above 1 means promoscope is faster (for ISM: peer time ÷ promoscope time).
"""
import argparse
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promoscope", required=True)
    ap.add_argument("--peer", required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("--notes", default="")
    ap.add_argument("--append")
    ap.add_argument("--readme", help="write the ratios into this file's cpu-tables block (README.md)")
    ap.add_argument("--benchmarks", help="write the table into this file's cpu-tables block (docs/BENCHMARKS.md)")
    args = ap.parse_args()
    ours = json.load(open(args.promoscope))
    peer = json.load(open(args.peer))
    modes = [m for m in ("fp32", "tf32") if f"infer_seq_per_s_{m}" in peer]
    head = "| figure | batch | promoscope | " + " | ".join(
        f"PyTorch {m} | ratio" for m in modes) + " |"
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
    lines += [head, "|---|---:|---:|" + "---:|---:|" * len(modes)]
    for f in ours["figures"]:
        if f["key"] in ("data", "stage", "train_stage"):
            continue
        if f["key"] in ("ism", "ism_whole"):
            ms = 1000 * f["seconds"]
            cells = [f"{peer[f'ism_one_seq_ms_{m}']:.1f} ms | {peer[f'ism_one_seq_ms_{m}'] / ms:.2f}" for m in modes]
            ours_cell = f"{ms:.1f} ms"
        else:
            key = {"inference": "infer", "training": "train"}[f["key"]]
            cells = [f"{peer[f'{key}_seq_per_s_{m}']:,.0f} seq/s | {f['seq_per_s'] / peer[f'{key}_seq_per_s_{m}']:.2f}"
                     for m in modes]
            ours_cell = f"{f['seq_per_s']:,.0f} seq/s"
        lines.append(f"| {f['what']} | {f['batch']} | {ours_cell} | " + " | ".join(cells) + " |")
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
        ratios = readme_table(args.title, ours, peer, modes[0])
        replace_cpu_block(args.readme, level, ratios)
    if args.benchmarks:
        replace_cpu_block(args.benchmarks, level, text.rstrip("\n").split("\n"))


BEGIN, END = "<!-- cpu-tables -->", "<!-- /cpu-tables -->"


def readme_table(title, ours, peer, mode):
    """The three ratios of a run, for the README."""
    rows = []
    for f in ours["figures"]:
        if f["key"] == "ism":
            ratio = peer[f"ism_one_seq_ms_{mode}"] / (1000 * f["seconds"])
        elif f["key"] in ("inference", "training"):
            key = {"inference": "infer", "training": "train"}[f["key"]]
            ratio = f["seq_per_s"] / peer[f"{key}_seq_per_s_{mode}"]
        else:
            continue
        rows.append(f"| {f['what']} | {f['batch']} | {ratio:.2f}× |")
    return [f"{title}; vector extensions `{ours.get('cpu', 'not recorded')}`; "
            f"promoscope ÷ PyTorch {peer['torch']} {mode}, same run:", "",
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
