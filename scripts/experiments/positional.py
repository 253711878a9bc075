"""Chapter 5's experiment: one small GPT, six positional encodings, the same training budget.

    python scripts/experiments/positional.py --jobs 2        # writes data/results/positional.json

Every run trains the same character-level GPT (``gptlib.model.GPT``) with ``gptlib.pretrain.train``
on the training plays, changing only ``pos_encoding`` and the seed. Each trained model is then
scored on the validation plays with windows of 1x, 2x and 4x the training context (only 1x for
the encodings with a position table, which cannot read longer windows). Every model is scored on
the same windows: the evaluation generator does not depend on the encoding or the seed.

Runs are deterministic on a given machine: the model is initialised after ``set_seed(seed)``,
training batches come from ``TrainConfig.seed = seed``, and each run uses one CPU thread (the
thread count changes how reductions are summed). ``--jobs`` runs that many runs side by side;
it does not change any number. The command and every setting are stored in the results file.

``tests/test_positional_experiment.py`` re-runs a reduced version through ``run_one`` and checks
that it agrees with the committed results.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "data" / "results" / "positional.json"

MODEL = dict(n_layer=2, n_head=4, n_embd=64, dropout=0.0)
TRAIN = dict(batch_size=32, lr=3e-3, min_lr=3e-4, warmup_steps=50, weight_decay=0.1,
             grad_clip=1.0, eval_batches=20)
EVAL = dict(batch_size=16, n_batches=40, seed=1234)      # windows scored at every length
ENCODINGS = ("none", "onehot", "learned", "sinusoidal", "rope", "alibi")
# A control for the sinusoidal encoding: its values are +-1, while GPT-2's initialisation gives
# token embeddings of std 0.02. This variant multiplies the sinusoids by SCALED_SINUSOIDAL, so
# that their root-mean-square per coordinate (1/sqrt(2) unscaled) equals 0.02, like a new table.
SCALED_SINUSOIDAL = 0.02 * 2 ** 0.5
VARIANTS = ENCODINGS + ("sinusoidal-scaled",)
TABLE_ENCODINGS = ("onehot", "learned")                   # no rows beyond the training context
MULTIPLES = (1, 2, 4)


def load_data():
    """The character tokenizer of chapter 1 and the train/val ids, (N,) int64 each."""
    from gptlib.data import encode_text, load_text
    from gptlib.tokenizer import CharTokenizer

    train_text, val_text = load_text("train"), load_text("val")
    tok = CharTokenizer.train(train_text + val_text + load_text("test"))
    return tok, encode_text(train_text, tok), encode_text(val_text, tok)


@torch.no_grad()
def loss_by_position(model, data, length: int, batch_size: int, n_batches: int, seed: int):
    """Mean cross-entropy at each position 0..length-1 of ``n_batches`` x ``batch_size`` validation
    windows drawn with ``torch.Generator().manual_seed(seed)``; shape (length,)."""
    from gptlib.data import get_batch

    g = torch.Generator().manual_seed(seed)
    model.eval()
    total = torch.zeros(length, dtype=torch.float64)
    for _ in range(n_batches):
        x, y = get_batch(data, batch_size, length, g)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")   # (B, length)
        total += loss.double().sum(0)
    return total / (batch_size * n_batches)


def _scaled_sinusoidal_class():
    from gptlib.positional import SinusoidalPositional

    class ScaledSinusoidal(SinusoidalPositional):
        """The sinusoidal encoding times a constant ``scale`` (no parameters, any length)."""

        def __init__(self, n_embd: int, max_len: int, scale: float):
            super().__init__(n_embd, max_len)
            self.scale = scale

        def embed(self, x, offset=0):
            return x + self.scale * super().embed(torch.zeros_like(x), offset)

    return ScaledSinusoidal


def run_one(encoding: str, seed: int, steps: int, block_size: int, multiples=MULTIPLES,
            data=None, train_overrides: dict | None = None) -> dict:
    """Train one model and score it; returns a JSON-ready dict (losses rounded to 4 decimals)."""
    from gptlib import set_seed
    from gptlib.model import GPT, GPTConfig
    from gptlib.pretrain import TrainConfig, train

    torch.set_num_threads(1)
    tok, train_ids, val_ids = load_data() if data is None else data
    set_seed(seed)
    scaled = encoding == "sinusoidal-scaled"
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block_size,
                          pos_encoding="sinusoidal" if scaled else encoding, **MODEL))
    if scaled:
        model.pos = _scaled_sinusoidal_class()(MODEL["n_embd"], block_size, SCALED_SINUSOIDAL)
    cfg = TrainConfig(steps=steps, block_size=block_size, seed=seed,
                      **{**TRAIN, **(train_overrides or {})})
    t0 = time.perf_counter()
    result = train(model, train_ids, cfg, val_ids)
    elapsed = time.perf_counter() - t0
    out = {"encoding": encoding, "seed": seed, "train_s": round(elapsed, 1),
           "final_train_loss": round(result.final_train_loss, 4),
           "final_val_loss": round(result.final_val_loss, 4), "val_loss": {}}
    lengths = [m * block_size for m in (multiples if encoding not in TABLE_ENCODINGS else (1,))]
    for length in lengths:
        per_pos = loss_by_position(model, val_ids, length, EVAL["batch_size"], EVAL["n_batches"],
                                   EVAL["seed"])
        out["val_loss"][str(length)] = round(per_pos.mean().item(), 4)
        if length == lengths[-1] and length > block_size:
            out["loss_by_position"] = [round(v, 4) for v in per_pos.tolist()]
    if encoding == "learned":                    # the trained table, for chapter 5's figures
        out["wpe"] = [[round(v, 4) for v in row] for row in model.wpe.weight.tolist()]
    return out


def _job(args):
    encoding, seed, steps, block_size = args
    r = run_one(encoding, seed, steps, block_size)
    print(f"{encoding:>10} seed {seed}: val {r['val_loss']}  ({r['train_s']:.0f} s)", flush=True)
    return r


def dumps(results: dict) -> str:
    """The results as JSON: settings indented, one line per run (``gptlib.utils.results_json``)."""
    from gptlib.utils import results_json
    return results_json(results)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--block-size", type=int, default=32, help="the training context T")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--encodings", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (one thread each)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv

    todo = [(e, s, args.steps, args.block_size) for e in args.encodings for s in args.seeds]
    t0 = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(_job, todo))
    else:
        runs = [_job(t) for t in todo]
    results = {
        "command": shlex.join(["python", "scripts/experiments/positional.py", *argv]),
        "settings": {"steps": args.steps, "block_size": args.block_size, "seeds": args.seeds,
                     "encodings": args.encodings, "multiples": list(MULTIPLES), "model": MODEL,
                     "train": TRAIN, "eval": EVAL, "scaled_sinusoidal": SCALED_SINUSOIDAL, "tokenizer": "characters (chapter 1)",
                     "threads_per_run": 1},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine()},
        "total_s": round(time.perf_counter() - t0),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps(results))
    print(f"wrote {args.out} ({results['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
