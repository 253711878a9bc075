"""Chapter 4's experiment: pre-LN against post-LN, over peak learning rates, warm-up and seeds.

    python scripts/experiments/norm_position.py --jobs 1     # writes data/results/norm_position.json

Every run trains chapter 4's 6-block character GPT (``gptlib.model.GPT``: width 64, 4 heads,
context 64, GPT-2's initialisation) with ``gptlib.pretrain.train`` for 250 steps of 8 windows,
changing only where the LayerNorms sit (``norm_position``), the peak learning rate, the length
of the linear warm-up and the seed. It is the chapter's live training cell (same model, same
``TrainConfig``), repeated over the grid ``GRID`` and seeds 0, 1, 2.

Each run records the final training and validation loss of ``train`` (its estimate on
``eval_batches`` random validation windows) and, on 8 fixed validation windows, how alike the
positions' vectors are at the top of the stack (mean cosine similarity of two positions) and how
far the predicted distributions at different positions differ (max absolute difference from
their mean over positions). A run that learnt nothing beyond letter frequencies has a validation
loss near the unigram's (``unigram_val_loss`` in the settings, ``gptlib.ngram.ngram_loss`` with
n = 1 on the whole validation split) and the same prediction at every position.

Runs are deterministic on a given machine: the model is initialised after ``set_seed(seed)``,
batches come from ``TrainConfig.seed = seed``, and each run uses one CPU thread.
``tests/test_norm_position_experiment.py`` re-runs two of the runs through ``run_one`` and checks
them against the committed results.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "data" / "results" / "norm_position.json"

MODEL = dict(block_size=64, n_layer=6, n_head=4, n_embd=64, fused_attention=True)
TRAIN = dict(steps=250, batch_size=8, block_size=64, eval_batches=10)
# (norm_position, peak lr, warm-up steps). Post-LN: three peaks, with and without warm-up;
# pre-LN: the chapter's peak and one more than three times higher, with and without warm-up.
GRID = tuple([("post", lr, w) for lr in (1e-3, 2e-3, 3e-3) for w in (0, 100)]
             + [("pre", lr, w) for lr in (3e-3, 1e-2) for w in (0, 100)])
PROBE = dict(batch_size=8, seed=0)        # the fixed validation windows of the collapse probe


def load_data():
    """The character tokenizer of chapter 1 and the train/val ids, (N,) int64 each."""
    from gptlib.data import encode_text, load_text
    from gptlib.tokenizer import CharTokenizer

    train_text, val_text = load_text("train"), load_text("val")
    tok = CharTokenizer.train(train_text + val_text + load_text("test"))
    return tok, encode_text(train_text, tok), encode_text(val_text, tok)


def unigram_val_loss(data) -> float:
    """The counted unigram's validation loss (add-0.1 smoothing), as chapter 1 and the ladder."""
    from gptlib.ngram import ngram_loss

    tok, train_ids, val_ids = data
    return ngram_loss(train_ids.tolist(), val_ids.tolist(), 1, tok.vocab_size, alpha=0.1).loss


@torch.no_grad()
def collapse_probe(model, val_ids) -> dict:
    """On ``PROBE`` validation windows: ``top_similarity``, the mean cosine similarity of the
    top-of-stack vectors of two different positions of a window, and ``prediction_spread``, the
    largest |p_t(v) - mean over t of p_t(v)| over positions t and characters v."""
    from gptlib.data import get_batch

    model.eval()
    x, _ = get_batch(val_ids, PROBE["batch_size"], MODEL["block_size"],
                     generator=torch.Generator().manual_seed(PROBE["seed"]))
    h = model.hidden_states(x)[-1]                                   # (B, T, C)
    u = h / h.norm(dim=-1, keepdim=True)
    cos = u @ u.transpose(1, 2)                                      # (B, T, T)
    T = h.size(1)
    similarity = ((cos.sum(dim=(1, 2)) - T) / (T * (T - 1))).mean().item()
    probs = model(x)[0].softmax(dim=-1)                              # (B, T, V)
    spread = (probs - probs.mean(dim=1, keepdim=True)).abs().max().item()
    return {"top_similarity": round(similarity, 4), "prediction_spread": round(spread, 4)}


def build(vocab_size: int, norm_position: str):
    """The chapter's model, freshly initialised (seed before calling)."""
    from gptlib.model import GPT, GPTConfig

    return GPT(GPTConfig(vocab_size=vocab_size, norm_position=norm_position, **MODEL))


def run_one(norm_position: str, lr: float, warmup_steps: int, seed: int, data=None) -> dict:
    """Train one model and probe it; returns a JSON-ready dict (losses rounded to 4 decimals)."""
    from gptlib import set_seed
    from gptlib.pretrain import TrainConfig, train

    torch.set_num_threads(1)
    tok, train_ids, val_ids = load_data() if data is None else data
    set_seed(seed)
    model = build(tok.vocab_size, norm_position)
    cfg = TrainConfig(lr=lr, warmup_steps=warmup_steps, seed=seed, **TRAIN)
    t0 = time.perf_counter()
    result = train(model, train_ids, cfg, val_data=val_ids)
    return {"norm_position": norm_position, "lr": lr, "warmup_steps": warmup_steps, "seed": seed,
            "train_s": round(time.perf_counter() - t0, 1),
            "final_train_loss": round(result.final_train_loss, 4),
            "final_val_loss": round(result.final_val_loss, 4),
            **collapse_probe(model, val_ids)}


def _job(args):
    r = run_one(*args)
    print(f"{r['norm_position']:>4}-LN lr {r['lr']:g} warm-up {r['warmup_steps']:>3} seed "
          f"{r['seed']}: val {r['final_val_loss']:.4f} similarity {r['top_similarity']:.2f} "
          f"({r['train_s']:.0f} s)", flush=True)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (one thread each)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv

    from gptlib.utils import results_json

    t0 = time.perf_counter()
    unigram = unigram_val_loss(load_data())
    todo = [(*g, s) for g in GRID for s in args.seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(_job, todo))
    else:
        runs = [_job(t) for t in todo]
    results = {
        "command": shlex.join(["python", "scripts/experiments/norm_position.py", *argv]),
        "settings": {"seeds": args.seeds, "model": MODEL, "train": TRAIN,
                     "grid": [list(g) for g in GRID], "probe": PROBE,
                     "unigram_val_loss": round(unigram, 4),
                     "tokenizer": "characters (chapter 1)", "threads_per_run": 1},
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "machine": platform.machine()},
        "total_s": round(time.perf_counter() - t0),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(results_json(results))
    print(f"wrote {args.out} ({results['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
