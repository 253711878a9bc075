"""The loss ladder's staircase figure (chapters 1-7): validation loss per rung, seeds as points.

Reads what ``gptlib.ladder.read_ladder`` returns. Drawn 7.5 in wide so that, shown at the book's
column width, its text stays at its nominal size (9-10 pt).
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from gptlib.ladder import ladder_summary

__all__ = ["plot_ladder"]


def plot_ladder(results: dict, chapter: int, ax=None, *, reference: float | None = None):
    """The ladder so far: one row per rung of chapters <= ``chapter`` (top: chapter 1), each
    seed's validation loss as a dot and the mean as a bar; the rungs of ``chapter`` highlighted.

    ``reference``: an extra vertical line (e.g. the uniform distribution's ln V). Returns the
    axes. The x axis is the loss in nats per character: lower (left) is better."""
    rows = ladder_summary(results, chapter)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.1))
    ys = range(len(rows))
    for y, r in zip(ys, rows):
        mine = r["chapter"] == chapter
        colour = "tab:orange" if mine else "tab:blue"
        ax.barh(y, r["mean"], color=colour, alpha=0.35 if mine else 0.2, height=0.7)
        ax.plot(r["losses"], [y] * len(r["losses"]), "o", color=colour, ms=4,
                alpha=0.9, label=None)
        ax.text(r["mean"] + 0.02, y, f"{r['mean']:.3f}", va="center", fontsize=8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f"ch{r['chapter']}  {r['label']}" for r in rows], fontsize=9)
    for tick, r in zip(ax.get_yticklabels(), rows):
        if r["chapter"] == chapter:
            tick.set_fontweight("bold")
    ax.invert_yaxis()
    losses = [x for r in rows for x in r["losses"]]
    right = max(losses + ([reference] if reference else []))
    ax.set_xlim(min(1.4, min(losses) - 0.1), right + 0.35)
    if reference is not None:
        ax.axvline(reference, color="grey", ls="--", lw=1)
        ax.text(reference, -0.8, " ln V", color="grey", fontsize=8, va="bottom")
    ax.set_xlabel("validation loss (nats per character; lower is better); "
                  "dots: seeds, bar: mean", fontsize=9)
    ax.tick_params(axis="x", labelsize=9)
    ax.set_title(f"The loss ladder up to chapter {chapter}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return ax
