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
        raise CheckpointError(f"cannot read the tensors of the checkpoint at {root}: "
                              f"{err}") from None
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

