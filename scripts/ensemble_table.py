"""The ensemble tables of docs/TRAINING.md from a `train-ensemble.sh` folder.

    python3 scripts/ensemble_table.py [runs/ensemble]

Accuracy on the `--holdout 15` part of the DREAM sample: the k-mer ridge, the
Vaishnav pre-training alone, each seed's network (mean ± sample standard
deviation over seeds), the PyTorch twin given the same recipe and start
(twin.json, when present), every pair of seeds as an ensemble (mean ± sd over
pairs) and all seeds as one ensemble. Calibration of each ensemble's spread
(from `promoscope evaluate`): Spearman of |error| and spread with its
bootstrap interval, mean |error| in the top and bottom fifth of spread, the
share inside mean ± 2·spread; and a split-conformal check of the interval
scale: the scale that holds 95% is fitted on the held-out sequences whose
CRC-32 mod 100 is below 8 and its coverage measured on those from 8 to 14
(from the ensemble's `predict` output). Also the Vaishnav held-out parts:
the pre-trained network's accuracy, and the spread's calibration there.
"""
import argparse
import csv
import json
import zlib
from pathlib import Path

import numpy as np


def spread(values, digits=3):
    values = np.array(values, dtype=float)
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {sd:.{digits}f}"


def crc_bucket(sequence):
    return zlib.crc32(sequence.upper().encode()) % 100


def scored_rows(predictions_csv, data, holdout):
    """(prediction, sd, measurement, CRC bucket) of the rows of a `predict`
    output whose sequence `--holdout HOLDOUT` holds out of `data`."""
    lines = Path(data).read_text().splitlines()
    with open(predictions_csv) as f:
        for row in csv.DictReader(f):
            sequence, label = lines[int(row["id"].removeprefix("line")) - 1].split("\t")[:2]
            bucket = crc_bucket(sequence)
            if bucket < holdout:
                yield float(row["prediction"]), float(row["sd"]), float(label), bucket


def conformal(predictions_csv, data):
    """(scale fitted on buckets < 8, coverage of mean ± scale·sd on buckets 8..14)."""
    fit, test = [], []
    for prediction, sd, label, bucket in scored_rows(predictions_csv, data, 15):
        (fit if bucket < 8 else test).append((abs(prediction - label), sd))
    ratios = np.sort([e / s for e, s in fit])
    scale = ratios[int(np.ceil(0.95 * len(ratios))) - 1]
    covered = np.mean([e <= scale * s for e, s in test])
    return scale, covered, len(fit), len(test)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default="runs/ensemble")
    ap.add_argument("--data", default="../shared/data/dream2022_train_sample.txt")
    args = ap.parse_args()
    out = Path(args.folder)
    load = lambda name: json.loads((out / name).read_text())
    rows = [("model", "networks", "Pearson", "Spearman")]
    base = load("baseline.json")
    rows.append(("ridge on 1..6-mer counts (the teacher)", "–", f"{base['pearson']:.3f}", f"{base['spearman']:.3f}"))
    pre = load("pretrain-dream.json")["overall"]
    rows.append(("pre-trained on Vaishnav 2022 + teacher rows only", "1", f"{pre['pearson']:.3f}", f"{pre['spearman']:.3f}"))
    seeds = []
    for run in sorted(out.glob("seed*/metrics.jsonl")):
        last = json.loads(run.read_text().splitlines()[-1])
        seeds.append((last["swa_pearson"], last["swa_spearman"]))
    p, s = zip(*seeds)
    rows.append((f"one network, {len(seeds)} seeds", "1", spread(p), spread(s)))
    if (out / "twin.json").exists():
        twin = load("twin.json")["runs"]
        rows.append((f"PyTorch twin, same recipe from the same pre-trained network, {len(twin)} seeds", "1",
                     spread([r["swa_pearson"] for r in twin]), spread([r["swa_spearman"] for r in twin])))
    pairs = sorted(out.glob("pair[0-9][0-9].json"))
    pair_scores = [load(f.name)["overall"] for f in pairs]
    rows.append((f"ensemble of two seeds, {len(pairs)} pairs", "2", spread([x["pearson"] for x in pair_scores]),
                 spread([x["spearman"] for x in pair_scores])))
    everything = load("all.json")
    rows.append((f"ensemble of all {len(seeds)} seeds", str(len(seeds)),
                 f"{everything['overall']['pearson']:.3f}", f"{everything['overall']['spearman']:.3f}"))
    if (out / "pair01-int8.json").exists():
        q = load("pair01-int8.json")["overall"]
        r = load("pair01.json")["overall"]
        rows.append(("seeds 0 and 1 in 8 bits (the page's), vs in 32", "2",
                     f"{q['pearson']:.3f} vs {r['pearson']:.3f}", f"{q['spearman']:.3f} vs {r['spearman']:.3f}"))
    print_table(rows)

    print()
    rows = [("ensemble", "Spearman(\\|error\\|, spread) [95%]", "mean \\|error\\|: top / bottom fifth of spread",
             "inside ± 2 spreads", "scale for 95% (fitted) → coverage (other part)")]
    for name in [f.stem for f in pairs] + ["all"]:
        c = load(f"{name}.json")["calibration"]
        scale, covered, n_fit, n_test = conformal(out / f"{name}.predictions.csv", args.data)
        rows.append((name, f"{c['spearman_error_spread']:.3f} [{c['spearman_interval'][0]:.3f}, {c['spearman_interval'][1]:.3f}]",
                     f"{c['error_top_quintile']:.3f} / {c['error_bottom_quintile']:.3f} "
                     f"({c['error_top_quintile'] / c['error_bottom_quintile']:.2f}×)",
                     f"{100 * c['coverage_2sd']:.1f}%",
                     f"{scale:.2f} (on {n_fit}) → {100 * covered:.1f}% (of {n_test})"))
    print_table(rows)

    print()
    rows = [("Vaishnav 2022 held out (--holdout 5)", "sequences", "ridge Pearson / Spearman", "pre-trained network")]
    for medium in ["complex", "defined"]:
        ridge = load(f"ridge-{medium}.json")
        net = load(f"pretrain-{medium}.json")["overall"]
        rows.append((medium, str(net["n"]), f"{ridge['pearson']:.3f} / {ridge['spearman']:.3f}",
                     f"{net['pearson']:.3f} / {net['spearman']:.3f}"))
    print_table(rows)

    print()
    rows = [("ensemble", "medium", "Pearson", "mean spread", "Spearman(\\|error\\|, spread) [95%]",
             "mean \\|error\\|: top / bottom fifth of spread")]
    for name in ["pair01", "pairi1i2", "pretrain-trio"]:
        for medium in ["complex", "defined"]:
            csv_path = out / f"vaishnav-{medium}-{name}.predictions.csv"
            if csv_path.exists():
                data = Path(args.data).parent / f"vaishnav2022_{medium}_sswm_drift.txt"
                rows.append((name, medium) + vaishnav_calibration(csv_path, data))
    if len(rows) > 1:
        print_table(rows)


def vaishnav_calibration(predictions_csv, data, resamples=2000):
    """The spread's calibration on a Vaishnav file's `--holdout 5` rows.

    Members fine-tuned on DREAM predict on DREAM's scale, so each prediction is
    first mapped to the medium's by a straight line fitted on these rows (two
    parameters on hundreds of rows); the error is the measurement minus that.
    """
    rows = [row[:3] for row in scored_rows(predictions_csv, data, 5)]
    prediction, sd, label = map(np.array, zip(*rows))
    slope, intercept = np.polyfit(prediction, label, 1)
    error = np.abs(label - (slope * prediction + intercept))
    rng = np.random.default_rng(0)
    rho = spearmanr(error, sd)
    boots = [spearmanr(error[i], sd[i]) for i in rng.integers(0, len(error), (resamples, len(error)))]
    low, high = np.percentile(boots, [2.5, 97.5])
    top, bottom = error[sd >= np.quantile(sd, 0.8)].mean(), error[sd <= np.quantile(sd, 0.2)].mean()
    return (f"{np.corrcoef(prediction, label)[0, 1]:.3f}", f"{sd.mean():.3f}",
            f"{rho:.3f} [{low:.3f}, {high:.3f}]", f"{top:.3f} / {bottom:.3f} ({top / bottom:.2f}×)")


def spearmanr(a, b):
    """Spearman's rank correlation (ties get their mean rank)."""
    rank = lambda x: np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)
    return np.corrcoef(average_ties(a, rank(a)), average_ties(b, rank(b)))[0, 1]


def average_ties(values, ranks):
    _, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, ranks)
    return (sums / np.bincount(inverse))[inverse]


def print_table(rows):
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
