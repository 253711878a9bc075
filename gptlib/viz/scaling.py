"""Chapter 9: how big a training run is — memory per device, devices, days (``gptlib.scaling``)."""

from __future__ import annotations

from gptlib import scaling

__all__ = ["run_plan", "run_plan_table", "scale_explorer"]


def run_plan(n_params: float, tokens: float, devices: int, *, precision: str = "mixed",
             parallel: str = "fsdp", device_gb: float = 80.0, tflops: float = 312.0,
             utilization: float = 0.4) -> dict:
    """Model-state memory per device, whether it fits, and the training time of 6ND FLOPs.

    ``parallel="ddp"``: every device holds the whole state; ``"fsdp"``: 1/devices of it.
    Activations are not included (they depend on batch, length and checkpointing).
    """
    if parallel not in ("ddp", "fsdp"):
        raise ValueError(f"parallel must be 'ddp' or 'fsdp', got {parallel!r}")
    shards = devices if parallel == "fsdp" else 1
    state = scaling.training_state_bytes(n_params, precision, shards=shards)
    return {"state_gb": state["total"] / 1e9, "fits": state["total"] <= device_gb * 1e9,
            "min_devices_sharded": scaling.devices_needed(
                scaling.training_state_bytes(n_params, precision)["total"], device_gb * 1e9),
            "days": scaling.training_days(n_params, tokens, devices, tflops * 1e12, utilization),
            "tokens_per_param": tokens / n_params,
            "chinchilla": scaling.chinchilla_optimal(6 * n_params * tokens)}


def run_plan_table(n_params: float, tokens: float, devices: int, **kw) -> str:
    """``run_plan`` as a small HTML table."""
    p = run_plan(n_params, tokens, devices, **kw)
    opt = p["chinchilla"]
    rows = [("model state per device", f"{p['state_gb']:,.1f} GB "
             + ("(fits)" if p["fits"] else "(does <b>not</b> fit)")),
            ("fewest devices that hold it, sharded", f"{p['min_devices_sharded']:,}"),
            ("training time, 6ND FLOPs", f"{p['days']:,.1f} days"),
            ("tokens per parameter", f"{p['tokens_per_param']:.1f} (Chinchilla: ~20)"),
            ("compute-optimal for this compute", f"{opt['params'] / 1e9:,.1f}B parameters on "
             f"{opt['tokens'] / 1e9:,.0f}B tokens")]
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def scale_explorer(n_params: float = 175e9, tokens: float = 300e9, devices: int = 1024):
    """Sliders for parameters, tokens and devices, the precision and the kind of parallelism;
    the run's memory per device and its days (``run_plan``). Returns an ``ipywidgets.VBox``."""
    import ipywidgets as widgets

    style = {"description_width": "initial"}
    n = widgets.FloatLogSlider(value=n_params, base=10, min=6, max=12.5, step=0.05,
                               description="parameters N:", readout_format=".2e", style=style)
    d = widgets.FloatLogSlider(value=tokens, base=10, min=8, max=13.5, step=0.05,
                               description="tokens D:", readout_format=".2e", style=style)
    dev = widgets.IntSlider(value=devices, min=1, max=16384, description="devices:", style=style)
    prec = widgets.Dropdown(options=["mixed", "fp32"], value="mixed", description="precision:")
    par = widgets.ToggleButtons(options=["fsdp", "ddp"], value="fsdp", description="parallel:")
    out = widgets.HTML()

    def update(change=None):
        out.value = run_plan_table(n.value, d.value, dev.value, precision=prec.value,
                                   parallel=par.value)

    for w in (n, d, dev, prec, par):
        w.observe(update, names="value")
    update()
    return widgets.VBox([n, d, dev, widgets.HBox([prec, par]), out])
