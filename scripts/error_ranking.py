"""Can anything about a sequence rank a model's errors on the DREAM split?

    python3 scripts/error_ranking.py PREDICTIONS.csv [--data FILE] [--holdout 15]

PREDICTIONS.csv is `promoscope predict --skip-bad` output (`id,prediction,sd`)
over the whole DREAM sample, from a model trained on the split's training
part only. On the held-out part, Spearman of |error| with each score below,
with a 95% bootstrap interval, and the mean |error| of the top fifth of the
score over the bottom fifth (for a yes/no score: yes over no):

- the ensemble's spread (`sd`);
- the prediction's distance from the training labels' median;
- a learned error model: ridge regression of |residual| on 1..4-mer counts of
  the variable region, fitted on the training part's out-of-fold residuals
  of a 1..4-mer ridge (5 folds): what a sequence says about how noisy its
  measurement is, if anything;
- and, as a ceiling that no sequence-only score has, whether the label is a
  whole number (a cell or read count too small to land between bins).
"""
import argparse
import csv
import itertools
import zlib

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_predict

FLANK_5, FLANK_3 = 17, 13


def kmer_counts(sequence, ks=(1, 2, 3, 4)):
    region = sequence[FLANK_5:len(sequence) - FLANK_3]
    counts = []
    for k in ks:
        index = {"".join(t): i for i, t in enumerate(itertools.product("ACGT", repeat=k))}
        c = np.zeros(4**k)
        for i in range(len(region) - k + 1):
            j = index.get(region[i:i + k])
            if j is not None:
                c[j] += 1
        counts.append(c)
    return np.concatenate(counts)


def ranking(error, score, rng, boots=2000):
    rho = spearmanr(error, score).statistic
    n = len(error)
    draws = [spearmanr(error[i], score[i]).statistic
             for i in (rng.integers(0, n, n) for _ in range(boots))]
    if len(np.unique(score)) == 2:  # a yes/no score: the two groups
        ratio = error[score == score.max()].mean() / error[score == score.min()].mean()
    else:
        order = np.argsort(score, kind="stable")
        fifth = n // 5
        ratio = error[order[-fifth:]].mean() / error[order[:fifth]].mean()
    return rho, np.percentile(draws, 2.5), np.percentile(draws, 97.5), ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("predictions")
    parser.add_argument("--data", default="../shared/data/dream2022_train_sample.txt")
    parser.add_argument("--holdout", type=int, default=15)
    args = parser.parse_args()

    lines = open(args.data).read().splitlines()
    sequences, labels, predictions, spreads = [], [], [], []
    with open(args.predictions) as f:
        for row in csv.DictReader(f):
            sequence, label = lines[int(row["id"].removeprefix("line")) - 1].split("\t")[:2]
            sequences.append(sequence.upper())
            labels.append(float(label))
            predictions.append(float(row["prediction"]))
            spreads.append(float(row.get("sd") or 0.0))
    y, p, sd = np.array(labels), np.array(predictions), np.array(spreads)
    held = np.array([zlib.crc32(s.encode()) % 100 < args.holdout for s in sequences])
    train = ~held
    error = np.abs(y - p)

    x = np.array([kmer_counts(s) for s in sequences])
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-9)
    alphas = np.logspace(0, 5, 16)
    out_of_fold = cross_val_predict(RidgeCV(alphas=alphas), x[train], y[train], cv=5)
    noise_model = RidgeCV(alphas=alphas).fit(x[train], np.abs(y[train] - out_of_fold))

    scores = {
        "the spread": sd[held],
        "\\|prediction − median label\\|": np.abs(p[held] - np.median(y[train])),
        "learned error model (1..4-mer ridge of the \\|residual\\|)": noise_model.predict(x[held]),
        "the label is a whole number (known from the label only)": np.isclose(
            y[held], np.round(y[held])).astype(float),
    }
    rng = np.random.default_rng(0)
    print(f"{held.sum()} held-out sequences, mean |error| {error[held].mean():.3f}")
    print("| score | Spearman(\\|error\\|, score) [95%] | mean \\|error\\|: top / bottom fifth (yes / no) |")
    print("|---|---|---|")
    for name, score in scores.items():
        rho, low, high, ratio = ranking(error[held], score, rng)
        print(f"| {name} | {rho:.3f} [{low:.3f}, {high:.3f}] | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
