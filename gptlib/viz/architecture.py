"""Chapter 6's architecture diagram: the assembled GPT, drawn by code (matplotlib).

Token ids -> token embedding + position embedding -> L x [ln_1 -> causal self-attention -> + ;
ln_2 -> MLP -> +] -> ln_f -> lm_head (tied to the token table) -> logits, with the tensor shape
at every step. The colours are those of the chapter's parameter charts: embeddings blue,
attention orange, MLP green, norms red.

Drawn 7.4 in wide: at the book's figure dpi of 90 that is 684 px with the inline backend's
0.1 in margins, inside the ~688 px column, so it is shown at 90/96 of its nominal size and its
smallest text (9 pt) reads at 8.4 pt.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Ellipse, FancyBboxPatch, Rectangle

__all__ = ["plot_gpt_architecture", "ARCHITECTURE_COLOURS", "GPT2_LAYOUT"]

ARCHITECTURE_COLOURS = {"embeddings": "C0", "attention": "C1", "MLP": "C2", "norms": "C3",
                        "data": "0.5"}
GPT2_LAYOUT = {"pos_encoding": "learned", "norm_position": "pre", "norm": "layernorm",
               "mlp": True, "residual": True, "tie_weights": True, "causal": True}

TITLE_PT, TEXT_PT, SMALL_PT = 10.5, 10, 9       # the smallest text is 9 pt (see above)
WIDTH, HEIGHT = 7.4, 8.4                        # inches
XMAX, YMAX = 10.0, 16.0                         # data units of the axes (which fill the figure)
_LINE = SMALL_PT * 1.3 / 72                     # inches per line of small text
_INK = "0.2"


class _Canvas:
    """Boxes, arrows and sums on axes whose data units are XMAX x YMAX."""

    def __init__(self, ax):
        self.ax = ax
        height_in = ax.get_position().height * ax.figure.get_figheight()
        width_in = ax.get_position().width * ax.figure.get_figwidth()
        self.per_inch = YMAX / height_in                      # y data units per inch
        self.r = 0.15 * XMAX / width_in                       # a sum's radius, x units

    def height(self, lines: int) -> float:
        """Height of a box with a title and ``lines`` lines of small text."""
        return (0.16 + TEXT_PT * 1.3 / 72 + lines * _LINE + 0.1) * self.per_inch

    def box(self, x, top, w, title, sub="", kind="data"):
        """A rounded box, top edge at ``top``, centred on x; returns its bottom edge."""
        lines = sub.split("\n") if sub else []
        h = self.height(len(lines))
        colour = ARCHITECTURE_COLOURS[kind]
        for face, edge, z in ((colour, "none", 1), ("none", colour, 2)):
            self.ax.add_patch(FancyBboxPatch(
                (x - w / 2, top - h), w, h, boxstyle="round,pad=0,rounding_size=0.15",
                facecolor=face, alpha=0.2 if face != "none" else 1.0, edgecolor=edge,
                lw=1.3, zorder=z))
        y = top - 0.1 * self.per_inch
        self.ax.text(x, y, title, ha="center", va="top", fontsize=TEXT_PT, fontweight="bold",
                     zorder=3)
        y -= TEXT_PT * 1.3 / 72 * self.per_inch
        for line in lines:
            self.ax.text(x, y, line, ha="center", va="top", fontsize=SMALL_PT, zorder=3)
            y -= _LINE * self.per_inch
        return top - h

    def line(self, xs, ys, **kw):
        kw.setdefault("color", _INK)
        kw.setdefault("lw", 1.3)
        self.ax.plot(xs, ys, zorder=kw.pop("zorder", 1), solid_capstyle="butt", **kw)

    def arrow(self, start, end):
        self.ax.annotate("", xy=end, xytext=start, zorder=2,
                         arrowprops=dict(arrowstyle="-|>", lw=1.3, color=_INK, shrinkA=0,
                                         shrinkB=0, mutation_scale=12))

    def plus(self, x, y):
        """A sum: a circle of radius 0.15 in (``self.r`` x units) around a plus."""
        self.ax.add_patch(Ellipse((x, y), 2 * self.r, 0.3 * self.per_inch, facecolor="white",
                                  edgecolor=_INK, lw=1.3, zorder=3))
        self.ax.text(x, y, "+", ha="center", va="center_baseline", fontsize=TITLE_PT,
                     fontweight="bold", zorder=4)

    def note(self, x, y, text, **kw):
        kw.setdefault("fontsize", SMALL_PT)
        kw.setdefault("ha", "center")
        kw.setdefault("va", "bottom")
        self.ax.text(x, y, text, linespacing=1.25, **kw)


def plot_gpt_architecture(config=None, ax=None):
    """Draw the assembled GPT (GPT-2's layout, ``gptlib.model.GPT``) with its tensor shapes.

    B sequences of T tokens; V vocabulary, T_max context (``block_size``), L blocks, H heads of
    width d = C / H, C the model width. ``config`` (a ``GPTConfig``, optional) adds a line with
    its sizes; it must have GPT-2's layout (``GPT2_LAYOUT``: pre-LN blocks with an MLP, learned
    positions, a tied output layer), the one drawn. ``ax``: axes to draw on (best about
    WIDTH x HEIGHT inches); by default a new figure of that size. Returns the axes.
    """
    sizes = None
    if config is not None:
        from gptlib.model import GPTConfig

        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig or None, got {type(config).__name__}")
        other = {k: getattr(config, k) for k, v in GPT2_LAYOUT.items() if getattr(config, k) != v}
        if other:
            raise ValueError(f"the diagram draws GPT-2's layout {GPT2_LAYOUT}; this config "
                             f"differs in {other}")
        c = config
        sizes = (f"V = {c.vocab_size:,}, T_max = {c.block_size:,}, L = {c.n_layer}, "
                 f"H = {c.n_head}, C = {c.n_embd:,}, d = C/H = {c.n_embd // c.n_head}")
    if ax is None:
        fig = plt.figure(figsize=(WIDTH, HEIGHT))
        ax = fig.add_axes((0.0, 0.0, 1.0, 0.93 if sizes else 0.96))
    ax.set_xlim(0, XMAX)
    ax.set_ylim(0, YMAX)
    ax.axis("off")
    cv = _Canvas(ax)
    gap = 0.42                                   # arrow length between stacked boxes

    sx, sw = 2.9, 3.6                            # the residual stream's column: x, box width
    px, pw = 7.65, 4.1                           # the position table's column
    y = YMAX - 0.05
    y = cv.box(sx, y, sw, "token ids  idx", "(B, T) integers in 0 … V−1")
    cv.arrow((sx, y), (sx, y - gap))
    row = y - gap
    y = cv.box(sx, row, sw, "wte: token embedding", "row idx of the V × C table\n(B, T, C)",
               "embeddings")
    wpe_bottom = cv.box(px, row, pw, "wpe: position embedding",
                        "rows 0 … T−1 of the T_max × C table\n"
                        "(T, C), the same for each sequence",
                        "embeddings")
    wte_y = row - cv.height(2) / 2
    s0 = y - gap - 0.15 * cv.per_inch              # the first sum
    cv.arrow((sx, y), (sx, s0 + 0.15 * cv.per_inch))
    cv.plus(sx, s0)
    cv.line([px, px], [wpe_bottom, s0])
    cv.arrow((px, s0), (sx + cv.r, s0))
    cv.note((sx + px) / 2, s0 + 0.07, "added at every position")

    # --- the blocks ------------------------------------------------------------------------
    top = s0 - 0.45
    sub_attn = "H heads: q, k, v (B, H, T, d)\nweights softmax(q kᵀ/√d)\n(B, H, T, T), causal"
    sub_mlp = "C → 4C, GELU, 4C → C\ninside: (B, T, 4C)"
    ax_w, mlp_w, nx = 3.9, 3.5, 4.85             # sub-layer widths; the norms' x
    y = top - 0.35
    sums = []
    for norm, title, sub, kind, w in (("ln_1", "causal self-attention", sub_attn, "attention",
                                       ax_w), ("ln_2", "MLP", sub_mlp, "MLP", mlp_w)):
        h = cv.height(sub.count("\n") + 1)
        mid = y - h / 2
        xb = XMAX - 0.3 - w / 2
        cv.line([sx, nx - 0.55], [mid, mid])
        cv.box(nx, mid + cv.height(0) / 2, 1.1, norm, "", "norms")
        cv.arrow((nx + 0.55, mid), (xb - w / 2, mid))
        bottom = cv.box(xb, y, w, title, sub, kind)
        s = bottom - 0.55
        cv.line([xb, xb], [bottom, s])
        cv.arrow((xb, s), (sx + cv.r, s))
        cv.plus(sx, s)
        cv.note((sx + xb) / 2, s + 0.07, "(B, T, C), added to x")
        sums.append(s)
        y = s - 0.5
    bottom = y - 0.25
    ax.add_patch(Rectangle((0.75, bottom), XMAX - 0.9, top - bottom, facecolor="0.96",
                           edgecolor="0.45", lw=1.2, ls=(0, (5, 3)), zorder=0))
    cv.note(XMAX - 0.25, bottom + 0.12, "× L: blocks ℓ = 1 … L, each feeding the next",
            ha="right", color="0.25")
    cv.note(sx - 0.2, (top + bottom) / 2, "residual stream x: (B, T, C)", rotation=90,
            ha="right", va="center", color="0.25")

    # --- out: final norm, tied head, logits -------------------------------------------------
    y = bottom - 0.45
    cv.line([sx, sx], [s0, y], lw=2.6)                        # the residual stream
    y = cv.box(sx, y, sw, "ln_f: final LayerNorm", "(B, T, C)", "norms")
    cv.arrow((sx, y), (sx, y - gap))
    head_top = y - gap
    y = cv.box(sx, head_top, sw, "lm_head: x · wteᵀ", "C → V, no bias\n(B, T, V)",
               "embeddings")
    head_y = head_top - cv.height(2) / 2
    cv.arrow((sx, y), (sx, y - gap))
    cv.box(sx, y - gap, sw, "logits", "softmax over V: p(next token)")
    # the tied weights: one V x C matrix, a dashed link from lm_head back up to wte
    blue = ARCHITECTURE_COLOURS["embeddings"]
    left = sx - sw / 2
    cv.line([left, 0.35, 0.35, left], [head_y, head_y, wte_y, wte_y], color=blue,
            ls=(0, (4, 2)))
    cv.note(sx + sw / 2 + 0.25, head_y, "tied (dashed link): lm_head.weight\nis wte.weight, "
            "one V × C matrix", ha="left", va="center", color=blue)
    title = "The assembled GPT (GPT-2's layout)"
    ax.set_title(title if sizes is None else f"{title}\n{sizes}", fontsize=TITLE_PT)
    return ax
