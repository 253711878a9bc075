"""Chapter 9: the arithmetic of scale — memory, compute, and the laws of scale.

Memory for training (bytes per parameter, before activations)::

    fp32 + AdamW:           4 (weights) + 4 (gradients) + 4 + 4 (Adam's two moments)   = 16
    mixed precision (bf16): 2 (bf16 weights) + 2 (bf16 gradients)
                            + 4 (fp32 master weights) + 4 + 4 (moments)               = 16

Mixed precision does not shrink the model state (Micikevicius et al. 2018 keep an fp32 master
copy); it halves the activations and runs the matmuls on faster units. GPT-3's 175B parameters
need 175e9 x 16 B = 2.8 TB of state, 35 devices of 80 GB before a single activation is stored.

Activations of one transformer layer (Korthikanti et al. 2022, eq. 1, 16-bit values, with
dropout): ``s b h (34 + 5 a s / h)`` bytes, for sequence length s, micro-batch b, width h and
a heads — ``activation_bytes`` splits the count into what each operation stores.

The laws of scale: Kaplan et al. (2020) fit ``L(N) = (N_c / N)^alpha_N`` with
alpha_N = 0.076, N_c = 8.8e13 non-embedding parameters; Hoffmann et al. (2022, "Chinchilla")
fit ``L(N, D) = E + A / N^alpha + B / D^beta`` (E = 1.69, A = 406.4, B = 410.7, alpha = 0.34,
beta = 0.28) and find the compute-optimal model grows as N ~ C^0.5, with about 20 tokens per
parameter. ``fit_power_law`` fits ``L(N) = L_inf + (N_c / N)^alpha`` to measured points.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["BYTES_PER_PARAM", "GPT3", "KAPLAN", "CHINCHILLA", "training_state_bytes",
           "devices_needed", "activation_bytes", "saved_activation_bytes", "fit_power_law",
           "power_law", "chinchilla_optimal", "chinchilla_loss", "training_days",
           "training_compute"]

# bytes per parameter of training state with AdamW: weights, gradients, optimizer (+ master)
BYTES_PER_PARAM = {
    "fp32": {"weights": 4, "gradients": 4, "adam_moments": 8, "master_weights": 0},
    "mixed": {"weights": 2, "gradients": 2, "adam_moments": 8, "master_weights": 4},
}
# Brown et al. 2020, Table 2.1 and sec. 2.3 / D: the largest model
GPT3 = {"params": 175e9, "n_layer": 96, "d_model": 12288, "n_head": 96, "n_ctx": 2048,
        "tokens": 300e9, "batch_tokens": 3.2e6, "train_flops": 3.14e23}
KAPLAN = {"alpha_N": 0.076, "N_c": 8.8e13, "alpha_D": 0.095, "D_c": 5.4e13}
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28,
              "tokens_per_param": 20}


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def training_state_bytes(n_params: float, precision: str = "mixed",
                         shards: int = 1) -> dict[str, float]:
    """Bytes of weights, gradients and AdamW state for ``n_params`` parameters, per device.

    ``shards``: how many devices share the state (FSDP / ZeRO-3 divide every part by it; plain
    data parallelism is ``shards=1`` however many devices there are).
    """
    if precision not in BYTES_PER_PARAM:
        raise ValueError(f"precision {precision!r} is unknown; choose one of "
                         f"{list(BYTES_PER_PARAM)}")
    n = _positive("n_params", n_params)
    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive int, got {shards!r}")
    out = {k: n * v / shards for k, v in BYTES_PER_PARAM[precision].items()}
    out["total"] = sum(out.values())
    return out


def devices_needed(total_bytes: float, device_bytes: float = 80e9) -> int:
    """The fewest devices of ``device_bytes`` whose memory holds ``total_bytes`` (state only)."""
    return math.ceil(_positive("total_bytes", total_bytes) / _positive("device_bytes",
                                                                       device_bytes))


def activation_bytes(s: int, b: int, h: int, a: int, *, bytes_per_value: int = 2,
                     dropout: bool = True) -> dict[str, int]:
    """Activation memory one transformer layer keeps for backward (Korthikanti et al. 2022).

    s: sequence length, b: micro-batch, h: width, a: heads. Counted per operation (values of
    ``bytes_per_value`` bytes; dropout masks 1 byte each)::

        attention: LN output sbh, Q and K 2sbh, softmax output a s² b, V sbh, proj input sbh
                   (+ with dropout: its mask a s² b bytes and output a s² b, output mask sbh)
        MLP:       input sbh, GELU input 4sbh, GELU output 4sbh       (+ mask sbh bytes)
        norms:     two LayerNorm inputs 2sbh

    With 2-byte values and dropout the total is ``sbh (34 + 5 a s / h)``, the paper's eq. 1.
    """
    for name, v in (("s", s), ("b", b), ("h", h), ("a", a)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    sbh, as2b, v = s * b * h, a * s * s * b, bytes_per_value
    out = {"attention": v * (5 * sbh + as2b), "mlp": v * 9 * sbh, "norms": v * 2 * sbh}
    if dropout:
        out["attention"] += v * as2b + as2b + sbh          # dropout output, its mask, out mask
        out["mlp"] += sbh
    out["total"] = out["attention"] + out["mlp"] + out["norms"]
    return out


def saved_activation_bytes(fn, *args, exclude=()) -> int:
    """Measure: run ``fn(*args)`` and count the bytes autograd saves for backward.

    Every tensor saved during the call (``torch.autograd.graph.saved_tensors_hooks``) is counted
    once per storage; ``exclude``: tensors not to count (pass the model's parameters: autograd
    saves the weights for backward, but they are model state, not activations).
    """
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in skip:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    del out
    return sum(seen.values())


def power_law(n, l_inf: float, n_c: float, alpha: float):
    """``L(N) = L_inf + (N_c / N)^alpha`` (numpy arrays or floats)."""
    return l_inf + (n_c / np.asarray(n, dtype=float)) ** alpha


def fit_power_law(n, loss, l_inf_grid: int = 400) -> dict[str, float]:
    """Fit ``L(N) = L_inf + (N_c / N)^alpha`` to points ``(n, loss)`` by least squares.

    For each candidate ``L_inf`` (a grid from 0 to just below the smallest loss), the rest is a
    straight line, ``log(L - L_inf) = alpha log N_c - alpha log N``, fitted exactly; the
    candidate with the smallest squared error in L wins. Returns ``l_inf``, ``n_c``, ``alpha``
    and ``rmse``. ``L_inf = 0`` is Kaplan et al.'s pure power law.
    """
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if n.shape != loss.shape or n.ndim != 1 or len(n) < 3:
        raise ValueError(f"need at least 3 (N, loss) points of the same length, got "
                         f"{n.shape} and {loss.shape}")
    if (n <= 0).any() or (loss <= 0).any():
        raise ValueError("N and the losses must be positive")
    best = None
    for l_inf in np.linspace(0.0, loss.min() * (1 - 1e-3), l_inf_grid):
        slope, icpt = np.polyfit(np.log(n), np.log(loss - l_inf), 1)
        alpha = -slope
        if alpha <= 0:
            continue
        n_c = math.exp(icpt / alpha)
        err = float(np.mean((power_law(n, l_inf, n_c, alpha) - loss) ** 2))
        if best is None or err < best["rmse"] ** 2:
            best = {"l_inf": float(l_inf), "n_c": n_c, "alpha": float(alpha),
                    "rmse": math.sqrt(err)}
    if best is None:
        raise ValueError("the losses do not fall with N; there is no power law to fit")
    return best


def chinchilla_optimal(compute: float, tokens_per_param: float = 20.0) -> dict[str, float]:
    """The compute-optimal model for ``compute`` FLOPs under C = 6ND and D = k N (Hoffmann
    et al. 2022's rule of thumb, k ≈ 20): ``N = sqrt(C / 6k)``, ``D = k N``."""
    c, k = _positive("compute", compute), _positive("tokens_per_param", tokens_per_param)
    n = math.sqrt(c / (6 * k))
    return {"params": n, "tokens": k * n}


def chinchilla_loss(n_params: float, tokens: float) -> float:
    """Hoffmann et al. 2022's fitted loss ``E + A / N^alpha + B / D^beta`` (their approach 3;
    nats per token of their MassiveText data, not comparable with another corpus' loss)."""
    c = CHINCHILLA
    return (c["E"] + c["A"] / _positive("n_params", n_params) ** c["alpha"]
            + c["B"] / _positive("tokens", tokens) ** c["beta"])


def training_compute(n_params: float, tokens: float) -> float:
    """Training FLOPs ``C = 6 N D`` (Kaplan et al. 2020: 2ND forward, 4ND backward): GPT-3's
    175B parameters on 300B tokens give 3.15e23, Brown et al. 2020 report 3.14e23."""
    return 6 * _positive("n_params", n_params) * _positive("tokens", tokens)


def training_days(n_params: float, tokens: float, devices: int,
                  flops_per_device: float = 312e12, utilization: float = 0.4) -> float:
    """Wall-clock days for 6ND FLOPs on ``devices`` devices, each sustaining
    ``utilization`` of ``flops_per_device`` (default: an A100's 312 TFLOP/s bf16 at 40%)."""
    if not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices must be a positive int, got {devices!r}")
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization!r}")
    flops = training_compute(n_params, tokens)
    return flops / (devices * _positive("flops_per_device", flops_per_device)
                    * utilization) / 86400
