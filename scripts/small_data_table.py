"""The accuracy table of docs/TRAINING.md from a `train-small-data.sh` folder.

    python3 scripts/small_data_table.py [runs/small-data] [--write README.md docs/TRAINING.md]

Rows: the k-mer ridge (baseline.json), the pre-trained network alone
(pretrain/swa.safetensors scored by `promoscope evaluate --holdout 15`, given
as pretrain.json when present), promoscope per seed (the weight average after
the last epoch, seed*/metrics.jsonl) and the PyTorch twin from the same
pre-trained weights and from scratch (twin.json, twin-scratch.json); the
mean and sample standard deviation over seeds. `--write` puts the table
between the files' `<!-- small-data-table -->` markers.
"""
import argparse
import json
import re
from pathlib import Path

import numpy as np


def spread(values):
    values = np.array(values)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {sd:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default="runs/small-data")
    ap.add_argument("--write", nargs="+", default=[], metavar="FILE")
    args = ap.parse_args()
    out = Path(args.folder)
    rows = []
    base = json.loads((out / "baseline.json").read_text())
    rows.append(("ridge on 1..6-mer counts (the teacher)", "–", f"{base['pearson']:.3f}",
                 f"{base['spearman']:.3f}"))
    if (out / "pretrain.json").exists():
        pre = json.loads((out / "pretrain.json").read_text())["overall"]
        rows.append(("promoscope, pre-trained on the teacher set only", "–",
                     f"{pre['pearson']:.3f}", f"{pre['spearman']:.3f}"))
    finals = []
    for run in sorted(out.glob("seed*/metrics.jsonl")):
        if not (run.parent / "last.safetensors").exists():
            continue  # still training
        last = json.loads(run.read_text().splitlines()[-1])
        finals.append((last["swa_pearson"], last["swa_spearman"]))
    if finals:
        p, s = zip(*finals)
        rows.append(("**promoscope, small-data recipe** (weight average after the last epoch)",
                     str(len(finals)), spread(p), spread(s)))
    for name, label in [("twin.json", "PyTorch twin, same recipe and pre-trained weights"),
                        ("twin-scratch.json", "PyTorch twin, same recipe from scratch")]:
        if (out / name).exists():
            runs = json.loads((out / name).read_text())["runs"]
            rows.append((label + " (weight average after the last epoch)", str(len(runs)),
                         spread([r["swa_pearson"] for r in runs]),
                         spread([r["swa_spearman"] for r in runs])))
            rows.append((label + " (best epoch, chosen on the held-out part)", str(len(runs)),
                         spread([r["best"]["val_pearson"] for r in runs]),
                         spread([r["best"]["val_spearman"] for r in runs])))
    table = "\n".join(["| model | seeds | Pearson | Spearman |", "|---|---:|---:|---:|"]
                      + ["| " + " | ".join(row) + " |" for row in rows])
    print(table)
    for name in args.write:
        path = Path(name)
        text, n = re.subn(r"(<!-- small-data-table -->\n).*?(\n<!-- /small-data-table -->)",
                          lambda m: m.group(1) + table + m.group(2), path.read_text(), flags=re.S)
        if n != 1:
            raise SystemExit(f"{path}: no <!-- small-data-table --> block")
        path.write_text(text)


if __name__ == "__main__":
    main()
