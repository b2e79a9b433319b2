"""The k-mer ridge baseline: what a model of promoscope's must beat on the same split.

    python3 scripts/baseline_kmer.py [--data ../shared/data/dream2022_train_sample.txt]
                                     [--holdout 15] [--out baseline.json]
                                     [--teacher 100000 --teacher-out teacher.txt --seed 0]

Features: the counts of every 1- to 6-mer in the sequence and in its reverse
complement, added (every k-mer the training part holds, N included: 6,695 on
the DREAM sample). Ridge regression whose penalty is chosen
by leave-one-out cross-validation on the training part (scikit-learn's
RidgeCV, its efficient form) over 10^-1 .. 10^5; then Pearson and Spearman
on the held-out part.

The split is promoscope's `train --holdout PERCENT`: a sequence is held out
when the CRC-32 (zlib's) of its upper-case letters, mod 100, is below PERCENT.
It depends on the sequence alone, not on file order or a seed, so every tool
and every run holds out the same sequences. Labels are used as they are.

With `--teacher N`, the fitted ridge also labels N random 80-bp variable
regions inside the DREAM flanks (the training part's most common 5' and 3'
ends) and writes them as `SEQUENCE<TAB>PREDICTION` lines: the pre-training
set of `promoscope train --recipe small-data` (docs/TRAINING.md). Only the
training part is used to fit it, so the held-out part stays unseen.

A measuring instrument like the PyTorch peer (scikit-learn, not product code):
`pip install scikit-learn scipy numpy`.
"""
import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import RidgeCV

HERE = Path(__file__).resolve().parent
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def held_out(sequence, percent):
    """promoscope's `--holdout` rule (trainer/src/data.rs, `held_out`)."""
    return zlib.crc32(sequence.upper().encode()) % 100 < percent


def read(path):
    sequences, labels = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                sys.exit(f"{path}:{number}: expected SEQUENCE<TAB>EXPRESSION")
            sequences.append(fields[0].upper())
            labels.append(float(fields[1]))
    return sequences, np.array(labels)


def features(sequences, vectorizer):
    both = vectorizer.transform(sequences) + vectorizer.transform(
        [s.translate(COMPLEMENT)[::-1] for s in sequences])
    return both.astype(np.float64)


def write_teacher(path, count, seed, train_seqs, predict):
    """`count` random variable regions in the training part's flanks, labelled by `predict`."""
    from collections import Counter
    full = [s for s in train_seqs if len(s) == 110]
    five = Counter(s[:17] for s in full).most_common(1)[0][0]
    three = Counter(s[-13:] for s in full).most_common(1)[0][0]
    rng = np.random.default_rng(seed)
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w") as f:
        for start in range(0, count, 10_000):
            n = min(10_000, count - start)
            bases = np.array(list("ACGT"))[rng.integers(0, 4, size=(n, 80))]
            chunk = [five + "".join(row) + three for row in bases]
            for sequence, value in zip(chunk, predict(chunk)):
                f.write(f"{sequence}\t{value:.4f}\n")
    tmp.replace(path)
    return five, three


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/dream2022_train_sample.txt"))
    ap.add_argument("--holdout", type=int, default=15, help="percent held out (promoscope's --holdout)")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--teacher", type=int, default=0, metavar="N",
                    help="also label N random sequences with the fitted ridge")
    ap.add_argument("--teacher-out", default="teacher.txt", help="where --teacher writes them")
    ap.add_argument("--seed", type=int, default=0, help="seed of the --teacher sequences")
    args = ap.parse_args()
    sequences, labels = read(args.data)
    # Sequences longer than the seed model's 111 positions are dropped by
    # `promoscope train`; drop them here too, so both fit the same rows.
    keep = [i for i, s in enumerate(sequences) if len(s) <= 111]
    sequences = [sequences[i] for i in keep]
    labels = labels[keep]
    val = np.array([held_out(s, args.holdout) for s in sequences])
    train_seqs = [s for s, v in zip(sequences, val) if not v]
    val_seqs = [s for s, v in zip(sequences, val) if v]
    start = time.time()
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(1, 6), lowercase=False)
    vectorizer.fit(train_seqs + [s.translate(COMPLEMENT)[::-1] for s in train_seqs])
    x_train = features(train_seqs, vectorizer).toarray()
    x_val = features(val_seqs, vectorizer).toarray()
    # Centred and scaled on the training part, so one penalty fits every k.
    mean, scale = x_train.mean(0), x_train.std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(-1, 5, 25))
    ridge.fit((x_train - mean) / scale, labels[~val])
    predicted = ridge.predict((x_val - mean) / scale)
    result = {
        "model": "ridge on 1..6-mer counts, both strands",
        "data": str(args.data),
        "holdout_percent": args.holdout,
        "train": int((~val).sum()),
        "validation": int(val.sum()),
        "features": int(x_train.shape[1]),
        "alpha": float(ridge.alpha_),
        "pearson": float(pearsonr(predicted, labels[val])[0]),
        "spearman": float(spearmanr(predicted, labels[val])[0]),
        "seconds": round(time.time() - start, 1),
    }
    if args.teacher:
        def predict(chunk):
            return ridge.predict((features(chunk, vectorizer).toarray() - mean) / scale)
        five, three = write_teacher(args.teacher_out, args.teacher, args.seed, train_seqs, predict)
        result["teacher"] = {"sequences": args.teacher, "out": args.teacher_out,
                             "seed": args.seed, "flank_5": five, "flank_3": three}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
