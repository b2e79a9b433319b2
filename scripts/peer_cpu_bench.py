"""The PyTorch peer on the CPU, timed the way `promoscope bench` times itself.

    python3 scripts/peer_cpu_bench.py [--peer ../shared/peer] [--threads 2] [--out FILE.json]

It imports the peer's model (`hsayn_torch.py`, in ../shared/peer; not copied
here), checks it against the golden traces, then times with `--threads` CPU
threads: inference at `--infer-batch` (whole, and each stage alone, cut as
`promoscope bench --stages` cuts), a training step (Adam, MSE) at
`--train-batch`, and the in-silico mutagenesis of one 110-bp sequence (its 330
substitutions and the reference in one batch, as `promoscope bench` does).
Each figure is the median of `--repeats` runs after three warm-up runs, like
promoscope's and the peer's own GPU script `peer_bench.py`. It prints JSON with `peer_bench.py`'s keys (fp32 only).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_seconds(fn, repeats, warm_ups=3):
    for _ in range(warm_ups):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def stages(model):
    """The peer's forward pass cut where `promoscope bench --stages` cuts its
    own, in eval mode (dropout off): (name, function) pairs, each taking the
    previous stage's output. Mirrors `HSAYN.forward`; `main` checks that their
    composition is the whole model."""
    import torch.nn.functional as F

    def stem(x):
        x = x.transpose(1, 2)
        conv = model.stem.conv
        h = torch.cat([conv(x), F.conv1d(x, conv.weight.flip(1, 2), conv.bias, padding=conv.padding)], 1)
        return torch.exp(model.stem.bn(h))

    def transformer(h):
        h = h.transpose(1, 2)
        h = model.ln1(h + model.mha(h))
        return model.ln2(h + model.ffn.conv2(F.relu(model.ffn.conv1(h))))

    def head(h):
        z = h.reshape(h.shape[0], -1)
        z = F.relu(model.head.bn1(model.head.fc1(z)))
        z = F.relu(model.head.bn2(model.head.fc2(z)))
        return model.head.out(z)

    return [("stem", stem), ("block 1", lambda h: model.block1.pool(model.block1.res(h))),
            ("block 2", model.block2), ("block 3", model.block3),
            ("transformer", transformer), ("head", head)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", default=os.path.join(ROOT, "..", "shared", "peer"))
    ap.add_argument("--golden", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.peer))
    import hsayn_ref as ref
    import hsayn_torch as ht

    torch.set_num_threads(args.threads)
    golden_path = args.golden or os.path.join(args.peer, "..", "golden", "hsayn_golden.safetensors")
    golden = ref.load_safetensors(golden_path)
    model = ht.HSAYN()
    missing, extra = ht.load_params(model, golden)
    assert not missing and not extra, (missing, extra)
    model.eval()
    with torch.no_grad():
        out = model(torch.from_numpy(golden["input.onehot"])).numpy()
    length = golden["input.onehot"].shape[1]
    res = {
        # oneDNN's kernels follow the CPU: AVX512 or AVX2 (PyTorch's own word).
        "device": f"cpu ({args.threads} threads, {torch.backends.cpu.get_cpu_capability()})",
        "torch": torch.__version__,
        "golden_maxdiff_output": float(np.abs(out - golden["trace.output"]).max()),
    }

    rng = np.random.default_rng(0)
    eye = np.eye(4, dtype=np.float32)

    def onehot(n, bases=length):
        x = np.zeros((n, length, 4), dtype=np.float32)
        x[:, :bases] = eye[rng.integers(0, 4, (n, bases))]
        return torch.from_numpy(x)

    model = ht.HSAYN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-7)
    x, y = onehot(args.train_batch), torch.randn(args.train_batch, 1)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    model.train()
    res["train_seq_per_s_fp32"] = args.train_batch / median_seconds(step, args.repeats)
    model.eval()
    xb = onehot(args.infer_batch)
    with torch.no_grad():
        res["infer_seq_per_s_fp32"] = args.infer_batch / median_seconds(lambda: model(xb), args.repeats)
        # Each stage alone at the inference batch, on the previous stage's output.
        res["stages_ms_fp32"] = {}
        h = xb
        for name, stage in stages(model):
            res["stages_ms_fp32"][name] = 1000 * median_seconds(lambda: stage(h), args.repeats)
            h = stage(h)
        assert torch.allclose(h, model(xb), atol=1e-5), "the stages are not the whole model"
        # The reference and its 330 substitutions, 110 bases padded to the input length.
        reference = onehot(1, 110)
        rows = [reference[0]]
        for i in range(110):
            for b in range(4):
                if reference[0, i, b] == 0:
                    v = reference[0].clone()
                    v[i] = torch.from_numpy(eye[b])
                    rows.append(v)
        variants = torch.stack(rows)
        res["ism_one_seq_ms_fp32"] = 1000 * median_seconds(lambda: model(variants), args.repeats)
    res.update({"infer_batch": args.infer_batch, "train_batch": args.train_batch, "ism_rows": len(rows)})
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
