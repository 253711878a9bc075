"""Chapter 9: many processes on PyTorch's distributed engine (``torch.distributed``).

``torchrun --nproc_per_node N -m gptlib.pretrain --config ...`` starts N copies of the training
program and tells each one who it is through environment variables (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). ``init_from_env`` reads them and joins the
process group: backend ``nccl`` when the process has a CUDA device, ``gloo`` on CPU.

Two ways to train one model on N processes, both PyTorch's own (``wrap``):

* **data parallelism** (``"ddp"``, ``DistributedDataParallel``, Li et al. 2020): every rank holds
  the whole model, optimizer state and gradients; each computes the gradient of its slice of the
  batch, and DDP averages the gradients across ranks (an all-reduce, overlapped with backward)
  before the optimizer step, so every rank takes the same step and the copies stay identical;
* **fully sharded data parallelism** (``"fsdp"``, FSDP2's ``fully_shard``, Zhao et al. 2023, after
  ZeRO, Rajbhandari et al. 2020): each rank *stores* only 1/N of every parameter, gradient and
  optimizer moment. Before a block runs, its full weights are all-gathered; after backward its
  gradients are reduce-scattered, each rank keeping the average of its own shard. Memory for the
  model state falls by N; the arithmetic is the same as DDP's.

The batch split (``batch_slice``) is the caller's: ``gptlib.pretrain.train`` draws each global
batch from one seeded generator on every rank and keeps rank r's r-th slice, so N ranks with a
global batch B compute what one process computes with batch B.
"""

from __future__ import annotations

import copy
import os

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["PARALLEL", "DistributedError", "launched", "init_from_env", "shutdown", "is_active",
           "rank", "world_size", "is_main", "local_device", "batch_slice", "wrap", "unwrap",
           "full_state_dict", "state_bytes", "all_sum"]

PARALLEL = ("ddp", "fsdp")
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(RuntimeError):
    """A launch or a configuration that a distributed run cannot work with."""


def launched() -> bool:
    """True when this process was started by ``torchrun`` (or another launcher setting RANK)."""
    return "RANK" in os.environ or "WORLD_SIZE" in os.environ


def init_from_env(backend: str | None = None) -> str | None:
    """Join the process group ``torchrun`` describes in the environment; return the backend.

    Does nothing (returns None) when not launched, or when the group already exists. The backend
    is ``nccl`` if CUDA is available (each rank then uses ``cuda:LOCAL_RANK``), else ``gloo``.
    """
    if not launched():
        return None
    if dist.is_initialized():
        return dist.get_backend()
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise DistributedError(f"this process looks launched for distributed training (RANK or "
                               f"WORLD_SIZE is set) but {missing} are not; start it with "
                               f"`torchrun --nproc_per_node N -m gptlib.pretrain ...`, or unset "
                               f"RANK/WORLD_SIZE to train in one process")
    try:
        r, n = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    except ValueError:
        raise DistributedError(f"RANK={os.environ['RANK']!r} and WORLD_SIZE="
                               f"{os.environ['WORLD_SIZE']!r} must be integers") from None
    if not 0 <= r < n:
        raise DistributedError(f"RANK={r} is not in 0..WORLD_SIZE-1 = 0..{n - 1}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend)
    return backend


def shutdown() -> None:
    """Leave the process group (if any)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def is_active() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (or in a single process): the one rank that logs and writes files."""
    return rank() == 0


def local_device() -> torch.device:
    """``cuda:LOCAL_RANK`` under nccl, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def batch_slice(global_batch: int, r: int | None = None, n: int | None = None) -> slice:
    """The rows of a global batch that rank ``r`` of ``n`` trains on: a contiguous 1/n slice."""
    r = rank() if r is None else r
    n = world_size() if n is None else n
    if global_batch % n:
        raise DistributedError(f"the global batch of {global_batch} does not divide by the "
                               f"{n} processes; use a batch_size that is a multiple of {n}")
    b = global_batch // n
    return slice(r * b, (r + 1) * b)


def wrap(model: nn.Module, parallel: str = "ddp") -> nn.Module:
    """The model prepared for training on every rank of the group.

    ``"ddp"``: ``DistributedDataParallel(model)``, sharing ``model``'s parameters (rank 0's
    values are broadcast to all at construction). ``"fsdp"``: a *copy* of ``model`` sharded with
    ``fully_shard`` (each block, then the root: wte/ln_f/lm_head); its parameters become
    ``DTensor`` shards, so ``model`` itself is left whole (``full_state_dict`` brings the result
    back).
    """
    if parallel not in PARALLEL:
        raise DistributedError(f"parallel={parallel!r} is unknown; choose one of {PARALLEL}")
    if not is_active():
        return model
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel
        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda"
                                       else None)
    from torch.distributed.fsdp import fully_shard
    sharded = copy.deepcopy(model)
    for block in getattr(sharded, "h", []):
        fully_shard(block)
    fully_shard(sharded)
    return sharded


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (FSDP2 modules are their own module)."""
    return getattr(model, "module", model)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer whole, on every rank (a collective under FSDP: call on all)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    if not is_active():
        return unwrap(model).state_dict()
    return get_model_state_dict(unwrap(model), options=StateDictOptions(full_state_dict=True))


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Bytes this rank stores for parameters, gradients and optimizer state (its shards only).

    A tied matrix counts once. Under DDP every rank holds all of them; under FSDP each holds 1/N.
    """
    params = {id(p): p for p in model.parameters()}.values()
    out = {"parameters": sum(_local(p).numel() * p.element_size() for p in params),
           "gradients": sum(_local(p.grad).numel() * p.grad.element_size()
                            for p in params if p.grad is not None),
           "optimizer": 0}
    if optimizer is not None:
        for state in optimizer.state.values():
            for v in state.values():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    out["optimizer"] += _local(v).numel() * v.element_size()
    out["total"] = out["parameters"] + out["gradients"] + out["optimizer"]
    return out


def all_sum(value: float, counts: dict | None = None):
    """``value`` and each number in ``counts`` summed over all ranks (one all-reduce).

    Returns ``(total, summed counts)``; outside a group, the inputs unchanged. Only for logging:
    the gradients are averaged by DDP/FSDP themselves.
    """
    counts = dict(counts or {})
    if not is_active():
        return value, counts
    keys = sorted(counts)
    t = torch.tensor([float(value)] + [float(counts[k]) for k in keys], dtype=torch.float64,
                     device=local_device())
    dist.all_reduce(t)
    out = {k: (round(v) if isinstance(counts[k], int) else v)
           for k, v in zip(keys, t[1:].tolist())}
    return t[0].item(), out
