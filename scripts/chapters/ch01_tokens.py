"""Source of chapters/01_tokens.ipynb. Edit here, then:

    python scripts/chapters/ch01_tokens.py && python scripts/run_notebooks.py chapters/01_tokens.ipynb
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from nbbuild import code, md, write  # noqa: E402

CELLS = [
md(r"""
# 1. From text to a language model

**Why.** A GPT does one thing: given the beginning of a text, it gives a probability to every
possible continuation, one small piece — a *token* — at a time. Everything else in this book is
machinery for doing that one thing well. This chapter builds the two ends of that machinery:
how text becomes a sequence of integers (and back), and how we *score* a model that predicts
the next integer. We then build the simplest model that can be scored — one that looks only at
the current token — and measure exactly what it is missing: context. Chapter 2's self-attention
is how a GPT supplies it.
"""),
code(r"""
# errors shown on purpose print as "Type: message", without a traceback
%xmode Minimal
import math
import re

import matplotlib.pyplot as plt
import torch

from gptlib import set_seed, show
from gptlib.data import encode_text, get_batch, load_plays, load_text
from gptlib.ngram import (
    BigramLanguageModel,
    bigram_loss,
    bigram_probs,
    count_bigrams,
    ngram_loss,
    sample_from_probs,
)
from gptlib.tokenizer import PRETOKENIZE_PATTERN, BPETokenizer, CharTokenizer

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)
"""),
md(r"""
## The idea: predict the next token from all the previous ones

A *language model* assigns a probability to any sequence of tokens $x_{1:T} = x_1, \dots, x_T$.
The chain rule of probability — true of any distribution, no modelling assumption yet — writes
that probability as a product of next-token predictions:

$$
p(x_1, \dots, x_T) \;=\; \prod_{t=1}^{T} p(x_t \mid x_1, \dots, x_{t-1}) \;=\; \prod_{t=1}^{T} p(x_t \mid x_{<t}).
$$

So a model that can answer "what comes next, given everything so far?" is a complete model of
text. GPT models $p_\theta(x_t \mid x_{<t})$ directly: a network with parameters $\theta$ reads the
token ids $x_{<t}$ and outputs a vector of $V$ scores (*logits*), one per token of the
vocabulary, which a softmax turns into probabilities. Generating text is then a loop: predict,
pick a token, append it, predict again. Such a model is called *autoregressive*; GPT is one
{cite:p}`radford2018improving,radford2019language,brown2020language`.

**How good is a model?** Show it real text it did not train on and ask how much probability it
gave to what actually came next. The average negative log-probability is the *cross-entropy
loss*, in nats per token:

$$
\mathcal{L}(\theta) \;=\; -\frac{1}{N} \sum_{t=1}^{N} \ln p_\theta(x_t \mid x_{<t}).
$$

(The first token of a text has nothing before it to be predicted from, so in practice the sum
runs over the $N$ tokens that do have a predecessor.) Lower is better, and $e^{\mathcal{L}}$ (the *perplexity*) reads as "the model is as unsure as if
it chose uniformly among this many tokens". A model that knows nothing gives every one of the
$V$ tokens probability $1/V$, so its loss is exactly $\ln V$: the **uniform baseline** every
model must beat.

Before we can predict tokens, we need tokens.
"""),
md(r"""
## The corpus

The book's corpus is Shakespeare's 38 plays, prepared by `data/prepare.py` into the classic
`SPEAKER:` / lines form and split **by play**: 26 plays for training, and one play of each of the
six genres for validation and another for test. A model evaluated on the validation split is
reading plays it never saw. `gptlib.data` checks every file against its recorded SHA-256 on each
load, so an altered corpus fails loudly instead of silently changing every number in the book.
"""),
code(r"""
plays = load_plays()
for split in ("train", "val", "test"):
    chosen = [p for p in plays if p.split == split]
    chars = sum(len(p.text) for p in chosen)
    print(f"{split:>5}: {len(chosen):2d} plays, {chars:>9,} characters")
print()
print(
    "validation plays:",
    ", ".join(f"{p.title} ({p.genre})" for p in plays if p.split == "val"),
)
"""),
code(r"""
train_text, val_text = load_text("train"), load_text("val")
print(val_text[:300])
"""),
md(r"""
## Text → tokens

A neural network works on numbers, so text must become a sequence of integer ids from a fixed
vocabulary of size $V$. There are three natural choices of unit.

**Characters.** The vocabulary is the set of characters in the corpus. We build it from all three
splits, so that validation text never contains a character the tokenizer cannot encode. The
tokenizer is two dictionaries:
"""),
code(r"""
show(CharTokenizer.encode)
"""),
code(r"""
char_tok = CharTokenizer.train(train_text + val_text + load_text("test"))
print("vocabulary size V =", char_tok.vocab_size)
print(repr("".join(char_tok.itos)))
ids = char_tok.encode("To be, or not to be")
print(ids)
print(char_tok.decode(ids))
"""),
md(r"""
A character tokenizer can only encode characters it saw when it was built. Asking for any other
character is an error — with a message that says why, since that is part of the lesson:
"""),
code(r"""
char_tok.encode("Où est le café ?")
""", "raises-exception"),
md(r"""
**Bytes.** Every string is a sequence of UTF-8 bytes, so a vocabulary of the 256 byte values
encodes *any* text — English, French, Chinese, emoji — with no unknown symbols. An ASCII character
is one byte (accented letters, curly quotes and Chinese characters take two to four), and this
corpus is pure ASCII, so here bytes give exactly as many tokens as characters.

**Byte-pair encoding (BPE).** Start from a small alphabet and repeatedly *merge* the most frequent
adjacent pair of tokens into a new token. The idea began as a compression algorithm
{cite:p}`gage1994new`; {cite:t}`sennrich2016neural` used it, starting from characters, to split
rare words into subword units. GPT-2 starts from the 256 bytes instead — *byte-level* BPE — and
uses $V = 50{,}257$ tokens {cite:p}`radford2019language`; GPT-3 reuses that tokenizer. Frequent
words and word pieces become single tokens, so sequences get shorter as the vocabulary grows.

Merges never cross a word boundary: the text is first split into "words" by a regular
expression (GPT-2-like: a run of letters with its leading space, a run of digits, a run of
punctuation, whitespace), and pairs are counted inside each word:
"""),
code(r"""
print(
    re.findall(
        PRETOKENIZE_PATTERN, "Friends, Romans, countrymen; I'll lend 2 ears."
    )
)
"""),
md(r"""
The training loop is short: count adjacent pairs inside each word (weighted by how often the word
occurs), merge the most frequent pair everywhere, update the counts, repeat.
"""),
code(r"""
show(BPETokenizer.train)
"""),
md(r"""
A hand-checkable example, with the whole string as one "word". In `"aaabdaaabac"` the pair
`a a` occurs four times (counting overlaps: each `aaa` holds two) — more than any other — so the first merge creates token 256 = `aa`,
and the text becomes `aa a b d aa a b a c`. Now `aa a` and `a b` both occur twice; ties go to the
pair with the smaller ids, so `a b` (bytes 97, 98) becomes token 257. Then `aa ab` occurs twice and
becomes token 258 = `aaab`, leaving five tokens where there were eleven bytes:
"""),
code(r"""
tiny = BPETokenizer.train("aaabdaaabac", vocab_size=259, pattern=r".+")
for rank, (a, b) in enumerate(tiny.merges):
    print(
        f"merge {rank}: {tiny.token_bytes(a)!r} + {tiny.token_bytes(b)!r} ->"
        f" token {256 + rank} = {tiny.token_bytes(256 + rank)!r}"
    )
print(tiny.encode("aaabdaaabac"))
"""),
md(r"""
Now a real tokenizer, trained on the first million characters of the training plays. The first
merges it learns are the commonest pieces of English: a space followed by `t`, then `he`, …
"""),
code(r"""
bpe = BPETokenizer.train(train_text[:1_000_000], vocab_size=1024)
print([bpe.token_bytes(256 + r).decode() for r in range(12)])
sample = "Friends, Romans, countrymen, lend me your ears;"
pieces = [
    bpe.token_bytes(t).decode("utf-8", errors="replace")
    for t in bpe.encode(sample)
]
print(len(sample), "characters ->", len(pieces), "tokens:", pieces)
"""),
md(r"""
Because BPE starts from bytes, it can encode text it has never seen — any script, any symbol —
and decoding gives back exactly the input. (The unit tests check `decode(encode(s)) == s` on
random Unicode strings generated by Hypothesis.) The price shows below: a script the tokenizer
never trained on gets no merges, so it costs one token per byte — three for each Chinese
character.
"""),
code(r"""
for s in ["语言模型", "naïve café ☕", "\x00\t\n"]:
    ids = bpe.encode(s)
    print(
        f"{s!r}: {len(s.encode('utf-8'))} bytes -> {len(ids)} tokens, round"
        f" trip ok: {bpe.decode(ids) == s}"
    )
"""),
md(r"""
### See it: vocabulary size against sequence length

The choice of unit is a trade: a bigger vocabulary means shorter sequences (less to process, and
each prediction covers more text), but a bigger output layer and rarer tokens to learn. Let us
measure the trade on the validation plays, for characters, bytes (BPE with no merges) and BPE
tokenizers with growing vocabularies, all trained on the same million training characters.
"""),
code(r"""
measure_text = val_text[:200_000]
rows = [
    ("characters", char_tok.vocab_size, len(char_tok.encode(measure_text)))
]
for vocab_size in (256, 512, 1024, 2048):
    tok = (
        bpe
        if vocab_size == 1024
        else BPETokenizer.train(train_text[:1_000_000], vocab_size)
    )
    label = "bytes" if vocab_size == 256 else f"BPE {vocab_size}"
    rows.append((label, vocab_size, len(tok.encode(measure_text))))

print(f"{'tokenizer':>12} {'V':>6} {'tokens':>8} {'chars/token':>12}")
for label, V, n in rows:
    print(f"{label:>12} {V:>6} {n:>8} {len(measure_text) / n:>12.2f}")
"""),
code(r"""
fig, ax = plt.subplots(figsize=(6, 3.5))
V_values = [V for _, V, _ in rows]
lengths = [n / len(measure_text) * 1000 for _, _, n in rows]
ax.plot(V_values[1:], lengths[1:], "o-", label="bytes / byte-level BPE")
ax.plot(V_values[:1], lengths[:1], "s", color="C3", label="characters")
for label, V, L in zip([r[0] for r in rows], V_values, lengths):
    ax.annotate(
        label, (V, L), textcoords="offset points", xytext=(6, 4), fontsize=8
    )
ax.set_xscale("log", base=2)
ax.set_xlabel("vocabulary size V")
ax.set_ylabel("tokens per 1,000 characters")
ax.set_title("Bigger vocabulary, shorter sequences (validation plays)")
ax.legend()
plt.show()
"""),
md(r"""
**Prove it.** A merge replaces two tokens by one, so more merges can never lengthen a sequence;
here, where every added merge is used, the measured lengths fall strictly as $V$ grows. And for
this pure-ASCII text, bytes and characters give exactly the same length:
"""),
code(r"""
bpe_lengths = [n for _, _, n in rows[1:]]
assert all(a > b for a, b in zip(bpe_lengths, bpe_lengths[1:])), bpe_lengths
assert rows[0][2] == rows[1][2] == len(measure_text)
print(
    f"BPE {rows[-1][1]} makes sequences {rows[1][2] / rows[-1][2]:.2f}x"
    " shorter than bytes"
)
"""),
md(r"""
## GPT-2's own tokenizer

Our BPE is GPT-2's algorithm trained on our corpus. GPT-2's *trained* tokenizer is two files:
`vocab.json` (OpenAI's release calls it `encoder.json`), which maps each of its 50,257 tokens to
an id, and `merges.txt` (`vocab.bpe`), its 50,000 merges in the order they were learned. Both
are in the Hugging Face Hub repository `openai-community/gpt2`.
`BPETokenizer.from_gpt2_files` reads such a pair and encodes exactly as GPT-2 does. Three details
matter:

1. **Bytes written as characters.** A JSON file holds text, not bytes, so GPT-2 writes each byte
   as a printable character (`bytes_to_unicode`): the 188 printable bytes stand for themselves,
   the other 68 move to U+0100 onwards. That is why a space shows as `Ġ` and a newline as `Ċ` in
   every GPT-2 vocabulary.
2. **The pre-tokenizer.** GPT-2's pattern uses Unicode classes (`\p{L}`: a letter, `\p{N}`: a
   number) that Python's `re` does not have, so gptlib compiles it with the `regex` package. It
   is not quite the pattern we used above: an underscore joins the punctuation beside it, the
   control characters `\x1c`–`\x1f` (whitespace to `re`) are not whitespace to GPT-2, and the
   contractions are lower case only, so `DON'T` splits as `DON`, `'`, `T`.
3. **A special token.** Id 50,256 is `<|endoftext|>`, which GPT-2 saw between documents. A text
   that merely *contains* those 13 characters must not turn into that id by accident, so
   `encode` refuses it unless told what to do: `allowed_special` makes it one id,
   `disallowed_special=()` encodes it as ordinary text.
"""),
code(r"""
import regex
from gptlib.tokenizer import GPT2_PATTERN, bytes_to_unicode

b2u = bytes_to_unicode()
print(
    sum(b2u[b] == chr(b) for b in range(256)),
    "bytes stand for themselves;",
    f"space -> {b2u[ord(' ')]}, newline -> {b2u[ord(chr(10))]}",
)
s = "I'll lend 2 ears. DON'T __init__(x) a \x1cb"
print("ours: ", re.findall(PRETOKENIZE_PATTERN, s))
print("GPT-2:", regex.findall(GPT2_PATTERN, s))
"""),
md(r"""
The book builds offline, so it cannot download GPT-2's files. Instead we make a small vocabulary
*in GPT-2's format*: a BPE with GPT-2's pattern trained on the first 300,000 characters of the
training plays, written out with `to_gpt2_files`, plus `<|endoftext|>` as the last id. Then we
read it back the way GPT-2's own files are read. The first lines of `merges.txt` are the first
merges, written with `Ġ` for the space:
"""),
code(r"""
import json
import tempfile
from pathlib import Path

folder = tempfile.TemporaryDirectory()
vocab_path = Path(folder.name) / "vocab.json"
merges_path = Path(folder.name) / "merges.txt"
small = BPETokenizer.train(train_text[:300_000], 512, pattern=GPT2_PATTERN)
small.to_gpt2_files(vocab_path, merges_path)
vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
vocab["<|endoftext|>"] = len(vocab)
vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
print(merges_path.read_text(encoding="utf-8").splitlines()[:4])

gpt2_style = BPETokenizer.from_gpt2_files(vocab_path, merges_path)
print(gpt2_style, gpt2_style.special_tokens)
"""),
md(r"""
Here is how it splits the chapter's example sentences, each token printed as `vocab.json` writes
it (`Ġ` is the space; a character of several bytes that no merge joined shows as several odd
characters, one per byte). With 512 tokens instead of GPT-2's 50,257, words split into more
pieces than GPT-2's would. Hugging Face's `GPT2Tokenizer`, built from the same two files, must
give the same ids:
"""),
code(r"""
import transformers

transformers.logging.set_verbosity_error()
hf_tok = transformers.GPT2Tokenizer.from_pretrained(
    folder.name, local_files_only=True
)
examples = [
    "Friends, Romans, countrymen, lend me your ears;",
    "To be, or not to be",
    "Où est le café ?",
    "语言模型",
]
for s in examples:
    ids = gpt2_style.encode(s)
    assert ids == hf_tok(s)["input_ids"] and gpt2_style.decode(ids) == s
    as_written = [
        "".join(b2u[b] for b in gpt2_style.token_bytes(i)) for i in ids
    ]
    print(f"{len(ids):2d} tokens:", " ".join(as_written))
"""),
md(r"""
The special token, three ways — and the same ids as Hugging Face's tokenizer, which encodes
`<|endoftext|>` as one id unless asked to split it:
"""),
code(r"""
doc = "Exeunt.<|endoftext|>ACT I"
one_id = gpt2_style.encode(doc, allowed_special="all")
as_text = gpt2_style.encode(doc, disallowed_special=())
print("allowed:   ", one_id)
print("as text:   ", as_text)
try:
    gpt2_style.encode(doc)
except ValueError as e:
    print("by default:", f"{type(e).__name__}: {e}")
assert one_id == hf_tok(doc)["input_ids"]
assert as_text == hf_tok(doc, split_special_tokens=True)["input_ids"]
"""),
md(r"""
**Prove it.** On the first 50,000 characters of the validation plays, gptlib and Hugging Face
give the same ids, and decoding gives the text back. (The tests compare the two, and an
independent implementation of GPT-2's published algorithm, on code, whitespace runs,
contractions, emoji, other scripts and random Unicode text.)
"""),
code(r"""
ids = gpt2_style.encode(val_text[:50_000])
print(
    len(ids),
    "tokens, same as Hugging Face:",
    ids == hf_tok(val_text[:50_000])["input_ids"],
)
assert ids == hf_tok(val_text[:50_000])["input_ids"]
assert gpt2_style.decode(ids) == val_text[:50_000]
folder.cleanup()
"""),
md(r"""
With GPT-2's real files the code is the same. They need the network once (this cell is not
run in the book):

```python
from huggingface_hub import hf_hub_download

gpt2_tok = BPETokenizer.from_gpt2_files(
    hf_hub_download("openai-community/gpt2", "vocab.json"),
    hf_hub_download("openai-community/gpt2", "merges.txt"))
for s in examples:
    ids = gpt2_tok.encode(s)
    print(len(ids), [gpt2_tok.token_bytes(i) for i in ids])
print(gpt2_tok.encode("<|endoftext|>", allowed_special="all"))  # [50256]
```
"""),
md(r"""
For the rest of the early chapters we use **characters**: $V = 70$ keeps every model small enough
to train on a laptop CPU, and every prediction is easy to read. Chapter 6 builds GPT-2's
architecture and counts the parameters of its 50,257-token models.

## Batches for next-token prediction

Training data is the whole corpus as one long sequence of ids. A training example is a window of
$T$ consecutive ids `x`, and its targets `y` are the same window shifted by one: the target at
position $t$ is the token that comes next. So one window of length $T$ holds $T$ predictions,
each with its own amount of context — a point chapter 3 (masking) builds on.
"""),
code(r"""
train_ids = encode_text(train_text, char_tok)
val_ids = encode_text(val_text, char_tok)
print(
    train_ids.shape, val_ids.shape, train_ids.dtype
)  # one id per character of each split's file
show(get_batch)
"""),
code(r"""
g = torch.Generator().manual_seed(1)
x, y = get_batch(train_ids, batch_size=2, block_size=12, generator=g)
print(x)
print(y)
for t in range(4):
    print(
        f"context {char_tok.decode(x[0, : t + 1])!r:>8} -> target"
        f" {char_tok.decode(y[0, t : t + 1])!r}"
    )
assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one ...
start = int(
    torch.nonzero((train_ids[:-12].unfold(0, 12, 1) == x[0]).all(dim=1))[0]
)
assert (
    y[0, -1] == train_ids[start + 12]
)  # ... and its last target is the token after the window
"""),
md(r"""
## The simplest model: the bigram

A bigram model pretends that the next token depends on the current one only:
$p(x_t \mid x_{<t}) \approx p(x_t \mid x_{t-1})$. Its parameters are a $V \times V$ table. There are
two ways to fill it.

**Count.** The maximum-likelihood table is the relative frequency of each pair in the training
text: $P[a, b] = n_{ab} / \sum_{b'} n_{ab'}$, where $n_{ab}$ counts how often $b$ follows $a$.
"""),
code(r"""
V = char_tok.vocab_size
counts = count_bigrams(train_ids, V)
P_mle = bigram_probs(counts, alpha=0.0)
print("uniform baseline  ln V =", f"{math.log(V):.4f}")
print("counted bigram, train  :", f"{bigram_loss(P_mle, train_ids):.4f}")
print("counted bigram, val    :", f"{bigram_loss(P_mle, val_ids):.4f}")
"""),
md(r"""
The validation loss is infinite. Some pairs of characters in the validation plays never occur
in the training plays, the counted model gives them probability exactly zero, and
$-\ln 0 = \infty$. Which pairs? Mostly the insides of names in capitals that only the held-out
plays use:
"""),
code(r"""
val_counts = count_bigrams(val_ids, V)
unseen = (val_counts > 0) & (counts == 0)
print(
    f"{int(unseen.sum())} distinct pairs, {int(val_counts[unseen].sum())}"
    " occurrences in the validation plays"
)
pairs = sorted(
    zip(*torch.nonzero(unseen, as_tuple=True)),
    key=lambda ab: -int(val_counts[ab]),
)
for a, b in pairs[:4]:
    print(
        f"  {char_tok.decode([int(a), int(b)])!r}: {int(val_counts[a, b])}"
        " times"
    )
"""),
md(r"""
A model must never be *certain* something cannot happen. The classic fix is *add-α smoothing*:
pretend every pair was seen α extra times. We use α = 0.1 below; exercise 2 asks which α is best.
"""),
code(r"""
for alpha in (0.01, 0.1, 1.0):
    P = bigram_probs(counts, alpha)
    print(
        f"alpha={alpha:<5} train {bigram_loss(P, train_ids):.4f}   val"
        f" {bigram_loss(P, val_ids):.4f}"
    )
P_counted = bigram_probs(counts, alpha=0.1)
"""),
md(r"""
### See it: the bigram table

Each row is a probability distribution over the next character. A few rows tell the story of
English spelling and of the corpus's layout: after `q` comes `u`; after `:` (the end of a
speaker's name) usually a newline; after a newline a capital (a speaker's name or a line of
verse) or another newline (the blank line between speeches).
"""),
code(r"""
shown = list("\n :,.aehinoqrstuTHI")
idx = torch.tensor(char_tok.encode("".join(shown)))
labels = ["⏎" if c == "\n" else "␣" if c == " " else c for c in shown]
fig, ax = plt.subplots(figsize=(6.2, 5))
im = ax.imshow(P_counted[idx][:, idx], cmap="Blues", vmin=0, vmax=1)
ax.set_xticks(range(len(shown)), labels)
ax.set_yticks(range(len(shown)), labels)
ax.set_xlabel("next character b")
ax.set_ylabel("current character a")
ax.set_title("p(b | a) for a few characters (counted bigram)")
fig.colorbar(im, ax=ax, shrink=0.8)
plt.show()
"""),
code(r"""
def p(a, b):
    return float(P_counted[char_tok.stoi[a], char_tok.stoi[b]])


capital_after_newline = sum(p("\n", c) for c in char_tok.itos if c.isupper())
print(
    f"p(u | q) = {p('q', 'u'):.3f}   p(newline | :) = {p(':', chr(10)):.2f}  "
    f" p(capital | newline) = {capital_after_newline:.2f}   p(newline |"
    f" newline) = {p(chr(10), chr(10)):.2f}"
)
assert p("q", "u") > 0.99 and p(":", "\n") > 0.7
assert capital_after_newline + p("\n", "\n") > 0.85
"""),
md(r"""
**Train.** The same table can be *learned*. Make it a table of logits $W \in \mathbb{R}^{V \times V}$,
predict $p(\cdot \mid a) = \mathrm{softmax}(W[a])$, and lower the cross-entropy by gradient descent
on random batches. In PyTorch the table is an `nn.Embedding(V, V)`: looking up row $a$ *is* the
model. The cross-entropy of this model is minimised exactly by the counted frequencies, so
gradient descent should arrive at the same loss as counting.
"""),
code(r"""
show(BigramLanguageModel)
"""),
code(r"""
set_seed(0)
g = torch.Generator().manual_seed(0)
model = BigramLanguageModel(V)
steps = 500
optimizer = torch.optim.Adam(model.parameters(), lr=0.2)
schedule = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda s: 1 - s / steps
)  # decay to 0
losses = []
for step in range(steps):
    x, y = get_batch(train_ids, batch_size=64, block_size=256, generator=g)
    logits, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
    losses.append(loss.item())
print(
    f"first batch loss {losses[0]:.4f} (ln V = {math.log(V):.4f}), last batch"
    f" loss {losses[-1]:.2f}"
)
"""),
code(r"""
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(losses, lw=0.8, label="training batch loss")
ax.axhline(math.log(V), color="C3", ls="--", label="uniform baseline ln V")
ax.axhline(
    bigram_loss(P_mle, train_ids),
    color="k",
    ls=":",
    label="counted bigram (train)",
)
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats/token)")
ax.legend()
plt.show()
"""),
md(r"""
**Prove it.** The model starts at the uniform distribution (all logits zero), so its first loss is
exactly $\ln V$ (a check of the setup, not evidence of anything). After training, its loss on the
*whole* training text matches the counted table's:
"""),
code(r"""
trained_train = bigram_loss(model.probs(), train_ids)
counted_train = bigram_loss(P_mle, train_ids)
print(
    f"trained: {trained_train:.2f}   counted: {counted_train:.2f}   "
    f"val (trained): {bigram_loss(model.probs(), val_ids):.2f}"
)
assert abs(losses[0] - math.log(V)) < 1e-4
assert abs(trained_train - counted_train) < 0.01
"""),
md(r"""
### Samples

To generate, start from a token, draw the next from $p(\cdot \mid \text{current})$, repeat. The
output has the *texture* of the plays — names in capitals followed by a colon, short lines,
plausible letter pairs — and none of their sense: the model cannot remember anything beyond the
last character.
"""),
code(r"""
g = torch.Generator().manual_seed(7)
start = char_tok.encode("\n")[0]
print(char_tok.decode(sample_from_probs(P_counted, start, 300, generator=g)))
"""),
md(r"""
### Play with it

Pick a current character and see the model's distribution over the next one. (The drop-down needs
a running notebook; in the HTML book it shows the state it was saved in — the figure above shows
many rows at once.)
"""),
code(r"""
from gptlib.viz import next_token_explorer

next_token_explorer(P_counted, char_tok, start="q")
"""),
md(r"""
## What the bigram is missing: context

The bigram sees one character. The obvious fix is to count longer contexts: an *n-gram* model
conditions on the previous $n-1$ tokens {cite:p}`shannon1948mathematical`. Let us measure how far
that goes on the validation plays (the first 100,000 characters, so the $n = 2$ row differs
slightly from the full-split bigram above), with add-0.1 smoothing. For each $n$ we also record
how often the context is one the training plays contain at all, and how many times, typically.
"""),
code(r"""
train_list, val_list = train_ids.tolist(), val_ids[:100_000].tolist()
ngram = {}
for n in range(1, 8):
    r = ngram[n] = ngram_loss(train_list, val_list, n, V, alpha=0.1)
    print(
        f"n={n}: val loss {r.loss:.3f}   contexts in training {r.contexts:>7,}"
        f" (of V^{n - 1} = {V ** (n - 1):.0e})   val contexts seen"
        f" {r.seen_fraction:4.0%}, median count {r.median_count:>9,.0f}"
    )
"""),
code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
ns = list(ngram)
ax1.plot(ns, [ngram[n].loss for n in ns], "o-")
ax1.axhline(math.log(V), color="C3", ls="--", label="uniform ln V")
ax1.set_xlabel("n (context = n-1 characters)")
ax1.set_ylabel("validation loss")
ax1.legend()
ax2.semilogy(
    ns,
    [ngram[n].median_count for n in ns],
    "o-",
    label="median training count of a val context",
)
ax2.semilogy(
    ns,
    [ngram[n].contexts for n in ns],
    "s--",
    label="distinct contexts in training",
)
ax2.set_xlabel("n")
ax2.legend(fontsize=8)
fig.suptitle(
    "Longer contexts help, then hurt: each context is seen fewer and fewer"
    " times"
)
plt.tight_layout()
plt.show()
"""),
md(r"""
**Prove it.** More context helps at first, then *hurts*. The long contexts are not mostly
unseen — the table shows that most 6-character contexts of the validation plays do occur in
training — but each is seen far less often: the median count falls from thousands to a few dozen.
Add-α smoothing's α·V = 7 pseudo-counts, spread uniformly over all 70 characters, then take a
large share of the probability away from what was actually observed (and a context never seen
falls back to the uniform $1/V$). Every extra character of context divides the data per context
by roughly the number of ways to continue it.
"""),
code(r"""
losses_n = [ngram[n].loss for n in ns]
best_n = min(ngram, key=lambda n: ngram[n].loss)
assert (
    losses_n[0] > losses_n[1] > losses_n[2] > losses_n[3]
)  # context helps ...
assert (
    ngram[7].loss > ngram[best_n].loss + 0.05
)  # ... until the counts get thin,
assert ngram[7].seen_fraction > 0.5  # although most contexts were seen,
assert (
    ngram[7].median_count < 0.01 * ngram[3].median_count
)  # just far less often
print(
    f"best n = {best_n}: {ngram[best_n].loss:.3f} nats/token; n = 7:"
    f" {ngram[7].loss:.3f}"
)
"""),
md(r"""
Better smoothing helps (back-off and Kneser–Ney smoothing fall back to shorter contexts instead of
to uniform {cite:p}`kneser1995improved`), but it cannot remove the root cause: counting treats
every context as an unrelated row of a table, so having seen "thou art" teaches it nothing about
"thou wert". What we want is a model whose parameter count does not grow with the length of the
context it reads, that shares what it learns across similar contexts, and that learns which
earlier tokens matter for the next one. Neural language models share parameters across contexts
{cite:p}`bengio2003neural,mikolov2010recurrent`; self-attention (chapter 2) adds the last part:
each position computes, from the content of the tokens themselves, how much to draw on every
earlier position. A GPT's context is thousands of tokens (2,048 for GPT-3), far beyond what any
table could count.

```{admonition} Common misconception: "a traditional language model only considers the current word"
:class: warning

A common explanation of GPT says that its prediction "depends on all the words in the input
rather than only the current word, as in traditional language models." Two things are wrong with
that contrast.

1. **Conditioning on the past is what every language model does.** The chain rule above is the
   definition of an autoregressive language model, classical or neural. An n-gram model uses the
   previous $n-1$ tokens — we just measured 1- to 6-token contexts; the neural model of
   {cite:t}`bengio2003neural` used a fixed window of previous words too, and recurrent networks
   read unbounded histories {cite:p}`mikolov2010recurrent`. What GPT changes is *how* it uses the
   context: one set of learned weights that reads thousands of tokens and weighs each by its
   content, instead of a table that needs to have seen each exact context.
2. **GPT predicts tokens, not words.** Its unit is a byte-level BPE token: a common word is one
   token, a rare word several pieces, and a space is usually part of the token that follows it.
   The figure above shows how much the unit matters for sequence length.
```

## Exercises

**Exercise 1.** Losses per token are not comparable across tokenizers: a BPE token covers more
text than a character. Convert the trained bigram's validation loss into *bits per character*
(divide nats by $\ln 2$; here one token is one character), and compute the uniform baseline of the
1024-token BPE vocabulary in bits per character on `measure_text` (its loss per token times the
number of tokens, divided by the number of characters).
"""),
code(r"""
# Solution
val_bits_per_char = bigram_loss(model.probs(), val_ids) / math.log(
    2
)  # nats -> bits
n_bpe_tokens = len(bpe.encode(measure_text))
uniform_bpe_bits_per_char = (
    math.log2(bpe.vocab_size) * n_bpe_tokens / len(measure_text)
)
print(
    f"bigram: {val_bits_per_char:.2f} bits/char; uniform over 1024 BPE tokens:"
    f" {uniform_bpe_bits_per_char:.2f} bits/char; uniform over 70 characters:"
    f" {math.log2(V):.2f} bits/char"
)
assert 3.4 < val_bits_per_char < 3.7
assert uniform_bpe_bits_per_char < math.log2(
    V
)  # fewer, bigger guesses cost fewer bits per char
""", "hide-cell"),
md(r"""
**Exercise 2.** Find the smoothing α (among 0.001, 0.01, 0.1, 1, 10) that gives the counted bigram
its lowest validation loss, and show that too much smoothing hurts: α = 10 must be worse than
the best.
"""),
code(r"""
# Solution
val_by_alpha = {
    a: bigram_loss(bigram_probs(counts, a), val_ids)
    for a in (0.001, 0.01, 0.1, 1, 10)
}
best_alpha = min(val_by_alpha, key=val_by_alpha.get)
print({a: round(v, 4) for a, v in val_by_alpha.items()}, "best:", best_alpha)
assert val_by_alpha[10] > val_by_alpha[best_alpha]
""", "hide-cell"),
md(r"""
**Exercise 3.** Train a BPE tokenizer with $V = 300$ on `"low lower lowest newer newest "` repeated
50 times. Predict its first merges by counting pairs by hand (inside the words `low`, ` lower`,
` lowest`, ` newer`, ` newest`, each about 50 times: `w e` occurs in four of them), then check; and show
that it still round-trips a sentence full of characters it never saw.
"""),
code(r"""
# Solution
toy = BPETokenizer.train("low lower lowest newer newest " * 50, vocab_size=300)
first = [toy.token_bytes(256 + r).decode() for r in range(6)]
print(first)
assert (
    first[0] == "we"
    # 'w e' is in ' lower', ' newer', ' newest' (150 times): the most frequent
    # pair
)
s = "Ünïcödé — 完全没见过的字符!"
assert toy.decode(toy.encode(s)) == s
print(len(s), "characters ->", len(toy.encode(s)), "tokens")
""", "hide-cell"),
md(r"""
## Key points

- A language model predicts $p(x_t \mid x_{<t})$; by the chain rule that *is* a model of text.
  It is scored by cross-entropy on held-out text, and $\ln V$ is the score of knowing nothing.
- Text becomes ids by characters, bytes or BPE. BPE trades a bigger vocabulary for shorter
  sequences, and byte-level BPE can encode any text at all.
- A window of $T$ tokens and its one-shifted copy give $T$ next-token training examples at once.
- A bigram model can be counted or trained; both reach the same loss. Counting longer contexts
  helps, then hurts: each extra token of context spreads the data over more rows of the table.
  Models that share parameters across contexts — and, in a GPT, attention — are the way out.

## References

Shannon's n-gram experiments {cite:p}`shannon1948mathematical`; smoothing by back-off
{cite:p}`kneser1995improved`; neural language models {cite:p}`bengio2003neural,mikolov2010recurrent`;
BPE as compression {cite:p}`gage1994new` and for subword units {cite:p}`sennrich2016neural`; GPT, GPT-2 and GPT-3
{cite:p}`radford2018improving,radford2019language,brown2020language`. Full entries are on the
[References](../references.md) page.
"""),
]

if __name__ == "__main__":
    write(Path(__file__).resolve().parents[2] / "chapters" / "01_tokens.ipynb", CELLS)
