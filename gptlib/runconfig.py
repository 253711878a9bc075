"""Run configs — the JSON files in ``configs/`` — and the command line that trains from them::

    python -m gptlib.pretrain --config configs/shakespeare_char.json

A run config names the model (``GPTConfig`` fields), the training (``TrainConfig`` fields) and the
data (which split or text file, which tokenizer); ``run`` builds the model, trains it with
``gptlib.pretrain.train`` and exports it with ``gptlib.checkpoint.save_pretrained``, next to its
training log (``train_log.csv``) and the command that produced it (``COMMAND``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from gptlib.checkpoint import _atomic_write, save_pretrained
from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig, dataset_loss, train

__all__ = ["load_run_config", "prepare_data", "run", "write_log", "read_log", "main",
           "check_resumable"]

RUN_KEYS = ("description", "model", "train", "data", "out_dir")
DATA_DEFAULTS = {"source": "corpus", "train_split": "train", "val_split": "val",
                 "tokenizer": "char", "path": None, "val_fraction": 0.1, "task": None}
LOG_COLUMNS = ("step", "tokens", "lr", "train_loss", "grad_norm", "eval_train_loss", "val_loss",
               "time_s")


def _unknown(d: dict, known, where: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; valid keys are {list(known)}")


def load_run_config(config) -> dict:
    """Read and check a run config (a path to a JSON file, or the dict itself)::

        {"model": {GPTConfig fields; vocab_size comes from the tokenizer, block_size from train},
         "train": {TrainConfig fields},
         "data":  {"source": "corpus" (gptlib.data's splits) or "text" (a plain-text file),
                   "train_split": "train", "val_split": "val" (or null),   # source "corpus"
                   "path": ..., "val_fraction": 0.1,   # source "text": the last 10% validate
                   "tokenizer": "char" or the path of a saved tokenizer (JSON),
                   "task": {...}},   # source "synthetic": gptlib.synthetic's sequences
         "out_dir": where to export the trained model, "description": free text}

    Returns the same sections with ``train`` as a ``TrainConfig`` and ``data`` completed with
    defaults. Unknown keys are an error in every section, so a typo cannot be silently ignored.
    """
    if not isinstance(config, dict):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"no run config at {path}")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
    _unknown(config, RUN_KEYS, "the run config")
    for key in ("model", "train"):
        if key not in config:
            raise ValueError(f"the run config needs a {key!r} section")
    _unknown(config["model"], [f.name for f in GPTConfig.__dataclass_fields__.values()],
             "the run config's 'model' section")
    data = dict(DATA_DEFAULTS, **config.get("data", {}))
    _unknown(data, DATA_DEFAULTS, "the run config's 'data' section")
    if data["source"] not in ("corpus", "text", "synthetic"):
        raise ValueError(f"data.source must be 'corpus', 'text' or 'synthetic', "
                         f"got {data['source']!r}")
    if data["source"] == "text" and not data["path"]:
        raise ValueError("data.source 'text' needs data.path, the plain-text file to train on")
    return {"description": config.get("description", ""), "model": dict(config["model"]),
            "train": TrainConfig.from_dict(config["train"]), "data": data,
            "out_dir": config.get("out_dir")}


def prepare_data(data: dict):
    """``(tokenizer, train_ids, val_ids or None)`` for a run config's ``data`` section.

    A "char" tokenizer's vocabulary is every character of the text the run reads (train and
    validation), so that the validation text can always be encoded.
    """
    from gptlib.data import encode_text, load_text
    from gptlib.tokenizer import CharTokenizer, load_tokenizer
    if data["source"] == "synthetic":       # sequences drawn afresh (gptlib.synthetic)
        from gptlib.synthetic import prepare
        return prepare(data)
    if data["source"] == "corpus":
        train_text = load_text(data["train_split"])
        val_text = load_text(data["val_split"]) if data["val_split"] else None
    else:
        text = Path(data["path"]).read_text(encoding="utf-8")
        if not 0 <= data["val_fraction"] < 1:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {data['val_fraction']!r}")
        n = round(len(text) * (1 - data["val_fraction"]))
        train_text, val_text = text[:n], (text[n:] if n < len(text) else None)
    if data["tokenizer"] == "char":
        tok = CharTokenizer.train(train_text + (val_text or ""))
    else:
        tok = load_tokenizer(data["tokenizer"])
    return (tok, encode_text(train_text, tok),
            encode_text(val_text, tok) if val_text is not None else None)


def write_log(path, history: list[dict]) -> None:
    """The training history as CSV, one row per step (``LOG_COLUMNS``, then any other metrics the
    task logged; blank when not measured)."""
    def fmt(v):
        return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
    columns = LOG_COLUMNS + tuple(dict.fromkeys(k for r in history for k in r
                                                if k not in LOG_COLUMNS))   # a task's metrics
    lines = [",".join(columns)]
    lines += [",".join(fmt(r.get(c)) for c in columns) for r in history]
    _atomic_write(Path(path), lambda p: p.write_text("\n".join(lines) + "\n", encoding="utf-8"))


def read_log(path) -> list[dict]:
    """Read ``write_log``'s CSV back: a list of dicts of floats (``step``/``tokens`` as int)."""
    rows = Path(path).read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    out = []
    for row in rows[1:]:
        rec = {}
        for k, v in zip(header, row.split(",")):
            if v:
                rec[k] = int(v) if k in ("step", "tokens") else float(v)
        out.append(rec)
    return out


def _data_record(data: dict, tok, train_ids, val_ids) -> dict:
    """What a checkpoint keeps of a run's data, to refuse resuming on other data."""
    def digest(ids):
        if ids is None:
            return None
        if not isinstance(ids, torch.Tensor):             # a synthetic source: its description
            return hashlib.sha256(repr(ids).encode()).hexdigest()
        return hashlib.sha256(ids.numpy().tobytes()).hexdigest()
    return {"data": data, "tokenizer": tok.to_dict(),
            "sha256": {"train": digest(train_ids), "val": digest(val_ids)}}


def check_resumable(resume_from, record: dict) -> int:
    """Raise ``CheckpointError`` if the checkpoint at ``resume_from`` was trained on other data
    than ``record`` (``_data_record``) describes; return its step."""
    import warnings

    from gptlib.checkpoint import CheckpointError, find_checkpoint
    with warnings.catch_warnings():             # a fall-back is reported when it is loaded
        warnings.simplefilter("ignore")
        path, meta = find_checkpoint(resume_from)
    saved = meta.get("info")
    if not isinstance(saved, dict) or "data" not in saved:
        return meta["step"]                     # a checkpoint written by train() directly
    then, now = saved["data"], record["data"]
    diff = [f"{k}: checkpoint {then.get(k)!r} vs config {now.get(k)!r}"
            for k in sorted(set(then) | set(now)) if then.get(k) != now.get(k)]
    if diff:
        raise CheckpointError(f"cannot resume {path}: the run config's data section differs from "
                              f"the one it was trained with ({'; '.join(diff)}); resume with the "
                              f"data it started on, or start a new run")
    if saved["tokenizer"] != record["tokenizer"]:
        raise CheckpointError(f"cannot resume {path}: the tokenizer differs from the one it was "
                              f"trained with (has the text or the tokenizer file changed?)")
    changed = [k for k in ("train", "val") if saved["sha256"][k] != record["sha256"][k]]
    if changed:
        raise CheckpointError(f"cannot resume {path}: the {' and '.join(changed)} token ids "
                              f"differ from those it was trained on (the text changed); resume "
                              f"with the data it started on, or start a new run")
    return meta["step"]


def run(config, *, out_dir=None, stop_after: int | None = None, checkpoint_dir=None,
        resume_from=None, progress: bool = True, command: str | None = None):
    """Train the model a run config describes; export it to ``out_dir`` (default: the config's).

    The model is initialised after ``set_seed(train.seed)``. ``stop_after``: stop after that many
    steps (the schedule still spans ``train.steps``, so the first steps are those of the full
    run). Writes ``model.safetensors``, ``config.json``, ``train_log.csv`` and, given
    ``command``, ``COMMAND``. Returns the ``TrainResult``. Checkpoints record the data section,
    the tokenizer and the token ids' sha256: resuming on other data is refused.
    """
    from gptlib import distributed as gdist
    from gptlib.utils import set_seed
    if stop_after is not None and (not isinstance(stop_after, int) or isinstance(stop_after, bool)
                                   or stop_after < 1):
        raise ValueError(f"stop_after must be a number of steps >= 1, got {stop_after!r}")
    cfg = load_run_config(config)
    tcfg = cfg["train"]
    tok, train_ids, val_ids = prepare_data(cfg["data"])
    record = _data_record(cfg["data"], tok, train_ids, val_ids)
    if resume_from is not None:
        done = check_resumable(resume_from, record)
        if stop_after is not None and stop_after <= done:
            raise ValueError(f"stop_after={stop_after} but the checkpoint at {resume_from} is "
                             f"already at step {done}; stop after a later step")
    model_cfg = {"block_size": tcfg.block_size, **cfg["model"]}
    if model_cfg.setdefault("vocab_size", tok.vocab_size) != tok.vocab_size:
        raise ValueError(f"model.vocab_size={model_cfg['vocab_size']} but the tokenizer has "
                         f"{tok.vocab_size} tokens; leave vocab_size out to use the tokenizer's")
    set_seed(tcfg.seed)
    model = GPT(GPTConfig.from_dict(model_cfg)).to(gdist.local_device())   # same init, all ranks
    task = None
    if cfg["data"]["source"] == "synthetic":
        from gptlib.synthetic import SequenceTask
        task = SequenceTask()
    result = train(model, train_ids, tcfg, val_ids, task=task, progress=progress,
                   callback=None if stop_after is None else (lambda r: r["step"] >= stop_after),
                   checkpoint_dir=checkpoint_dir, resume_from=resume_from, tokenizer=tok,
                   checkpoint_info=record)
    out = out_dir if out_dir is not None else cfg["out_dir"]
    if out is not None and gdist.is_main():                    # one rank writes
        results = {k: getattr(result, k) for k in ("final_val_loss", "final_train_loss", "steps",
                                                   "tokens", "elapsed_s", "stopped_early")}
        results.update(parameters=model.num_parameters(), torch_version=torch.__version__,
                       threads=torch.get_num_threads())
        if gdist.world_size() > 1:
            results.update(world_size=gdist.world_size(), parallel=tcfg.parallel,
                           state_bytes_rank0=result.state_bytes)
        if task is None and val_ids is not None and not result.stopped_early:   # all of it
            results["val_loss_all_windows"] = dataset_loss(model, val_ids, tcfg.block_size)
        save_pretrained(out, model, tok, train=tcfg.to_dict(), data=cfg["data"], results=results,
                        description=cfg["description"])
        write_log(Path(out) / "train_log.csv", result.history)
        if command is not None:
            _atomic_write(Path(out) / "COMMAND", lambda p: p.write_text(command + "\n"))
    return result


def main(argv=None) -> None:
    """python -m gptlib.pretrain --config configs/X.json: train a model from a run config, then
    export it with its training log and this command (see gptlib.runconfig)."""
    import argparse
    import shlex
    import sys
    import warnings

    from gptlib.pretrain import TrainingInterrupted

    def positive(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
        return value

    p = argparse.ArgumentParser(prog="python -m gptlib.pretrain", description=main.__doc__)
    p.add_argument("--config", required=True, help="run config (JSON), e.g. configs/smoke.json")
    p.add_argument("--out", help="export directory (default: the config's out_dir)")
    p.add_argument("--stop-after", type=positive,
                   help="stop after this many steps (same schedule)")
    p.add_argument("--checkpoint-dir", help="write resumable checkpoints here")
    p.add_argument("--resume", help="resume from this checkpoint directory")
    p.add_argument("--threads", type=positive, help="torch.set_num_threads(N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)            # a usage error exits with status 2
    if args.threads:
        torch.set_num_threads(args.threads)
    argv = sys.argv[1:] if argv is None else argv
    plain_warnings = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"

    def fail(message: str, status: int = 1):
        print(" ".join(f"error: {message}".split()), file=sys.stderr)    # one line
        raise SystemExit(status)

    from gptlib import distributed as gdist
    try:
        gdist.init_from_env()                  # under torchrun: join the group (gloo or nccl)
    except gdist.DistributedError as err:
        fail(str(err))
    launcher, main_rank = ["python"], gdist.is_main()
    if gdist.launched():
        launcher = ["torchrun", "--nproc_per_node", str(gdist.world_size())]
    try:
        result = run(args.config, out_dir=args.out, stop_after=args.stop_after,
                     checkpoint_dir=args.checkpoint_dir, resume_from=args.resume,
                     progress=not args.no_progress,
                     command=shlex.join([*launcher, "-m", "gptlib.pretrain", *argv]))
    except gdist.DistributedError as err:
        fail(f"(rank {gdist.rank()}) {err}")
    except TrainingInterrupted as stop:
        where = (f"checkpoint saved in {stop.checkpoint}; continue with --resume "
                 f"{Path(stop.checkpoint).parent}" if stop.checkpoint is not None else
                 "nothing saved (no --checkpoint-dir given)" if args.checkpoint_dir is None else
                 f"nothing saved ({stop.reason})" if stop.reason else "nothing saved")
        print(f"interrupted after step {stop.step}: {where}", file=sys.stderr)
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        fail("interrupted outside the training steps; no checkpoint was written", 130)
    except (ValueError, TypeError, OSError) as err:      # bad configs, files, a full disk
        fail(str(err) if not isinstance(err, OSError) or not err.filename else
             f"{err.strerror}: {err.filename}" if err.strerror else str(err))
    finally:
        warnings.formatwarning = plain_warnings
        gdist.shutdown()
    if main_rank:
        val = "n/a" if result.final_val_loss is None else f"{result.final_val_loss:.4f}"
        print(f"{result.steps} steps, {result.tokens} tokens in {result.elapsed_s:.0f} s; "
              f"validation loss {val}")

