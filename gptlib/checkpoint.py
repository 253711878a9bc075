"""Training runs on disk: resumable checkpoints and exported (pretrained) models.

A **checkpoint** (``save_checkpoint`` / ``load_checkpoint``) is a directory holding everything a
run needs to continue exactly as if it had never stopped::

    model.safetensors       the weights (the tied lm_head/wte matrix stored once)
    optimizer.safetensors   AdamW's moments and step counts, and the random generators' states
    checkpoint.json         model and training configs, tokenizer, step, history, the
                            optimizer's hyper-parameters, and the sha256 of both tensor files

An **exported model** (``save_pretrained`` / ``load_pretrained``) is just ``model.safetensors``
plus ``config.json`` (model config, tokenizer, and how it was trained) — what ``data/pretrained/``
ships. Tensors go to ``safetensors`` and everything else to JSON; no pickle is ever loaded.

Every file is written to a temporary name and renamed into place (``os.replace`` is atomic), and
the JSON, written last, records the tensor files' checksums: a crash mid-save leaves either the
old checkpoint or a mismatch that ``load_checkpoint`` reports, never a silently mixed state.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from gptlib.model import GPT, GPTConfig
from gptlib.pretrain import TrainConfig
from gptlib.tokenizer import tokenizer_from_dict

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "save_pretrained",
           "load_pretrained", "global_rng_state", "set_global_rng_state"]

FORMAT = "gptlib-checkpoint-1"
# TrainConfig fields that may change when a run resumes: they do not change what is computed
# (steps does change the schedule's length; that is the point of extending a run)
RESUMABLE_CHANGES = {"steps", "eval_every", "eval_batches", "checkpoint_every"}


class CheckpointError(ValueError):
    """A checkpoint or exported model is missing, corrupt, truncated, or does not fit the model."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """``write(tmp_path)``, flush it to disk, then rename it to ``path`` in one step."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_json(path: Path, obj: dict) -> None:
    _atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n",
                                               encoding="utf-8"))


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"no {what} at {path.parent}: {path.name} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated (not valid JSON: {err}); "
                              f"re-create the {what}") from None


def _check_files(root: Path, sums: dict, what: str) -> None:
    for name, digest in sums.items():
        path = root / name
        if not path.is_file():
            raise CheckpointError(f"{what} at {root} is incomplete: {name} is missing")
        if _sha256(path) != digest:
            raise CheckpointError(f"{path} is corrupt or truncated: its sha256 does not match the "
                                  f"one recorded when the {what} was written; re-create the {what}")


def _check_config(model: GPT, saved: dict, source: Path) -> None:
    if not isinstance(model, GPT):
        raise TypeError(f"expected a gptlib GPT, got {type(model).__name__}")
    current = model.config.to_dict()
    diff = [f"{k}: checkpoint {saved.get(k)!r} vs model {current.get(k)!r}"
            for k in sorted(set(current) | set(saved)) if saved.get(k) != current.get(k)]
    if diff:
        raise CheckpointError(f"the checkpoint at {source} is for a different model ("
                              + "; ".join(diff) + "); build the model with GPTConfig.from_dict("
                              "its model_config)")


def global_rng_state() -> dict[str, torch.Tensor]:
    """PyTorch's global generators (dropout draws from them): CPU and, if present, every GPU."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return state


def set_global_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch"])
    cuda = [state[k] for k in sorted(state) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(directory, model: GPT, optimizer: torch.optim.Optimizer, cfg: TrainConfig, *,
                    step: int, history: list[dict], rng: dict[str, torch.Tensor],
                    tokenizer=None) -> Path:
    """Write a resumable checkpoint to ``directory`` (created if needed); return its path.

    rng: named generator states (``train`` passes its batch generator as ``"batches"``); the
    global ones (``global_rng_state``) are added here.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    opt = optimizer.state_dict()
    tensors, plain_state = {}, {}
    for pid, slots in opt["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(pid), {})[key] = value
    for name, value in {**rng, **global_rng_state()}.items():
        tensors[f"rng.{name}"] = value.cpu().contiguous()
    _atomic_write(root / "model.safetensors", lambda p: save_model(model, str(p)))
    _atomic_write(root / "optimizer.safetensors", lambda p: save_file(tensors, str(p)))
    _write_json(root / "checkpoint.json", {
        "format": FORMAT, "step": step, "model_config": model.config.to_dict(),
        "train_config": cfg.to_dict(),
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
        "history": history, "param_groups": opt["param_groups"], "plain_state": plain_state,
        "files": {n: _sha256(root / n) for n in ("model.safetensors", "optimizer.safetensors")}})
    return root


def load_checkpoint(directory, model: GPT, optimizer: torch.optim.Optimizer | None = None,
                    cfg: TrainConfig | None = None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``); return the rest of its state.

    Returns a dict with ``step``, ``history``, ``rng`` (name -> state tensor), ``train_config``
    (a ``TrainConfig``) and ``tokenizer`` (or None). Raises ``CheckpointError`` if the files are
    missing, corrupt or truncated, if the model's config differs from the checkpoint's, or if
    ``cfg`` differs in a field other than ``RESUMABLE_CHANGES``.
    """
    root = Path(directory)
    meta = _read_json(root / "checkpoint.json", "checkpoint")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{root / 'checkpoint.json'} is not a {FORMAT} checkpoint")
    _check_files(root, meta["files"], "checkpoint")
    _check_config(model, meta["model_config"], root)
    saved_cfg = TrainConfig.from_dict(meta["train_config"])
    if cfg is not None:
        diff = [k for k, v in cfg.to_dict().items()
                if k not in RESUMABLE_CHANGES and saved_cfg.to_dict()[k] != v]
        if diff:
            raise CheckpointError(f"cannot resume the checkpoint at {root} exactly: its training "
                                  f"config differs in {diff}; only {sorted(RESUMABLE_CHANGES)} may "
                                  f"change between an interruption and its resumption")
    device = next(model.parameters()).device
    try:
        load_model(model, root / "model.safetensors", device=str(device))
        tensors = load_file(root / "optimizer.safetensors")
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"cannot read the tensors of the checkpoint at {root}: {err}") from None
    if optimizer is not None:
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith("state."):
                _, pid, slot = key.split(".", 2)
                state.setdefault(int(pid), {})[slot] = value.to(device)
        for pid, slots in meta["plain_state"].items():
            state.setdefault(int(pid), {}).update(slots)
        groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g
                  for g in meta["param_groups"]]
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"the optimizer state at {root} does not fit this optimizer: "
                                  f"{err}") from None
    tok = meta.get("tokenizer")
    return {"step": meta["step"], "history": meta["history"], "train_config": saved_cfg,
            "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")},
            "tokenizer": tokenizer_from_dict(tok) if tok is not None else None}


def save_pretrained(directory, model: GPT, tokenizer=None, **info) -> Path:
    """Export ``model`` for use (no optimizer state): ``model.safetensors`` + ``config.json``.

    ``info``: more JSON-serialisable sections for ``config.json`` (e.g. ``train=cfg.to_dict()``,
    ``results={...}``), kept as they are.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    _atomic_write(root / "model.safetensors", lambda p: save_model(model, str(p)))
    _write_json(root / "config.json", {
        "model": model.config.to_dict(),
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None, **info,
        "files": {"model.safetensors": _sha256(root / "model.safetensors")}})
    return root


def load_pretrained(directory, device="cpu"):
    """Load an exported model: returns ``(model, tokenizer, config)``, the model in eval mode.

    ``config`` is the whole ``config.json`` as a dict; ``tokenizer`` is None if none was saved.
    """
    root = Path(directory)
    meta = _read_json(root / "config.json", "exported model")
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{root / 'config.json'} has no 'model' section; is it an exported "
                              f"gptlib model?")
    if "files" in meta:
        _check_files(root, meta["files"], "exported model")
    model = GPT(GPTConfig.from_dict(meta["model"])).to(device)
    try:
        load_model(model, root / "model.safetensors", device=str(device))
    except (SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"cannot load the weights at {root}: {err}") from None
    tok = meta.get("tokenizer")
    return model.eval(), (tokenizer_from_dict(tok) if tok is not None else None), meta


# ---- run configs: the files in configs/ that `python -m gptlib.pretrain --config` reads ----------

RUN_KEYS = ("description", "model", "train", "data", "out_dir")
DATA_DEFAULTS = {"source": "corpus", "train_split": "train", "val_split": "val",
                 "tokenizer": "char", "path": None, "val_fraction": 0.1}
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
                   "tokenizer": "char" or the path of a saved tokenizer (JSON)},
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
    if data["source"] not in ("corpus", "text"):
        raise ValueError(f"data.source must be 'corpus' or 'text', got {data['source']!r}")
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
    """The training history as CSV, one row per step (``LOG_COLUMNS``; blank when not measured)."""
    def fmt(v):
        return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
    lines = [",".join(LOG_COLUMNS)]
    lines += [",".join(fmt(r.get(c)) for c in LOG_COLUMNS) for r in history]
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


def run(config, *, out_dir=None, stop_after: int | None = None, checkpoint_dir=None,
        resume_from=None, progress: bool = True, command: str | None = None):
    """Train the model a run config describes; export it to ``out_dir`` (default: the config's).

    The model is initialised after ``set_seed(train.seed)``. ``stop_after``: stop after that many
    steps (the schedule still spans ``train.steps``, so the first steps are those of the full
    run). Writes ``model.safetensors``, ``config.json``, ``train_log.csv`` and, given
    ``command``, ``COMMAND``. Returns the ``TrainResult``.
    """
    from gptlib.pretrain import dataset_loss, train
    from gptlib.utils import set_seed
    cfg = load_run_config(config)
    tcfg = cfg["train"]
    tok, train_ids, val_ids = prepare_data(cfg["data"])
    model_cfg = {"block_size": tcfg.block_size, **cfg["model"]}
    if model_cfg.setdefault("vocab_size", tok.vocab_size) != tok.vocab_size:
        raise ValueError(f"model.vocab_size={model_cfg['vocab_size']} but the tokenizer has "
                         f"{tok.vocab_size} tokens; leave vocab_size out to use the tokenizer's")
    set_seed(tcfg.seed)
    model = GPT(GPTConfig.from_dict(model_cfg))
    result = train(model, train_ids, tcfg, val_ids, progress=progress,
                   callback=None if stop_after is None else (lambda r: r["step"] >= stop_after),
                   checkpoint_dir=checkpoint_dir, resume_from=resume_from, tokenizer=tok)
    out = out_dir if out_dir is not None else cfg["out_dir"]
    if out is not None:
        results = {k: getattr(result, k) for k in ("final_val_loss", "final_train_loss", "steps",
                                                   "tokens", "elapsed_s", "stopped_early")}
        results.update(parameters=model.num_parameters(), torch_version=torch.__version__,
                       threads=torch.get_num_threads())
        if val_ids is not None:     # the whole validation split, not a random sample of it
            results["val_loss_all_windows"] = dataset_loss(model, val_ids, tcfg.block_size)
        save_pretrained(out, model, tok, train=tcfg.to_dict(), data=cfg["data"], results=results,
                        description=cfg["description"])
        write_log(Path(out) / "train_log.csv", result.history)
        if command is not None:
            _atomic_write(Path(out) / "COMMAND", lambda p: p.write_text(command + "\n"))
    return result
