"""Training runs on disk: resumable checkpoints and exported (pretrained) models.

A **checkpoint directory** (``save_checkpoint`` / ``load_checkpoint``) holds one subdirectory per
saved step and a pointer to the newest complete one::

    latest                  the name of the current checkpoint, e.g. "step-00000400"
    step-00000200/          the previous checkpoint, kept until the next one is committed
    step-00000400/          everything a run needs to continue exactly as if it had never stopped:
        model.safetensors       the weights (the tied lm_head/wte matrix stored once)
        optimizer.safetensors   AdamW's moments and step counts, and the random generators' states
        checkpoint.json         model and training configs, tokenizer, step, history, the
                                optimizer's hyper-parameters, the sha256 of both tensor files

A save writes the three files into a temporary directory (``.tmp-step-00000400-<pid>``), flushes
them to disk (``fsync``), renames the directory to ``step-00000400``, then replaces ``latest``
with ``os.replace`` — the single atomic step that switches the run to the new checkpoint, as a
whole. Only then are older step directories deleted (all but the previous one). A process killed
at any moment (``SIGKILL``, a full disk, a second Ctrl-C) therefore leaves ``latest`` naming a
complete checkpoint; what it was writing is a ``.tmp-*`` entry that the next save or run removes.
If the checkpoint ``latest`` names is damaged anyway (a disk error, a file edited by hand),
``load_checkpoint`` warns and falls back to the previous one. A directory holding
``checkpoint.json`` itself (one step directory, or a checkpoint of an older gptlib) loads too.

An **exported model** (``save_pretrained`` / ``load_pretrained``) is just ``model.safetensors``
plus ``config.json`` (model config, tokenizer, how it was trained, the weights' sha256) — what
``data/pretrained/`` ships. Tensors go to ``safetensors`` and everything else to JSON; no pickle is
ever loaded.

**What loading can and cannot detect.** With a recorded sha256 (every checkpoint and export this
module writes) any change to a tensor file is detected, down to one flipped bit. Without one (an
export of an older gptlib, a hand-made or third-party file) only what is visible in the file is
checked: that it is a complete safetensors file (its header and sizes), that it has exactly the
tensors the model needs with the model's shapes and a floating-point dtype, and that every value
is finite. A changed value that is still a finite number — a flipped mantissa bit — cannot be
detected without a checksum: the file loads, with slightly different weights. When
``config.json`` describes another model than the weights beside it (say, it was copied from another
export), the error names the tensors whose shapes differ rather than calling the file corrupt.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from gptlib.model import GPT, GPTConfig
from gptlib.trainconfig import TrainConfig
from gptlib.tokenizer import tokenizer_from_dict

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "find_checkpoint",
           "clean_temporary", "save_pretrained", "load_pretrained", "read_safetensors_header",
           "global_rng_state", "set_global_rng_state"]

FORMAT = "gptlib-checkpoint-1"
LATEST = "latest"
TMP_PREFIX = ".tmp-"
_STEP_DIR = re.compile(r"step-(\d{8,})")
# TrainConfig fields that may change when a run resumes: they do not change what is computed
# (steps does change the schedule's length; that is the point of extending a run)
RESUMABLE_CHANGES = {"steps", "eval_every", "eval_batches", "checkpoint_every"}
# for tests only: "kill|pause|sigint|enospc:STAGE:STEP[:N]" acts at the N-th time (default 1st)
# a save of step STEP reaches STAGE (one of SAVE_STAGES); several, comma-separated; see
# tests/test_crash.py
TEST_HOOK = "GPTLIB_TEST_HOOK"
SAVE_STAGES = ("model-partial", "model", "optimizer-partial", "optimizer", "json-partial", "json",
               "renamed", "latest-partial", "latest", "pruned")
_hook_calls: dict = {}
_ST_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
              "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32, "I16": torch.int16,
              "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


class CheckpointError(ValueError):
    """A checkpoint or exported model is missing, corrupt, truncated, or does not fit the model."""


class _Mismatch(CheckpointError):
    """Tensor names or shapes of a file differ from the model's."""


def _test_hook(stage: str, step) -> None:
    specs = os.environ.get(TEST_HOOK)
    if not specs:
        return
    _hook_calls[stage, step] = count = _hook_calls.get((stage, step), 0) + 1
    for spec in specs.split(","):
        action, where, at, *nth = spec.split(":")
        if where == stage and at == str(step) and count == (int(nth[0]) if nth else 1):
            _hook_act(action, stage, step)


def _hook_act(action: str, stage: str, step) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "sigint":
        os.kill(os.getpid(), signal.SIGINT)
    elif action == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device (simulated by GPTLIB_TEST_HOOK)")
    elif action == "pause":
        print(f"{TEST_HOOK}: paused at {stage} of step {step}", file=sys.stderr, flush=True)
        time.sleep(60)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_file(path: Path, data: bytes, stage: str = "", step=None) -> None:
    """Write ``data`` to ``path`` and flush it to disk (test hooks halfway and at the end)."""
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
        f.flush()
        _test_hook(f"{stage}-partial", step)
        f.write(data[len(data) // 2:])
        f.flush()
        os.fsync(f.fileno())
    _test_hook(stage, step)


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX; a no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write, stage: str = "", step=None) -> None:
    """``write(tmp_path)``, flush it to disk, then rename it to ``path`` in one step."""
    path = Path(path)
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        _test_hook(f"{stage}-partial", step)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _json_bytes(obj: dict) -> bytes:
    return (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _write_json(path: Path, obj: dict) -> None:
    _atomic_write(path, lambda p: p.write_bytes(_json_bytes(obj)))


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"no {what} at {path.parent}: {path.name} is missing")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is corrupt or truncated (not valid JSON: {err}); "
                              f"re-create the {what}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is not a {what}'s JSON (it holds a "
                              f"{type(meta).__name__}, not an object)")
    return meta


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


# ---- tensor files: what can be checked without a checksum ------------------------------------

def read_safetensors_header(path) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
    """``name -> (dtype, shape)`` of every tensor in a safetensors file, read from its header.

    Raises ``CheckpointError`` naming the file if it is missing, is not a safetensors file, or is
    truncated (a tensor's bytes lie past the end of the file). Reads only the header.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < n <= size - 8:
            raise CheckpointError(f"{path} is not a safetensors file or is truncated: "
                                  + (f"it has only {size} bytes" if n < 0 else
                                     f"its header claims {n} bytes but the file has {size}"))
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{path} is not a safetensors file (its header is not a JSON "
                              f"object), or it is damaged") from None
    out, data_size = {}, size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = _ST_DTYPES[entry["dtype"]], entry["shape"], \
                entry["data_offsets"]
            need = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
            ok = all(isinstance(d, int) and d >= 0 for d in shape) and end - begin == need
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{path} is not a valid safetensors file: the header entry of "
                                  f"tensor {name!r} is malformed ({entry!r})")
        if end > data_size:
            raise CheckpointError(f"{path} is truncated: tensor {name!r} needs bytes up to "
                                  f"{end} of the data but the file holds {data_size}")
        out[name] = (dtype, tuple(shape))
    return out


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    read_safetensors_header(path)
    try:
        return load_bytes(path.read_bytes())
    except (SafetensorError, OSError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"cannot read the tensors in {path}: {err}") from None


def _tied_groups(model: GPT) -> list[list[str]]:
    """The state dict's names, grouped by the tensor they share (the tied lm_head/wte matrix is
    one group of two names), each group sorted."""
    groups: dict = {}
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
        groups.setdefault(key, []).append(name)
    return [sorted(g) for g in groups.values()]


def _model_tensors(model: GPT) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor once, under its alphabetically first name (the one
    ``safetensors.torch.save_model`` keeps: ``lm_head.weight`` for the tied matrix)."""
    sd = model.state_dict()
    return {g[0]: sd[g[0]].detach().cpu().contiguous() for g in _tied_groups(model)}


def _check_model_file(path: Path, model: GPT, owner: str, exact_dtype: bool = False) -> None:
    """The file holds each of the model's tensors once (a tied one under either name), with the
    model's shape and a floating-point dtype (``exact_dtype``: the model's dtype)."""
    header, sd = read_safetensors_header(path), model.state_dict()
    missing, shapes, dtypes, known = [], [], [], set()
    for group in _tied_groups(model):
        known.update(group)
        present = [n for n in group if n in header]
        if not present:
            missing.append(group[0])
            continue
        (dtype, shape), want = header[present[0]], sd[group[0]]
        if shape != tuple(want.shape):
            shapes.append(f"{present[0]} is {shape} in the file but {tuple(want.shape)} for "
                          f"the model")
        elif exact_dtype and dtype != want.dtype:
            dtypes.append(f"{present[0]} is {dtype} in the file but {want.dtype} in the model")
    extra = sorted(set(header) - known)
    problems = ([f"missing tensors {missing}"] if missing else []) + \
               ([f"unexpected tensors {extra}"] if extra else []) + shapes[:4] + \
               ([f"... and {len(shapes) - 4} more shapes differ"] if len(shapes) > 4 else [])
    if problems:
        raise _Mismatch(f"the weights in {path} do not fit the model {owner} describes: "
                              + "; ".join(problems) + f" (is {owner} from another model?)")
    not_float = sorted(n for n, (dt, _) in header.items() if not dt.is_floating_point)
    if not_float:
        raise CheckpointError(f"{path} holds non-floating-point weights {not_float} "
                              f"({header[not_float[0]][0]}); a GPT's weights are floats")
    if dtypes:
        raise CheckpointError(f"{path} holds weights of another dtype than the model's: "
                              + "; ".join(dtypes[:4]) + "; build the model in the saved dtype")


def _check_finite(tensors: dict[str, torch.Tensor], path: Path) -> None:
    bad = {n: int((~torch.isfinite(t)).sum()) for n, t in tensors.items()
           if t.is_floating_point() and not torch.isfinite(t).all()}
    if bad:
        listed = ", ".join(f"{n} ({k} values)" for n, k in sorted(bad.items())[:4])
        raise CheckpointError(f"{path} holds non-finite values (NaN or inf) in {listed}"
                              f"{' and more' if len(bad) > 4 else ''}: the run had diverged "
                              f"when it was saved, or the file is damaged")


def _load_model_file(path: Path, model: GPT, owner: str, exact_dtype: bool = False) -> None:
    _check_model_file(path, model, owner, exact_dtype)
    tensors = _read_tensors(path)
    _check_finite(tensors, path)
    device = next(model.parameters()).device
    with torch.no_grad():
        missing, unexpected = model.load_state_dict(
            {n: t.to(device) for n, t in tensors.items()}, strict=False)
    loaded = {n for g in _tied_groups(model) if set(g) & set(tensors) for n in g}
    if unexpected or set(missing) - loaded:                # _check_model_file rules this out
        raise CheckpointError(f"{path} does not fit the model: missing {missing}, "
                              f"unexpected {unexpected}")


# ---- random generators -----------------------------------------------------------------------

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


# ---- checkpoints -----------------------------------------------------------------------------

def _step_of(path: Path) -> int | None:
    m = _STEP_DIR.fullmatch(path.name)
    return int(m.group(1)) if m and path.is_dir() else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def clean_temporary(directory) -> list[str]:
    """Remove what interrupted saves left in ``directory`` (``.tmp-*`` files and directories of
    processes no longer running, or of this one); return their names."""
    root, removed = Path(directory), []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        if not entry.name.startswith(TMP_PREFIX):
            continue
        pid = entry.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
            continue                                        # another live process is saving
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


def _prune(root: Path, keep: Path) -> None:
    """Delete every step directory but ``keep`` and the newest one before it."""
    older = sorted((s, p) for p in root.iterdir() if (s := _step_of(p)) is not None
                   and p != keep)
    previous = [p for s, p in older if s < _step_of(keep)][-1:]
    for _, p in older:
        if p not in previous:
            trash = root / f"{TMP_PREFIX}prune-{p.name}-{os.getpid()}"
            os.replace(p, trash)                            # atomic: gone from the step list
            shutil.rmtree(trash, ignore_errors=True)


def save_checkpoint(directory, model: GPT, optimizer: torch.optim.Optimizer, cfg: TrainConfig, *,
                    step: int, history: list[dict], rng: dict[str, torch.Tensor],
                    tokenizer=None, info: dict | None = None) -> Path:
    """Save a resumable checkpoint of ``step`` in ``directory`` (created if needed) and make it
    the one ``latest`` names; return its step directory (see the module docstring).

    rng: named generator states (``train`` passes its batch generator as ``"batches"``, and the
    global ones as they were at the end of ``step``); global ones not given are taken now
    (``global_rng_state``). ``info``: JSON-serialisable facts about the run to keep with it
    (``gptlib.runconfig`` stores the data section, to refuse a resume on other data).
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    clean_temporary(root)
    opt = optimizer.state_dict()
    tensors, plain_state = {}, {}
    for pid, slots in opt["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain_state.setdefault(str(pid), {})[key] = value
    for name, value in {**global_rng_state(), **rng}.items():
        tensors[f"rng.{name}"] = value.cpu().contiguous()
    blobs = {"model.safetensors": save_bytes(_model_tensors(model), metadata={"format": "pt"}),
             "optimizer.safetensors": save_bytes(tensors)}
    meta = {"format": FORMAT, "step": step, "model_config": model.config.to_dict(),
            "train_config": cfg.to_dict(),
            "tokenizer": tokenizer.to_dict() if tokenizer is not None else None,
            "history": history, "param_groups": opt["param_groups"], "plain_state": plain_state,
            "info": info, "files": {n: hashlib.sha256(b).hexdigest() for n, b in blobs.items()}}
    final = root / f"step-{step:08d}"
    tmp = root / f"{TMP_PREFIX}{final.name}-{os.getpid()}"
    try:
        tmp.mkdir()
        for name, data in blobs.items():
            _write_file(tmp / name, data, name.split(".")[0], step)
        _write_file(tmp / "checkpoint.json", _json_bytes(meta), "json", step)
        _fsync_dir(tmp)
        if final.exists():              # an uncommitted leftover, or this step saved before
            os.replace(final, root / f"{TMP_PREFIX}old-{final.name}-{os.getpid()}")
        os.replace(tmp, final)
        _fsync_dir(root)
        _test_hook("renamed", step)
        _atomic_write(root / LATEST, lambda p: p.write_text(final.name + "\n", encoding="utf-8"),
                      "latest", step)
    except OSError as err:                  # a full disk, a read-only directory, ...
        raise OSError(err.errno, f"cannot save the checkpoint of step {step} in {root}: "
                      f"{err.strerror or err}; the checkpoint 'latest' names there is intact") \
            from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _test_hook("latest", step)
    _prune(root, final)
    clean_temporary(root)
    _test_hook("pruned", step)
    return final


def _verify(path: Path) -> dict:
    """The metadata of the checkpoint in ``path`` once its files are checked (else raise)."""
    meta = _read_json(path / "checkpoint.json", "checkpoint")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path / 'checkpoint.json'} is not a {FORMAT} checkpoint")
    missing = [k for k in ("step", "model_config", "train_config", "history", "param_groups",
                           "plain_state") if k not in meta]
    if missing:
        raise CheckpointError(f"{path / 'checkpoint.json'} is incomplete: it has no {missing}")
    if meta.get("files"):
        _check_files(path, meta["files"], "checkpoint")
    else:                               # no checksums: check what the files themselves show
        for name in ("model.safetensors", "optimizer.safetensors"):
            read_safetensors_header(path / name)
    return meta


def find_checkpoint(directory) -> tuple[Path, dict]:
    """``(step directory, its checkpoint.json)`` of the checkpoint ``load_checkpoint`` would load.

    That is the one ``latest`` names if its files check out, else (with a warning) the newest
    older one that does; a directory holding ``checkpoint.json`` itself is taken as it is.
    Raises ``CheckpointError`` if there is none, saying what is wrong with each candidate.
    """
    root = Path(directory)
    if not root.is_dir():
        raise CheckpointError(f"no checkpoint at {root}: the directory does not exist")
    if (root / "checkpoint.json").exists() or not (root / LATEST).exists() and \
            not any(_step_of(p) is not None for p in root.iterdir()):
        return root, _verify(root)
    steps = sorted(((s, p) for p in root.iterdir() if (s := _step_of(p)) is not None),
                   reverse=True)
    named = (root / LATEST).read_text(encoding="utf-8", errors="replace").strip() \
        if (root / LATEST).is_file() else None
    target = root / named if named and _STEP_DIR.fullmatch(named) else None
    if target is not None:
        steps = [(s, p) for s, p in steps if s < int(_STEP_DIR.fullmatch(named).group(1))]
        candidates = [target] + [p for _, p in steps]
    else:
        candidates = [p for _, p in steps]
    # no `latest` at all: the first save was cut short after its directory was complete
    problems = [] if target is not None or named is None else \
        [f"{root / LATEST} is damaged ({named!r} is not a step directory)"]
    for path in candidates:
        try:
            meta = _verify(path)
        except CheckpointError as err:
            problems.append(str(err))
            continue
        if problems:
            warnings.warn(f"{'; '.join(problems)}; falling back to the checkpoint at {path} "
                          f"(step {meta['step']})", stacklevel=2)
        return path, meta
    if target is not None and not target.is_dir():
        problems[0] = f"{root / LATEST} names {named}, which is missing"
    raise CheckpointError(f"no usable checkpoint at {root}: " + "; ".join(problems or [
        "it holds no step directory"]))


def load_checkpoint(directory, model: GPT, optimizer: torch.optim.Optimizer | None = None,
                    cfg: TrainConfig | None = None) -> dict:
    """Load a checkpoint into ``model`` (and ``optimizer``); return the rest of its state.

    ``directory``: a checkpoint directory (``latest`` is followed, see ``find_checkpoint``) or
    one step directory. Returns a dict with ``step``, ``history``, ``rng`` (name -> state
    tensor), ``train_config`` (a ``TrainConfig``), ``tokenizer`` (or None), ``info`` (or None) and
    ``path`` (the step directory loaded). Raises ``CheckpointError`` if no checkpoint there is
    intact, if the model's config differs from the checkpoint's, or if ``cfg`` differs in a field
    other than ``RESUMABLE_CHANGES``. Nothing is changed in ``model`` or ``optimizer`` unless
    everything checks out.
    """
    root, meta = find_checkpoint(directory)
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
    owner = str(root / "checkpoint.json")
    _check_model_file(root / "model.safetensors", model, owner, exact_dtype=True)
    tensors = _read_tensors(root / "optimizer.safetensors")
    _check_finite(tensors, root / "optimizer.safetensors")
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, pid, slot = key.split(".", 2)
            state.setdefault(int(pid), {})[slot] = value.to(device)
    for pid, slots in meta["plain_state"].items():
        state.setdefault(int(pid), {}).update(slots)
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else g
              for g in meta["param_groups"]]
    if optimizer is not None:
        backup = optimizer.state_dict()
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as err:
            optimizer.load_state_dict(backup)
            raise CheckpointError(f"the optimizer state at {root} does not fit this optimizer: "
                                  f"{err}") from None
    _load_model_file(root / "model.safetensors", model, owner, exact_dtype=True)
    tok = meta.get("tokenizer")
    return {"step": meta["step"], "history": meta["history"], "train_config": saved_cfg,
            "rng": {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")},
            "tokenizer": tokenizer_from_dict(tok) if tok is not None else None,
            "info": meta.get("info"), "path": root}


# ---- exported models -------------------------------------------------------------------------

def save_pretrained(directory, model: GPT, tokenizer=None, **info) -> Path:
    """Export ``model`` for use (no optimizer state): ``model.safetensors`` + ``config.json``.

    ``info``: more JSON-serialisable sections for ``config.json`` (e.g. ``train=cfg.to_dict()``,
    ``results={...}``), kept as they are.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    clean_temporary(root)
    data = save_bytes(_model_tensors(model), metadata={"format": "pt"})
    _atomic_write(root / "model.safetensors", lambda p: _write_file(p, data))
    _write_json(root / "config.json", {
        "model": model.config.to_dict(),
        "tokenizer": tokenizer.to_dict() if tokenizer is not None else None, **info,
        "files": {"model.safetensors": hashlib.sha256(data).hexdigest()}})
    return root


def load_pretrained(directory, device="cpu"):
    """Load an exported model: returns ``(model, tokenizer, config)``, the model in eval mode.

    ``config`` is the whole ``config.json`` as a dict; ``tokenizer`` is None if none was saved.
    The model takes the weights' dtype if they are all of one floating-point dtype.
    """
    root = Path(directory)
    meta = _read_json(root / "config.json", "exported model")
    if not isinstance(meta.get("model"), dict):
        hint = (" it is a Hugging Face config: load it with gptlib.gpt2.load_hf_checkpoint"
                if "model_type" in meta else " is it an exported gptlib model?")
        raise CheckpointError(f"{root / 'config.json'} has no 'model' section;{hint}")
    try:
        config = GPTConfig.from_dict(meta["model"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"the 'model' section of {root / 'config.json'} is not a valid "
                              f"GPTConfig: {err}") from None
    model = GPT(config)
    weights = root / "model.safetensors"
    if meta.get("files"):
        try:
            _check_files(root, meta["files"], "exported model")
        except CheckpointError as corrupt:
            try:                        # config.json copied from another model? Say so.
                _check_model_file(weights, model, str(root / "config.json"))
            except _Mismatch as mismatch:
                raise mismatch from None
            except CheckpointError:
                pass
            raise corrupt
    _check_model_file(weights, model, str(root / "config.json"))
    dtypes = {dt for dt, _ in read_safetensors_header(weights).values()}
    model = model.to(device=device, dtype=dtypes.pop() if len(dtypes) == 1 else None)
    _load_model_file(weights, model, str(root / "config.json"))
    tok = meta.get("tokenizer")
    return model.eval(), (tokenizer_from_dict(tok) if tok is not None else None), meta
