"""Every explorer in ``gptlib.viz``, driven as a reader drives it.

The explorers (and the chapter that shows each, with the start values it passes):

    ch1 next_token_explorer(table, tok, start="q")          drop-down: current token
    ch2 attention_explorer(..., temperature=1.0, head=...)  drop-down: head; log slider: temperature
    ch3 mask_explorer(views, query=t)                       drop-down: mask; slider: query
    ch4 gradient_flow_explorer(profiles, depth=24, ...)     selection slider: blocks; 2 check boxes
    ch5 position_explorer(..., "sinusoidal", position=16)   drop-down: encoding; slider: position
    ch6 parameter_explorer("GPT-2 small", n_tokens=300e9)   drop-down: preset; 4 sliders; D slider
    ch7 sampling_explorer(..., temperature=1.0, top_p=0.9)  drop-down: prompt; 2 sliders
    ch8 genre_explorer(model, tok, classes, text)           text box
    ch9 scale_explorer(175e9, 300e9, 1024)                  3 selection sliders; drop-down; toggle

For each: the controls start where the caller (the chapter) says *as a browser shows them* (a
browser snaps a slider's value to its grid when it draws it: chapter 6's old D slider, built at
3e11, read 3.16e+11 in JupyterLab; ``browser_value`` below is that snapping, written
independently of ``gptlib.viz``), every
control is set to several values including its extremes, and the numbers the HTML shows are
parsed and compared with the library's own computation for those values; no number may print
as negative zero ("-0.000"), NaN or inf.
"""

from __future__ import annotations

import html
import math
import re

import pytest
import torch

widgets = pytest.importorskip("ipywidgets")

import gptlib.viz as viz  # noqa: E402
from gptlib.generate import generate_text, top_p_filter  # noqa: E402
from gptlib.masking import causal_mask  # noqa: E402
from gptlib.model import GPT, GPTConfig, training_flops  # noqa: E402
from gptlib.positional import sinusoidal_table  # noqa: E402
from gptlib.tokenizer import CharTokenizer  # noqa: E402

EXPLORERS = ["next_token_explorer", "attention_explorer", "mask_explorer",
             "gradient_flow_explorer", "position_explorer", "parameter_explorer",
             "sampling_explorer", "genre_explorer", "scale_explorer", "in_context_explorer"]


def test_every_explorer_is_tested_here():
    names = sorted(n for n in viz.__all__ if n.endswith("_explorer"))
    assert names == sorted(EXPLORERS), "a new explorer needs its test in this file"


# ---- reading a widget tree as a browser shows it -------------------------------------------

def walk(w):
    yield w
    for c in getattr(w, "children", ()):
        yield from walk(c)


def control(box, description):
    found = [w for w in walk(box) if getattr(w, "description", None) == description]
    assert len(found) == 1, f"{description!r}: {len(found)} controls"
    return found[0]


def shown_text(box) -> str:
    """The text of every HTML widget in the tree, tags removed, entities decoded."""
    parts = [w.value for w in walk(box) if isinstance(w, widgets.HTML)]
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(parts)))


def shown_html(box) -> str:
    return " ".join(w.value for w in walk(box) if isinstance(w, widgets.HTML))


def browser_value(w):
    """The value a browser shows for slider ``w``: clipped to its range and rounded to its grid
    (``min + k * step``; of the exponent for a ``FloatLogSlider``)."""
    if isinstance(w, widgets.FloatLogSlider):
        e = math.log(w.value, w.base)
        e = w.min + round((min(max(e, w.min), w.max) - w.min) / w.step) * w.step
        return w.base ** e
    if isinstance(w, (widgets.IntSlider, widgets.FloatSlider)):
        v = min(max(w.value, w.min), w.max)
        return w.min + round((v - w.min) / w.step) * w.step
    return w.value


def assert_browser_keeps_values(box):
    for w in walk(box):
        if isinstance(w, (widgets.IntSlider, widgets.FloatSlider, widgets.FloatLogSlider)):
            assert math.isclose(browser_value(w), w.value, rel_tol=1e-9, abs_tol=1e-12), (
                f"{w.description} {w.value!r} is off its slider's grid: a browser shows "
                f"{browser_value(w):.4g}")


def f(x: float, spec: str = ".3f") -> str:
    """``format(x, spec)`` with a zero always unsigned (the test's own rounding)."""
    s = format(x, spec)
    return s[1:] if s.startswith("-") and float(s) == 0 else s


NEG_ZERO = re.compile(r"-0(\.0+)?(e[+-]?\d+)?(?![\d.]*[1-9])")


def assert_clean(text: str):
    assert not NEG_ZERO.search(text), f"negative zero shown: {NEG_ZERO.search(text).group()!r}"
    assert not re.search(r"\b(nan|inf)\b", text, re.I), "NaN or inf shown"


def set_and_check(box, w, value):
    w.value = value
    assert w.value == value
    assert_browser_keeps_values(box)
    text = shown_text(box)
    assert_clean(text)
    assert_clean(" ".join(re.findall(r"title=['\"]?([^'\">]*)", shown_html(box))))  # hovers
    return text


def slider_extremes(w, middle=()):
    return [w.min, *middle, w.max]


# ---- ch1 ----------------------------------------------------------------------------------

def test_next_token_explorer():
    text = "the quick brown fox jumps over the lazy dog\nquiet queen "
    tok = CharTokenizer.train(text)
    ids = torch.tensor(tok.encode(text))
    counts = torch.zeros(len(tok.itos), len(tok.itos))
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    table = (counts + 0.1) / (counts + 0.1).sum(1, keepdim=True)
    box = viz.next_token_explorer(table, tok, top=5, start="q")
    choose = control(box, "current:")
    assert choose.value == tok.encode("q")[0]
    assert_browser_keeps_values(box)
    for a in range(len(tok.itos)):
        shown = set_and_check(box, choose, a)
        probs = [float(x) for x in re.findall(r"\b\d\.\d{3}\b", shown)]
        want = torch.sort(table[a].double(), descending=True).values[:5]
        assert probs == [float(f"{p:.3f}") for p in want.tolist()]
    with pytest.raises(ValueError, match="one token"):
        viz.next_token_explorer(table, tok, start="qu")


# ---- ch2 ----------------------------------------------------------------------------------

def attention_numbers(scores, mask, tau):
    s = (scores.double() / tau).masked_fill(~mask, float("-inf"))
    w = torch.softmax(s, -1)
    plogp = torch.where(w > 0, w * torch.log(w.clamp_min(1e-300)), torch.zeros_like(w))
    return w, float(w.max(-1).values.mean()), float(-plogp.sum(-1).mean())


def test_attention_explorer():
    T = 6
    torch.manual_seed(0)
    scores = {"random": torch.randn(T, T),
              "peaked": torch.eye(T) * 80.0}      # one-hot rows at low temperature: entropy 0
    mask = causal_mask(T)
    labels = list("ab cd ")
    box = viz.attention_explorer(scores, labels, mask, temperature=1.0, head="random")
    head, temp = control(box, "head:"), control(box, "temperature:")
    assert (head.value, temp.value) == ("random", 1.0)
    assert_browser_keeps_values(box)
    for name in scores:
        set_and_check(box, head, name)
        for tau in (0.1, 10 ** -0.5, 1.0, 10 ** 0.35, 10.0):
            shown = set_and_check(box, temp, tau)
            w, top, entropy = attention_numbers(scores[name], mask, tau)
            m = re.search(r"temperature (\S+): mean largest weight (\S+), mean entropy (\S+) nats",
                          shown)
            assert m.groups() == (f"{tau:.2f}", f"{top:.3f}", f(entropy))
            titles = re.findall(r"title=([\d.]+)", shown_html(box))
            assert titles == [f"{x:.3f}" for x in w[mask].tolist()]
    with pytest.raises(ValueError, match="cannot be shown"):
        viz.attention_explorer(scores, labels, mask, temperature=0.3)


# ---- ch3 ----------------------------------------------------------------------------------

def test_mask_explorer():
    T = 7
    labels = list("to be o")
    torch.manual_seed(0)
    causal = causal_mask(T)
    window = causal & ~causal_mask(T, offset=-3)            # the last 3 positions only
    weights = torch.softmax(torch.randn(T, T).masked_fill(~causal, float("-inf")), -1)
    views = {"causal": (labels, causal, weights), "window 3": (labels, window, None)}
    box = viz.mask_explorer(views, query=4)
    choose, query = control(box, "mask:"), control(box, "query:")
    assert (choose.value, query.value) == ("causal", 4)
    assert_browser_keeps_values(box)
    for name, (_, mask, w) in views.items():
        set_and_check(box, choose, name)
        for i in range(T):
            shown = set_and_check(box, query, i)
            n = re.search(r"query (\d+) \(.*?\) may attend to (\d+) of (\d+) positions", shown)
            assert n.groups() == (str(i), str(int(mask[i].sum())), str(T))
            best = re.search(r"largest weight, ([\d.]+), is on position (\d+)", shown)
            if w is None:
                assert best is None
            else:
                j = int(torch.where(mask[i], w[i], -1.0).argmax())
                assert best.groups() == (f"{float(w[i, j]):.2f}", str(j))
    for bad in (-1, T):
        with pytest.raises(ValueError, match="outside"):
            viz.mask_explorer(views, query=bad)


# ---- ch4 ----------------------------------------------------------------------------------

def test_gradient_flow_explorer():
    profiles = {}
    for d in (2, 4, 8):
        for r in (True, False):
            for n in (True, False):
                g = [(1.0 if r else 0.3 ** (d - i)) * (2.0 if n else 1.0) for i in range(d)]
                if not r and not n:
                    g[0] = 0.0                               # an underflowed gradient
                profiles[(d, r, n)] = g
    box = viz.gradient_flow_explorer(profiles, depth=4, residual=False, norms=True)
    depth = control(box, "blocks:")
    res, norm = control(box, "residual connections"), control(box, "LayerNorm in each block")
    assert (depth.value, res.value, norm.value) == (4, False, True)
    for d in (2, 4, 8):
        set_and_check(box, depth, d)
        for r in (True, False):
            set_and_check(box, res, r)
            for n in (True, False):
                shown = set_and_check(box, norm, n)
                g = profiles[(d, r, n)]
                ratio = re.search(r"bottom block / top block = (\S+?)[.;]?\s", shown).group(1)
                assert ratio == f"{g[0] / g[-1]:.1e}"
                zeros = re.search(r"(\d+) of \d+ blocks get a gradient of exactly 0", shown)
                assert (int(zeros.group(1)) if zeros else 0) == sum(v == 0 for v in g)
    with pytest.raises(ValueError, match="no depth"):
        viz.gradient_flow_explorer(profiles, depth=5)


# ---- ch5 ----------------------------------------------------------------------------------

def test_position_explorer():
    n = 24
    pe = sinusoidal_table(n, 16)
    dist = torch.arange(n)[:, None] - torch.arange(n)[None, :]
    similarity = {"sinusoidal": viz.cosine_similarity_matrix(pe),
                  "tiny bias": -0.001 * dist.abs().double()}   # rounds to "-0.00" at 2 places
    vectors = {"sinusoidal": pe, "tiny bias": None}
    box = viz.position_explorer(similarity, vectors, {"sinusoidal": "sines"},
                                encoding="sinusoidal", position=16)
    choose, pos = control(box, "encoding:"), control(box, "position t:")
    assert (choose.value, pos.value) == ("sinusoidal", 16)
    assert_browser_keeps_values(box)
    for name, sim in similarity.items():
        set_and_check(box, choose, name)
        for t in (0, 1, 16, n - 1):
            shown = set_and_check(box, pos, t)
            row = sim[t].double()
            others = [s for s in torch.argsort(row, descending=True, stable=True).tolist()
                      if s != t][:4]
            listed = shown.split("highest other positions:")[1]
            pairs = re.findall(r"(\d+) \((-?[\d.]+)\)", listed)
            assert pairs == [(str(s), f(row[s].item(), ".2f")) for s in others]
            if vectors[name] is not None:
                strip = re.findall(r"title='(\d+): (-?[\d.]+)'", shown_html(box))
                assert [float(v) for _, v in strip] == pytest.approx(
                    vectors[name][t].tolist(), abs=6e-4)
    with pytest.raises(ValueError, match="outside"):
        viz.position_explorer(similarity, position=n)


# ---- ch6 ----------------------------------------------------------------------------------

def table_numbers(text):
    """(groups, N, N', FLOPs per token, compute, D label) as the parameter table shows them."""
    groups = {g: int(re.search(rf"\b{g}\s+([\d,]+)", text).group(1).replace(",", ""))
              for g in viz.PARAMETER_GROUPS}
    total = int(re.search(r"total N\s+([\d,]+)", text).group(1).replace(",", ""))
    n_c = int(re.search(r"counted for compute\)\s+([\d,]+)", text).group(1).replace(",", ""))
    fpt = re.search(r"T = [\d,]+\)\s+(\S+)", text).group(1)
    m = re.search(r"D = (\S+) tokens\s+(\S+)\s+FLOPs", text)
    return groups, total, n_c, fpt, m.group(2), m.group(1)


def check_parameter_table(box):
    layers, width = control(box, "n_layer:"), control(box, "n_embd:")
    vocab, context = control(box, "vocab_size:"), control(box, "block_size:")
    tokens = control(box, "tokens D:")
    V, T, L, C, D = vocab.value, context.value, layers.value, width.value, tokens.value
    text = shown_text(box)
    assert_clean(text)
    groups, total, n_c, fpt, compute, d_label = table_numbers(text)
    # the table shows the closed forms; a model of that shape on the meta device counts itself
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=1, n_embd=C))
    assert groups == viz.parameter_groups(model)
    assert total == sum(p.numel() for p in model.parameters())
    assert n_c == total - model.wpe.weight.numel()                       # N less the table
    assert fpt == f"{model.flops_per_token():.3e}"
    assert compute == f"{training_flops(n_c, D):.2e}"
    assert d_label == tokens.label
    return compute


def test_parameter_groups_sorts_every_parameter_by_name():
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        untied = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16,
                               tie_weights=False))
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=50, n_positions=8, n_layer=2, n_head=2, n_embd=16,
            tie_word_embeddings=False, bos_token_id=0, eos_token_id=0))
        cross = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=50, n_positions=8, n_layer=2, n_head=2, n_embd=16,
            add_cross_attention=True, bos_token_id=0, eos_token_id=0))
    groups = viz.parameter_groups(untied)
    assert groups["lm_head"] == 50 * 16 and groups["embeddings"] == 50 * 16 + 8 * 16
    assert groups == viz.parameter_groups(hf)                 # Hugging Face's names sort the same
    assert sum(groups.values()) == sum(p.numel() for p in untied.parameters())
    with pytest.raises(ValueError, match="belongs to none of"):
        viz.parameter_groups(cross)


def test_parameter_explorer_starts_where_chapter_6_says():
    box = viz.parameter_explorer("GPT-2 small", n_tokens=300e9)
    assert_browser_keeps_values(box)                 # D = 300B exactly, not 10^11.5 = 316B
    assert control(box, "tokens D:").value == 300e9
    assert check_parameter_table(box) == "2.23e+20"
    assert "D = 300B tokens" in shown_text(box)
    choose = control(box, "preset:")
    choose.value = "GPT-3 175B"
    assert_browser_keeps_values(box)
    assert check_parameter_table(box) == "3.14e+23"  # Brown et al. (2020), as chapter 6 says


def test_parameter_explorer_controls_and_preset_name():
    box = viz.parameter_explorer("character model (chapter 6)", n_tokens=1.4e12)
    choose = control(box, "preset:")
    assert control(box, "tokens D:").value == 1.4e12
    assert_browser_keeps_values(box)
    check_parameter_table(box)
    for name, values in viz.GPT_PRESETS.items():
        set_and_check(box, choose, name)
        got = tuple(control(box, d).value for d in ("vocab_size:", "block_size:", "n_layer:",
                                                   "n_embd:"))
        assert got == values
        check_parameter_table(box)
    set_and_check(box, choose, "GPT-2 small")
    for desc, values in (("n_layer:", (1, 13, 128)), ("n_embd:", (16, 784, 16384)),
                         ("vocab_size:", (2, 50258, 256000)), ("block_size:", (1, 1025, 32768))):
        w = control(box, desc)
        start = w.value
        assert values[0] == w.min and values[-1] == w.max
        for v in values:
            set_and_check(box, w, v)
            check_parameter_table(box)
            assert choose.value == "custom", "a preset name while the sliders differ from it"
        set_and_check(box, w, start)
        assert choose.value == "GPT-2 small", "back on the preset's values: its name again"
    tokens = control(box, "tokens D:")
    counts = list(tokens._options_values)
    assert counts[0] <= 1e6 and counts[-1] >= 1e14 and 300e9 in counts
    for d in (counts[0], 300e9, 1.4e12, counts[-1]):
        set_and_check(box, tokens, d)
        check_parameter_table(box)
        assert choose.value == "GPT-2 small"       # D is not part of a preset
    set_and_check(box, choose, "custom")           # choosing "custom" changes nothing
    assert control(box, "n_layer:").value == 12
    with pytest.raises(ValueError, match="n_tokens"):
        viz.parameter_explorer(n_tokens=float("nan"))
    with pytest.raises(ValueError, match="unknown preset"):
        viz.parameter_explorer("GPT-4")


def test_architecture_diagram_draws_the_pipeline_in_order_and_readably():
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    ax = viz.plot_gpt_architecture(GPTConfig())
    fig = ax.figure
    fig.canvas.draw()
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    by_text = {t.get_text(): t for t in texts}
    # top to bottom, in forward order (a sub-layer's title sits above its norm's, which is
    # centred on the branch)
    order = ["token ids  idx", "wte: token embedding", "causal self-attention", "ln_1", "MLP",
             "ln_2", "ln_f: final LayerNorm", "lm_head: x · wteᵀ", "logits"]
    ys = [by_text[name].get_position()[1] for name in order]
    assert ys == sorted(ys, reverse=True)
    assert "wpe: position embedding" in by_text
    shown = " ".join(by_text)
    for shape in ("(B, T)", "(B, T, C)", "(B, H, T, d)", "(B, H, T, T)", "(B, T, 4C)",
                  "(B, T, V)", "× L"):
        assert shape in shown, shape
    assert "V = 50,257, T_max = 1,024, L = 12, H = 12, C = 768, d = C/H = 64" in ax.get_title()
    # readable in the book: 9 pt or more, and at 90 dpi (the chapters') no wider than the column
    assert min(t.get_fontsize() for t in texts) >= 9
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    assert Image.open(buf).size[0] <= 688
    plt.close(fig)
    with pytest.raises(ValueError, match="differs in {'tie_weights': False}"):
        viz.plot_gpt_architecture(GPTConfig(tie_weights=False))
    with pytest.raises(TypeError, match="GPTConfig or None"):
        viz.plot_gpt_architecture({"n_layer": 12})


# ---- ch7 ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_lm():
    torch.manual_seed(0)
    tok = CharTokenizer.train("abcdefgh ROMEO:\n")
    model = GPT(GPTConfig(vocab_size=len(tok.itos), block_size=32, n_layer=1, n_head=2,
                          n_embd=16)).eval()
    with torch.no_grad():                                 # a peaked distribution
        model.lm_head.weight.mul_(40)
    return model, tok


def sampling_numbers(model, tok, prompt, t, p):
    with torch.no_grad():
        z = model(torch.tensor([tok.encode(prompt)]))[0][0, -1]
    if t == 0:
        q = torch.nn.functional.one_hot(z.argmax(), z.numel()).double()
    else:
        z_t = z.float() / t                          # as sample_next: top-p only below 1
        q = torch.softmax((top_p_filter(z_t, p) if p < 1 else z_t).double(), -1)
    nz = q[q > 0]
    return z, int((q > 0).sum()), float(-(nz * nz.log()).sum())


def test_sampling_explorer(tiny_lm):
    model, tok = tiny_lm
    prompts = ["ROMEO:\n", "abc"]
    box = viz.sampling_explorer(model, tok, prompts, temperature=1.0, top_p=0.9, n_chars=12)
    choose, temp, nucleus = (control(box, d) for d in ("prompt:", "temperature:", "top-p:"))
    assert (choose.value, temp.value, nucleus.value) == ("ROMEO:\n", 1.0, 0.9)
    assert_browser_keeps_values(box)
    one_token = False
    for prompt in prompts:
        set_and_check(box, choose, prompt)
        for t in (0.0, 0.05, 1.0, 2.0):
            set_and_check(box, temp, t)
            for p in (0.05, 0.5, 1.0):
                shown = set_and_check(box, nucleus, p)
                z, kept, entropy = sampling_numbers(model, tok, prompt, t, p)
                m = re.search(r"(\d+) of (\d+) tokens can be sampled; entropy of the sampling "
                              r"distribution (\S+) nats", shown)
                assert m.groups() == (str(kept), str(z.numel()), f(entropy))
                one_token |= kept == 1
                text = generate_text(model, tok, prompt, 12, temperature=t, top_p=p,
                                     generator=torch.Generator().manual_seed(0))
                assert html.escape(prompt) + "</b>" + html.escape(text) in shown_html(box)
    assert one_token                                  # the case that printed "-0.000"
    with pytest.raises(ValueError, match="cannot be shown"):
        viz.sampling_explorer(model, tok, prompts, temperature=0.33)


# ---- ch8 ----------------------------------------------------------------------------------

def test_genre_explorer():
    from gptlib.finetune import GPTClassifier

    torch.manual_seed(0)
    tok = CharTokenizer.train("abcdefgh ,.:\n")
    backbone = GPT(GPTConfig(vocab_size=len(tok.itos), block_size=8, n_layer=1, n_head=2,
                             n_embd=16))
    model = GPTClassifier(backbone, 3).eval()
    with torch.no_grad():
        model.head.weight.mul_(50)
    classes = ["comedy", "history", "tragedy"]
    box = viz.genre_explorer(model, tok, classes, "abc")
    area = next(w for w in walk(box) if isinstance(w, widgets.Textarea))
    assert area.value == "abc"
    for text in ("", "XYZ", "a", "abc, def.", "hgfedcba" * 5 + "XX"):
        shown = set_and_check(box, area, text)
        ids = [tok.stoi[c] for c in text if c in tok.stoi][-8:]
        if not ids:
            assert "Type some text" in shown
            continue
        with torch.no_grad():
            probs = torch.softmax(model(torch.tensor([ids]))[0][0], -1)
        got = re.findall(r"(comedy|history|tragedy)\s+(\d+)%", shown)
        assert got == [(c, str(round(100 * q))) for c, q in zip(classes, probs.tolist())]


# ---- ch9 ----------------------------------------------------------------------------------

def plan_numbers(text):
    """What the run-plan table shows, as strings."""
    m = re.search(r"C = 6ND\s+(\S+) FLOPs\s+model state per device\s+([\d,.]+) GB \(\s*(fits|"
                  r"does\s+not\s+fit)\s*\)\s+fewest devices that hold it, sharded\s+([\d,]+)"
                  r"\s+training time at (\d+)% of (\S+) TFLOP/s\s+([\d,.]+) days\s+tokens per "
                  r"parameter\s+(\S+) \(Chinchilla: ~(\d+)\)\s+compute-optimal for this "
                  r"compute\s+(\S+) parameters on (\S+) tokens", text)
    assert m, text
    return m.groups()


def si(x):
    """The test's own short form: 3 significant digits and T/B/M/k."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def check_plan(box):
    from gptlib import scaling

    N, D = control(box, "parameters N:").value, control(box, "tokens D:").value
    dev = control(box, "devices:").value
    prec, par = control(box, "precision:").value, control(box, "parallel:").value
    text = shown_text(box)
    assert_clean(text)
    got = plan_numbers(text)
    shards = dev if par == "fsdp" else 1
    state = scaling.training_state_bytes(N, prec, shards=shards)["total"]
    whole = scaling.training_state_bytes(N, prec)["total"]
    C = scaling.training_compute(N, D)
    assert C == 6 * N * D
    days = scaling.training_days(N, D, dev)
    assert math.isclose(days, C / (dev * 312e12 * 0.4) / 86400, rel_tol=1e-12)
    opt = scaling.chinchilla_optimal(C)
    assert math.isclose(opt["tokens"], 20 * opt["params"])
    want = (f"{C:.3g}", f"{state / 1e9:,.1f}", "fits" if state <= 80e9 else "does not fit",
            f"{math.ceil(whole / 80e9):,}", "40", "312", f"{days:,.1f}", f"{D / N:.3g}", "20",
            si(opt["params"]), si(opt["tokens"]))
    assert tuple(re.sub(r"\s+", " ", g) for g in got) == want
    return got


def test_scale_explorer_starts_where_chapter_9_says():
    box = viz.scale_explorer(n_params=175e9, tokens=300e9, devices=1024)
    assert_browser_keeps_values(box)               # 175B and 300B exactly, not 10^11.25 / 10^11.5
    n, d, dev = (control(box, x) for x in ("parameters N:", "tokens D:", "devices:"))
    assert (n.value, d.value, dev.value) == (175e9, 300e9, 1024)
    assert (n.label, d.label, dev.label) == ("175B", "300B", "1,024")
    got = check_plan(box)
    assert got[0] == "3.15e+23"                      # 6ND; Brown et al. report 3.14e23
    assert got[3] == "35" and got[2] == "fits"       # 2.8 TB of state over 80 GB devices
    assert got[6] == "28.5"


def test_scale_explorer_controls():
    box = viz.scale_explorer(n_params=175e9, tokens=300e9, devices=1024)
    n, d, dev = (control(box, x) for x in ("parameters N:", "tokens D:", "devices:"))
    prec, par = control(box, "precision:"), control(box, "parallel:")
    params, tokens, devices = (list(w._options_values) for w in (n, d, dev))
    assert params[0] <= 1e6 and params[-1] >= 1e12 and 175e9 in params
    assert tokens[0] <= 1e8 and tokens[-1] >= 1e13 and 300e9 in tokens
    assert devices[0] == 1 and devices[-1] >= 16384 and 1024 in devices
    fit_seen = set()
    for p in ("mixed", "fp32"):
        set_and_check(box, prec, p)
        for q in ("fsdp", "ddp"):
            set_and_check(box, par, q)
            for x in (params[0], 1e9, 175e9, params[-1]):
                set_and_check(box, n, x)
                for y in (tokens[0], 300e9, tokens[-1]):
                    set_and_check(box, d, y)
                    for z in (devices[0], 8, 1024, devices[-1]):
                        set_and_check(box, dev, z)
                        fit_seen.add(re.sub(r"\s+", " ", check_plan(box)[2]))
    assert fit_seen == {"fits", "does not fit"}
    # a start value between the grid's values is kept exactly
    box = viz.scale_explorer(n_params=123.4e9, tokens=567e9, devices=3000)
    assert_browser_keeps_values(box)
    assert [control(box, x).value for x in ("parameters N:", "tokens D:", "devices:")] == [
        123.4e9, 567e9, 3000]
    check_plan(box)
    for bad, match in ((dict(n_params=0), "n_params"), (dict(tokens=float("inf")), "tokens"),
                       (dict(devices=2.5), "devices"), (dict(precision="fp8"), "fp8"),
                       (dict(parallel="tp"), "parallel")):
        with pytest.raises(ValueError, match=match):
            viz.scale_explorer(**bad)


# ---- the formatting helper -----------------------------------------------------------------

@pytest.mark.parametrize("x, spec, want", [(-0.0, ".3f", "0.000"), (-1e-9, ".3f", "0.000"),
                                           (-0.0004, ".3f", "0.000"), (-0.0005001, ".3f", "-0.001"),
                                           (-0.004, ".2f", "0.00"), (-0.0, ".2e", "0.00e+00"),
                                           (-0.0, ".3g", "0"), (-2.5, ".1f", "-2.5"),
                                           (0.0, ".3f", "0.000"), (1.25, ".2f", "1.25")])
def test_fmt_never_prints_negative_zero(x, spec, want):
    assert viz.fmt(x, spec) == want
    assert not NEG_ZERO.fullmatch(viz.fmt(x, spec))


# ---- ch10 ---------------------------------------------------------------------------------

def test_in_context_explorer():
    """Every example and several typed texts (empty, unknown letters only, one letter, a repeat,
    longer than the context): the next-token percentages equal the model's own softmax, and each
    head's hover values equal the attention that the model computes (recomputed here from the
    weights, independently of ``gptlib.interp``'s hooks)."""
    torch.manual_seed(0)
    tok = CharTokenizer.train("abcdefgh")
    model = GPT(GPTConfig(vocab_size=len(tok.itos), block_size=12, n_layer=2, n_head=2,
                          n_embd=16, mlp=False)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)                                   # patterns far from uniform
    examples = {"repeat": "abcdabcd", "one letter": "a"}
    box = viz.in_context_explorer(model, tok, examples)
    pick, area = control(box, "example:"), control(box, "tokens:")
    assert area.value == "abcdabcd"
    assert_browser_keeps_values(box)
    for name in examples:
        set_and_check(box, pick, name)
        assert area.value == examples[name]
    for text in ("", "XYZ", "h", "abcabcab", "abcdefghabcd", "abcdefghabcde"):
        shown = set_and_check(box, area, text)
        ids = tok.encode(text) if all(c in tok.stoi for c in text) else None
        if not text or ids is None:
            assert "type at least one token" in shown or "not in" in shown or "unknown" in shown
            continue
        if len(ids) > model.config.block_size:
            assert "exceed the model's context of 12" in shown
            continue
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0][0, -1]
        q, top = torch.softmax(logits, -1).topk(6)
        got = re.findall(r"(\S)\s+(\d+)%", shown.split("next token:")[1])
        assert got == [(tok.decode([i]), str(round(100 * v))) for v, i in
                       zip(q.tolist(), top.tolist())]
        rows = attention_from_last(model, ids)
        hovers = [float(t) for t in re.findall(r"title='([\d.]+)'", shown_html(box))]
        want = [round(a, 3) for row in rows for a in row]
        assert hovers == pytest.approx(want, abs=1.5e-3)


def attention_from_last(model, ids):
    """Each head's softmax(q k^T / sqrt(d)) row of the last query, layer by layer, written out
    from the weights (pre-LN, attention only, learned positions)."""
    x = model.wte.weight[ids] + model.pos.wpe.weight[: len(ids)]
    rows = []
    with torch.no_grad():
        for block in model.h:
            h = block.ln_1(x)
            q, k, v = block.attn.c_attn(h).split(h.size(-1), dim=-1)
            H = block.attn.n_heads
            d = h.size(-1) // H
            q, k, v = (t.view(len(ids), H, d).transpose(0, 1) for t in (q, k, v))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(d)
            att = att.masked_fill(torch.ones(len(ids), len(ids)).triu(1).bool(), float("-inf"))
            att = att.softmax(-1)
            rows += [att[hh, -1].tolist() for hh in range(H)]
            y = (att @ v).transpose(0, 1).reshape(len(ids), -1)
            x = x + block.attn.c_proj(y)
    return rows
