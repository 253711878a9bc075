"""Chapter 9: how big a training run is — memory per device, devices, days (``gptlib.scaling``)."""

from __future__ import annotations

import math

from gptlib import scaling
from gptlib.viz.controls import fmt, value_slider

__all__ = ["run_plan", "run_plan_table", "scale_explorer", "PARAM_COUNTS", "TOKEN_COUNTS",
           "DEVICE_COUNTS"]

# the explorer's slider values (each slider also holds the start value it is given)
PARAM_COUNTS = tuple(float(m * 10 ** e) for e in range(6, 13) for m in (1, 2, 3, 5)
                     if m * 10 ** e <= 2 * 10 ** 12)
TOKEN_COUNTS = tuple(float(m * 10 ** e) for e in range(8, 14) for m in (1, 2, 3, 5)
                     if m * 10 ** e <= 2 * 10 ** 13)
DEVICE_COUNTS = tuple(2 ** k for k in range(15))            # 1 .. 16,384


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return fmt(x / scale, ".3g") + unit
    return fmt(x, ".3g")


def run_plan(n_params: float, tokens: float, devices: int, *, precision: str = "mixed",
             parallel: str = "fsdp", device_gb: float = 80.0, tflops: float = 312.0,
             utilization: float = 0.4) -> dict:
    """Model-state memory per device, whether it fits, and the training time of 6ND FLOPs.

    ``parallel="ddp"``: every device holds the whole state; ``"fsdp"``: 1/devices of it.
    Activations are not included (they depend on batch, length and checkpointing). Every number
    comes from ``gptlib.scaling``.
    """
    if parallel not in ("ddp", "fsdp"):
        raise ValueError(f"parallel must be 'ddp' or 'fsdp', got {parallel!r}")
    shards = devices if parallel == "fsdp" else 1
    state = scaling.training_state_bytes(n_params, precision, shards=shards)
    compute = scaling.training_compute(n_params, tokens)
    return {"state_gb": state["total"] / 1e9, "fits": state["total"] <= device_gb * 1e9,
            "min_devices_sharded": scaling.devices_needed(
                scaling.training_state_bytes(n_params, precision)["total"], device_gb * 1e9),
            "compute": compute,
            "days": scaling.training_days(n_params, tokens, devices, tflops * 1e12, utilization),
            "tokens_per_param": tokens / n_params,
            "chinchilla": scaling.chinchilla_optimal(compute)}


def run_plan_table(n_params: float, tokens: float, devices: int, **kw) -> str:
    """``run_plan`` as a small HTML table."""
    p = run_plan(n_params, tokens, devices, **kw)
    tflops, util = kw.get("tflops", 312.0), kw.get("utilization", 0.4)
    opt = p["chinchilla"]
    k = scaling.CHINCHILLA["tokens_per_param"]
    rows = [("training compute C = 6ND", f"{fmt(p['compute'], '.3g')} FLOPs"),
            ("model state per device", f"{fmt(p['state_gb'], ',.1f')} GB "
             + ("(fits)" if p["fits"] else "(does <b>not</b> fit)")),
            ("fewest devices that hold it, sharded", f"{p['min_devices_sharded']:,}"),
            (f"training time at {fmt(100 * util, '.0f')}% of {fmt(tflops, '.4g')} TFLOP/s",
             f"{fmt(p['days'], ',.1f')} days"),
            ("tokens per parameter", f"{fmt(p['tokens_per_param'], '.3g')} "
             f"(Chinchilla: ~{k})"),
            ("compute-optimal for this compute", f"{_si(opt['params'])} parameters on "
             f"{_si(opt['tokens'])} tokens")]
    body = "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows)
    return f"<table>{body}</table>"


def scale_explorer(n_params: float = 175e9, tokens: float = 300e9, devices: int = 1024,
                   precision: str = "mixed", parallel: str = "fsdp"):
    """Sliders for parameters N, tokens D and devices, the precision and the kind of parallelism;
    the run's compute, memory per device and days (``run_plan``). Returns an ``ipywidgets.VBox``.

    Each slider runs over a list of values (``PARAM_COUNTS``, ``TOKEN_COUNTS``,
    ``DEVICE_COUNTS``) plus its start value, so it starts exactly where the caller says (a log
    slider would snap 175e9 and 300e9 to its grid in the browser)."""
    import ipywidgets as widgets

    for name, v in (("n_params", n_params), ("tokens", tokens)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices must be a positive int, got {devices!r}")
    if precision not in scaling.BYTES_PER_PARAM:
        raise ValueError(f"precision {precision!r} is unknown; choose one of "
                         f"{list(scaling.BYTES_PER_PARAM)}")
    if parallel not in ("fsdp", "ddp"):
        raise ValueError(f"parallel must be 'ddp' or 'fsdp', got {parallel!r}")
    style = {"description_width": "initial"}
    n = value_slider(PARAM_COUNTS, float(n_params), "parameters N:", _si,
                     continuous_update=False, style=style)
    d = value_slider(TOKEN_COUNTS, float(tokens), "tokens D:", _si, continuous_update=False,
                     style=style)
    dev = value_slider(DEVICE_COUNTS, devices, "devices:", lambda x: f"{x:,}",
                       continuous_update=False, style=style)
    prec = widgets.Dropdown(options=list(scaling.BYTES_PER_PARAM), value=precision,
                            description="precision:")
    par = widgets.ToggleButtons(options=["fsdp", "ddp"], value=parallel, description="parallel:")
    out = widgets.HTML()

    def update(change=None):
        out.value = run_plan_table(n.value, d.value, dev.value, precision=prec.value,
                                   parallel=par.value)

    for w in (n, d, dev, prec, par):
        w.observe(update, names="value")
    update()
    return widgets.VBox([n, d, dev, widgets.HBox([prec, par]), out])
