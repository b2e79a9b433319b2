"""Trains the PyTorch twin (../shared/peer) on promoscope's `--holdout` split:
the other peer of accuracy (same architecture, other framework).

    python3 scripts/peer_train.py [--holdout 15] [--epochs 25] [--batch-size 64]
                                  [--lr 1e-3] [--seeds 0 1 2] [--threads 2] [--out peer-train.json]
                                  [--recipe small-data] [--init pretrained.safetensors]

Per seed: Adam on the mean squared error, the output bias started at the
training labels' mean (as `promoscope train` does), one pass over the
training part an epoch in a seeded order; after each epoch Pearson and
Spearman on the held-out part in eval mode. Reports each epoch, the best
epoch by held-out Pearson, and the mean and spread over seeds.

`--recipe small-data` is `promoscope train --recipe small-data`: passes at
`--lr` (5e-4 there) then 1e-4 for the last `--fine-tune-epochs` (1), batch 64,
and a weight average from the third pass, a model every fifth of a pass, whose
batch-norm statistics are recomputed over 16 training batches; the average
after the last pass is reported beside the best epoch. `--init` starts from a promoscope weights
file (the same parameter names) instead of a fresh network. `--mix-data`
is `promoscope train --mix-data`: `--mix-per-epoch` of its rows (half the
training rows unless set), drawn afresh each epoch, join the pass. The split and
the reading are `scripts/baseline_kmer.py`'s. A measuring instrument, not
product code: `pip install torch numpy scipy`.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from baseline_kmer import held_out, read  # noqa: E402

SEQ_LEN = 111


def one_hot(sequences):
    codes = {b: i for i, b in enumerate("ACGT")}
    x = np.zeros((len(sequences), SEQ_LEN, 4), dtype=np.float32)
    for row, s in enumerate(sequences):
        for pos, base in enumerate(s):
            if base in codes:
                x[row, pos, codes[base]] = 1.0
    return torch.from_numpy(x)


def evaluate(model, x, y, batch):
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(x[i:i + batch]).reshape(-1) for i in range(0, len(x), batch)])
    predicted = predicted.numpy()
    return float(pearsonr(predicted, y)[0]), float(spearmanr(predicted, y)[0])


def train_one(seed, args, data):
    import hsayn_torch as ht
    x_train, y_train, x_val, y_val, x_mix, y_mix = data
    torch.manual_seed(seed)
    model = ht.HSAYN()
    if args.init:
        import hsayn_ref
        missing, extra = ht.load_params(model, hsayn_ref.load_safetensors(args.init))
        if missing or extra:
            sys.exit(f"{args.init}: missing {missing}, unexpected {extra}")
    else:
        with torch.no_grad():
            model.state_dict()["head.out.bias"].fill_(float(y_train.mean()))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-7)
    per_epoch = 0 if x_mix is None else args.mix_per_epoch or len(x_train) // 2
    x_all = x_train if x_mix is None else torch.cat([x_train, x_mix])
    y_all = y_train if x_mix is None else np.concatenate([y_train, y_mix])
    steps_per_epoch = -(-(len(x_train) + per_epoch) // args.batch_size)
    average = None
    if args.recipe == "small-data":
        from torch.optim.swa_utils import AveragedModel, update_bn
        average = AveragedModel(model)
        swa_start, swa_every, averaged = 2 * steps_per_epoch, max(steps_per_epoch // 5, 1), 0
    step = 0
    order_rng = np.random.default_rng(seed)
    targets = torch.from_numpy(y_all.astype(np.float32)).reshape(-1, 1)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        start = time.time()
        model.train()
        order = np.arange(len(x_train))
        if per_epoch:
            drawn = order_rng.choice(len(x_all) - len(x_train), per_epoch, replace=False)
            order = np.concatenate([order, len(x_train) + drawn])
        order = order_rng.permutation(order)
        losses = []
        if args.recipe == "small-data" and epoch > args.epochs - args.fine_tune_epochs:
            for group in optimizer.param_groups:
                group["lr"] = 1e-4
        for i in range(0, len(order) - 1, args.batch_size):
            rows = torch.from_numpy(order[i:i + args.batch_size])
            if len(rows) < 2:
                continue
            loss = torch.mean((model(x_all[rows]) - targets[rows]) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            if average is not None and step >= swa_start and (step - swa_start) % swa_every == 0:
                average.update_parameters(model)
                averaged += 1
        pearson, spearman = evaluate(model, x_val, y_val, 256)
        epochs.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_pearson": pearson,
                       "val_spearman": spearman, "seconds": round(time.time() - start, 1)})
        print(json.dumps({"seed": seed, **epochs[-1]}), flush=True)
    best = max(epochs, key=lambda e: e["val_pearson"])
    result = {"seed": seed, "best": best, "epochs": epochs}
    if average is not None and averaged:
        refresh = [x_all[torch.from_numpy(order[i:i + args.batch_size])]
                   for i in range(0, 16 * args.batch_size, args.batch_size)]
        update_bn(refresh, average)
        result["swa_pearson"], result["swa_spearman"] = evaluate(average, x_val, y_val, 256)
        print(json.dumps({"seed": seed, "swa_pearson": result["swa_pearson"],
                          "swa_spearman": result["swa_spearman"]}), flush=True)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared/data/dream2022_train_sample.txt"))
    ap.add_argument("--peer", default=str(HERE.parent.parent / "shared/peer"))
    ap.add_argument("--holdout", type=int, default=15)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--recipe", choices=["plain", "small-data"], default="plain")
    ap.add_argument("--fine-tune-epochs", type=int, default=1,
                    help="--recipe small-data: the last this many epochs at 1e-4")
    ap.add_argument("--init", help="start from this promoscope weights file")
    ap.add_argument("--mix-data", help="training-only rows mixed into every epoch (promoscope's --mix-data)")
    ap.add_argument("--mix-per-epoch", type=int, help="--mix-data rows a pass [half the training rows]")
    ap.add_argument("--limit", type=int, help="train on the first N training sequences only (a quick check)")
    ap.add_argument("--out")
    args = ap.parse_args()
    sys.path.insert(0, args.peer)
    torch.set_num_threads(args.threads)
    sequences, labels = read(args.data)
    keep = [i for i, s in enumerate(sequences) if len(s) <= SEQ_LEN]
    sequences, labels = [sequences[i] for i in keep], labels[keep]
    val = np.array([held_out(s, args.holdout) for s in sequences])
    train_rows = np.flatnonzero(~val)[:args.limit]
    x_mix = y_mix = None
    if args.mix_data:
        mix_sequences, y_mix = read(args.mix_data)
        fits = [i for i, s in enumerate(mix_sequences) if len(s) <= SEQ_LEN]
        x_mix, y_mix = one_hot([mix_sequences[i] for i in fits]), y_mix[fits]
    data = (one_hot([sequences[i] for i in train_rows]), labels[train_rows],
            one_hot([s for s, v in zip(sequences, val) if v]), labels[val], x_mix, y_mix)
    runs = [train_one(seed, args, data) for seed in args.seeds]
    best = np.array([[r["best"]["val_pearson"], r["best"]["val_spearman"]] for r in runs])
    result = {
        "model": "PyTorch twin (../shared/peer/hsayn_torch.py)",
        "torch": torch.__version__,
        "holdout_percent": args.holdout, "train": len(train_rows), "validation": int(val.sum()),
        "recipe": {"name": args.recipe, "init": args.init, "epochs": args.epochs,
                   "mix_data": args.mix_data, "mix_per_epoch": args.mix_per_epoch,
                   "batch_size": args.batch_size, "lr": args.lr,
                   "selection": "best epoch by held-out Pearson"},
        "pearson_mean": float(best[:, 0].mean()), "pearson_sd": float(best[:, 0].std(ddof=1)) if len(runs) > 1 else 0.0,
        "spearman_mean": float(best[:, 1].mean()), "spearman_sd": float(best[:, 1].std(ddof=1)) if len(runs) > 1 else 0.0,
        "runs": runs,
    }
    if all("swa_pearson" in r for r in runs):
        swa = np.array([[r["swa_pearson"], r["swa_spearman"]] for r in runs])
        result.update({
            "swa_pearson_mean": float(swa[:, 0].mean()),
            "swa_pearson_sd": float(swa[:, 0].std(ddof=1)) if len(runs) > 1 else 0.0,
            "swa_spearman_mean": float(swa[:, 1].mean()),
            "swa_spearman_sd": float(swa[:, 1].std(ddof=1)) if len(runs) > 1 else 0.0,
        })
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
