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
    ngram_losses,
    sample_from_probs,
)
from gptlib.tokenizer import PRETOKENIZE_PATTERN, BPETokenizer, CharTokenizer

plt.rcParams["figure.dpi"] = 90
torch.set_printoptions(precision=4)
torch.set_num_threads(1)  # the models here are tiny; the ladder's runs use one
"""),
md(r"""
## The idea: predict the next token from all the previous ones

A *language model* assigns a probability to any sequence of tokens $x_{1:T} = x_1, \dots, x_T$.
The chain rule of probability — true of any distribution, no modelling assumption yet — writes
that probability as a product of next-token predictions:

$$
p(x_1, \dots, x_T) \;=\; \prod_{t=1}^{T} p(x_t \mid x_1, \dots, x_{t-1}) \;=\; \prod_{t=1}^{T} p(x_t \mid x_{<t}).
$$

So a model that can answer "what comes next, given everything so far?" gives a probability to
every sequence of a *given* length $T$. To be a complete model of text — one distribution over
whole texts of every length — it must also be able to say "the text ends here". The usual way is
one more token in the vocabulary, an *end-of-text* token appended to every document: its
probability at step $t$ is the model's probability that the text stops there, and generation
stops when it is drawn. GPT-2's vocabulary has one, `<|endoftext|>` (id 50,256, the last of its
50,257 ids), which it saw between the documents it was trained on; we meet it below. Our
character corpus has none: its plays are simply concatenated, and the training windows of this
book run across the boundaries between plays (we show one below). GPT models $p_\theta(x_t \mid x_{<t})$ directly: a network with parameters $\theta$ reads the
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
runs over the $N$ tokens that do have a predecessor.) Lower is better, and
$e^{\mathcal{L}}$ (the *perplexity*) reads as "the model is as unsure as if it chose uniformly
among this many tokens"; we compute it for each model we measure. A model that knows nothing gives every one of the
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
The split's file is its plays one after another, joined by one extra newline, with no
end-of-text token between them. `get_batch` draws windows from anywhere in that sequence, so a
window can end one play and begin the next, and the model is asked to predict the first speaker
of a new play from the last line of the old one. Here is the first boundary of the training
plays, and how many of all the possible windows of 64 characters straddle some boundary:
"""),
code(r"""
train_plays = load_plays("train")
ends = []  # the end of each play in train_text (the joining newline follows)
pos = 0
for play in train_plays:
    assert train_text[pos : pos + len(play.text)] == play.text
    pos += len(play.text) + 1
    ends.append(pos - 1)
assert pos - 1 == len(train_text)  # plays + one newline between each pair
b = ends[0]
print(f"{train_plays[0].title} | {train_plays[1].title}:")
print(repr(train_text[b - 40 : b + 30]))
# a window starting at i holds ids i..i+T (inputs and targets); it holds the
# last character of a play (at e-1) and the first of the next (at e+1) if
# e-T < i < e: T-1 starts per boundary
T = 64
starts = torch.arange(len(train_ids) - T)  # get_batch's possible starts
crossing = sum(int(((starts > e - T) & (starts < e)).sum()) for e in ends[:-1])
assert crossing == (T - 1) * (len(ends) - 1)
print(
    f"{crossing:,} of {len(starts):,} windows of {T} characters"
    f" ({crossing / len(starts):.3%}) cross one of {len(ends) - 1} boundaries"
)
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
In perplexity, $e^{\mathcal{L}}$: knowing nothing is a uniform choice among all $V = 70$
characters; the smoothed bigram is as unsure as a uniform choice among about 12.
"""),
code(r"""
counted_val = bigram_loss(P_counted, val_ids)
print(
    f"perplexity: uniform {math.exp(math.log(V)):.2f} (= V),"
    f" counted bigram (alpha 0.1) {math.exp(counted_val):.2f}"
)
assert math.isclose(math.exp(math.log(V)), V)
assert 11.5 < math.exp(counted_val) < 12.5
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
model. Its cross-entropy on the training text is minimised exactly by the counted frequencies
(the $\alpha = 0$ table), so gradient descent should approach the counted table's training
loss.
"""),
code(r"""
show(BigramLanguageModel)
"""),
md(r"""
Two identities make this model the same thing as the written-out maths. Looking up row $a$ of
$W$ is multiplying the one-hot vector of $a$ (a 1 at position $a$, zeros elsewhere) by $W$:
an embedding is a matrix product that skips the multiplications by zero. And PyTorch's
`F.cross_entropy(logits, targets)` is the mean, over positions, of $-\ln \mathrm{softmax}$
of the logits at the target: a log-softmax followed by the negative log-likelihood of the
target (`F.nll_loss`), computed in one stable step.
"""),
code(r"""
import torch.nn.functional as F

set_seed(0)
emb = torch.nn.Embedding(V, V)  # a random table W, as nn.Embedding starts
a = torch.tensor([3, 0, 41, 3])
one_hot = F.one_hot(a, V).float()  # (4, V)
print("one-hot @ W == W[a]:", torch.equal(one_hot @ emb.weight, emb(a)))
assert torch.equal(one_hot @ emb.weight, emb(a))

logits, targets = torch.randn(5, V), torch.tensor([1, 7, 0, 69, 1])
by_hand = -F.log_softmax(logits, dim=-1)[torch.arange(5), targets].mean()
nll = F.nll_loss(F.log_softmax(logits, dim=-1), targets)
written_out = (torch.logsumexp(logits, -1) - logits[range(5), targets]).mean()
ce = F.cross_entropy(logits, targets)
print(
    f"cross_entropy {ce:.4f}  log-softmax + NLL {nll:.4f}"
    f"  by hand {by_hand:.4f}"
)
assert torch.allclose(ce, nll) and torch.allclose(ce, by_hand)
assert torch.allclose(ce, written_out)
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
exactly $\ln V$ by construction — a fact of the setup, not a result, so we do not assert it.
What can fail: the counted table is the *maximum-likelihood* table, so no table of
probabilities, trained or not, can have a lower loss on the training text than it has; and
gradient descent should get within a hair of it. Both hold, on the *whole* training text, and
the trained table has learned the same rows (here `q` → `u`):
"""),
code(r"""
trained_train = bigram_loss(model.probs(), train_ids)
counted_train = bigram_loss(P_mle, train_ids)
trained_val = bigram_loss(model.probs(), val_ids)
q, u = char_tok.stoi["q"], char_tok.stoi["u"]
print(
    f"train loss: trained {trained_train:.4f}, counted {counted_train:.4f};"
    f" p(u | q): trained {float(model.probs()[q, u]):.3f},"
    f" counted {float(P_mle[q, u]):.3f}"
)
assert counted_train <= trained_train  # the counted table is the minimum
assert trained_train - counted_train < 0.01  # ... and training gets close
assert abs(float(model.probs()[q, u]) - float(P_mle[q, u])) < 0.02
"""),
md(r"""
On the validation plays the two differ completely: the counted table ($\alpha = 0$) scored
$\infty$, the trained one scores a finite loss. No smoothing was added to the trained table;
it comes free. Its probabilities are a softmax of finite logits, and $e^{z} > 0$ for every
finite $z$, so every pair, including the 28 the training plays never contain, keeps a small
nonzero probability: gradient descent pushes the logits of unseen pairs down, but only by
finite steps, so they stay finite.
"""),
code(r"""
cb = char_tok.stoi["C"], char_tok.stoi["B"]
print(
    f"val loss: trained {trained_val:.4f}, counted (alpha=0) "
    f"{bigram_loss(P_mle, val_ids)}; smallest trained probability"
    f" {float(model.probs().min()):.1e}; p(B | C): trained"
    f" {float(model.probs()[cb]):.1e}, counted {float(P_mle[cb]):.0f}"
)
assert math.isfinite(trained_val) and float(model.probs().min()) > 0
assert float(P_mle[cb]) == 0 and float(model.probs()[cb]) > 0
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
conditions on the previous $n-1$ tokens {cite:p}`shannon1948mathematical`, with
$p(b \mid \text{ctx}) = (N[\text{ctx}, b] + \alpha) / (N[\text{ctx}] + \alpha V)$. Let us
measure how far that goes on the whole validation split, for $n = 1, \dots, 7$ and five
smoothings α at once (`ngram_losses` counts once per $n$ and scores every α from the same
counts; each result is exactly `ngram_loss`'s). For $n = 2$ this is the smoothed bigram of the
last section: `bigram_loss(bigram_probs(counts, α), val_ids)` is the same sum (up to float
rounding). For each $n$ we
also record how many distinct contexts the training plays hold (out of the $V^{n-1}$ possible),
how often a validation context is one the training plays contain at all, how many times
(the median), and how often the whole $n$-gram — context *and* next character — never occurs
in training.
"""),
code(r"""
show(ngram_losses)
"""),
code(r"""
train_list, val_list = train_ids.tolist(), val_ids.tolist()
alphas = (0.01, 0.03, 0.1, 0.3, 1.0)
ngram = {
    n: ngram_losses(train_list, val_list, n, V, alphas) for n in range(1, 8)
}
# the same sum as the last section's bigram (up to float rounding)
assert math.isclose(ngram[2][0.1].loss, counted_val, rel_tol=1e-9)
print(" n  contexts   possible V^(n-1)  ctx seen  median count  n-gram unseen")
for n, by_alpha in ngram.items():
    r = by_alpha[0.1]  # the counts do not depend on alpha
    print(
        f"{n:>2} {r.contexts:>9,} {V ** (n - 1):>18,} {r.seen_fraction:>9.1%}"
        f" {r.median_count:>13,.0f} {r.unseen_fraction:>14.1%}"
    )
"""),
md(r"""
And the validation loss of every ($n$, α), with the best α for each $n$ (for $n = 1$ the
smoothing hardly matters: every character occurs thousands of times):
"""),
code(r"""
print(" n  " + "".join(f"a={a:<6}" for a in alphas) + "  best a   perplexity")
best_alpha = {}
for n, by_alpha in ngram.items():
    best_alpha[n] = min(alphas, key=lambda a: by_alpha[a].loss)
    best = by_alpha[best_alpha[n]].loss
    row = "".join(f"{by_alpha[a].loss:<8.4f}" for a in alphas)
    shown_a = "-" if n == 1 else f"{best_alpha[n]:g}"
    print(f"{n:>2}  {row}  {shown_a:<6} {math.exp(best):>9.2f}")
"""),
code(r"""
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 3.4))
ns = list(ngram)
for a, colour in zip(alphas, plt.cm.viridis([0, 0.25, 0.5, 0.75, 0.95])):
    ax1.plot(
        ns, [ngram[n][a].loss for n in ns], "o-", color=colour, label=f"α={a}"
    )
ax1.axhline(math.log(V), color="C3", ls="--", label="uniform ln V")
ax1.set_xlabel("n (context = n-1 characters)")
ax1.set_ylabel("validation loss (nats/char)")
ax1.legend(fontsize=8, ncol=2)
ax2.semilogy(
    ns,
    [ngram[n][0.1].median_count for n in ns],
    "o-",
    label="median training count of a val context",
)
ax2.semilogy(
    ns,
    [ngram[n][0.1].contexts for n in ns],
    "s--",
    label="distinct contexts in training",
)
ax2.set_xlabel("n")
ax2.legend(fontsize=8)
fig.suptitle(
    "Longer contexts help, then hurt, at every α: each context is seen"
    " fewer and fewer times",
    fontsize=10,
)
plt.tight_layout()
plt.show()
"""),
md(r"""
**Prove it.** More context helps at first, then *hurts* — at every α. It is tempting to blame
the smoothing: α·V pseudo-counts spread uniformly over all 70 characters take probability away
from what was observed. But the U is there at α = 0.01 (0.7 pseudo-counts per context) as at
α = 1 (70), and even the best α for each $n$ leaves it; only where its bottom sits moves a
little. The cause is thin counts. The long contexts are not mostly unseen — the first table
shows that 87.4% of the 6-character contexts of the validation plays ($n = 7$) occur in
training — but the median one was seen only 24 times, too few to estimate a distribution over
70 next characters. So 22.9% of the validation 7-grams never occur in training, although only
12.6% of their contexts are unseen, and each such position gets only
$\alpha / (N[\text{ctx}] + \alpha V)$. A small α makes those
positions very expensive; a large α makes them cheaper and every observed continuation
dearer. No α fixes both, because what is missing is data per context, and every extra
character of context divides it by roughly the number of ways to continue.
"""),
code(r"""
for a in alphas:
    loss = {n: ngram[n][a].loss for n in ns}
    assert loss[1] > loss[2] > loss[3] > loss[4], a  # context helps ...
    assert loss[7] > min(loss.values()) + 0.3, a  # ... then hurts, at every α,
best_of = {n: ngram[n][best_alpha[n]].loss for n in ns}
assert best_of[7] > min(best_of.values()) + 0.3  # even at the best α per n;
assert ngram[7][0.1].seen_fraction > 0.5  # most contexts were seen,
assert ngram[7][0.1].median_count < 0.01 * ngram[3][0.1].median_count
r7 = ngram[7][0.1]
assert r7.unseen_fraction > 5 * ngram[4][0.1].unseen_fraction
assert r7.unseen_fraction - (1 - r7.seen_fraction) > 0.1  # seen ctx, new next
best_n = min(best_of, key=best_of.get)
print(
    f"best: n = {best_n}, alpha = {best_alpha[best_n]}:"
    f" {best_of[best_n]:.4f} nats/char; n = 7: {best_of[7]:.4f} at best"
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
"""),
md(r"""
## The loss ladder so far

Chapters 1 to 7 each end on one yardstick: the validation loss, in nats per character, of the
minimal model of each chapter — a *rung* of the ladder. The trained rungs all get the same
budget (1,500 steps of 32 windows of 64 characters: 3,072,000 training tokens; AdamW with
warm-up and cosine decay; the learning rate chosen by the validation loss of seed 0), three
seeds each, and are scored by `gptlib.pretrain.dataset_loss` on every window of 64 characters
of the validation plays. The counted rungs have no randomness, so each is one run, scored on
the same windows (below: how that differs from this chapter's tables).
`scripts/experiments/ladder.py` trains and scores them all and writes
`data/results/ladder.json`. Chapter 1 has four rungs: the unigram (α = 0.1), the counted bigram
and the best counted $n$-gram (their α, and the best $n \in \{2, \dots, 7\}$, chosen on
validation from α ∈ {0.01, 0.03, 0.1, 0.3}), and the neural bigram, a trained $V \times V$
table (`BigramLanguageModel`).
"""),
code(r"""
from gptlib.ladder import (
    BUDGET,
    NGRAM_GRID,
    build_model,
    ladder_summary,
    ladder_table,
    read_ladder,
    rung_gap,
    rung_losses,
    train_config,
)
from gptlib.pretrain import dataset_loss, train
from gptlib.viz.ladder import plot_ladder

ladder = read_ladder("../data/results/ladder.json")
print(ladder_table(ladder, upto_chapter=1))
plot_ladder(ladder, chapter=1, reference=math.log(V))
plt.show()
"""),
md(r"""
The counted rungs in the file are this chapter's numbers, scored two ways. Every rung of the
ladder is scored on the same 64-character windows of the validation plays, the windows the
neural rungs read, whose context restarts at each window: so the ladder's counted models see
only the characters inside the window, and the first targets of each window back off to a
shorter context (`gptlib.ladder.ngram_window_loss`). The file also keeps the number this
chapter computes, every character with its full $n - 1$ predecessors
(`val_loss_full_context`). The cell below finds that number in the sweep above, shows what the
windows cost, checks that the file's choice is the best of the ladder's grid in the sweep too,
and turns each rung's loss into a perplexity:
"""),
code(r"""
summary = {r["rung"]: r for r in ladder_summary(ladder, upto_chapter=1)}
counted = {
    r["rung"]: r
    for r in ladder["runs"]
    if r["rung"] in ("unigram", "bigram", "ngram")
}
for name, run in counted.items():
    ours = ngram[run["n"]][run["alpha"]].loss
    print(
        f"{name:>8}: n = {run['n']}, alpha = {run['alpha']:<5} full context:"
        f" file {run['val_loss_full_context']:.4f}, this chapter {ours:.4f};"
        f" on the windows {run['val_loss']:.4f}"
    )
    assert abs(ours - run["val_loss_full_context"]) <= 5e-5  # 4 places
    assert run["val_loss"] >= run["val_loss_full_context"] - 5e-5
grid = [(n, a) for n in NGRAM_GRID["n"] for a in NGRAM_GRID["alpha"]]
n_best, a_best = min(grid, key=lambda na: ngram[na[0]][na[1]].loss)
assert (counted["ngram"]["n"], counted["ngram"]["alpha"]) == (n_best, a_best)
a2 = min(NGRAM_GRID["alpha"], key=lambda a: ngram[2][a].loss)
assert counted["bigram"]["alpha"] == a2
for name, r in summary.items():
    print(f"{r['label']:>30}: perplexity {math.exp(r['mean']):5.2f}")
"""),
md(r"""
The best counted $n$-gram is the 5-gram with α = 0.03: four characters of context. The windows
cost it 0.02 nats (at the start of every window it has fewer than four characters to read) and
cost the bigram nothing (its one character of context is always inside the window). The neural
bigram is scored on slightly fewer positions than the counted bigram — `dataset_loss` cuts the
631,595 validation characters into 9,868 whole windows of 64 and so scores 631,552 of the
631,594 predictions, leaving out the last 42 — which moves the counted bigram's loss by less
than $10^{-5}$ (the cell below shows it). Here is the neural rung trained live, with the
file's learning rate and the full budget (it takes seconds), and scored on the ladder's windows:
"""),
code(r"""
# the loss printed here depends on the CPU's last bits; the next cell checks it
lr = summary["neural-bigram"]["lr"]
set_seed(0)
table = build_model("neural-bigram", V)
result = train(table, train_ids, train_config(lr, seed=0))
live_val = dataset_loss(table, val_ids, BUDGET["block_size"])
print(f"lr {lr}: {result.tokens:,} tokens, val loss {live_val:.4f}")
""", "nbval-ignore-output"),
code(r"""
n_win = (len(val_ids) - 1) // BUDGET["block_size"]
P_bigram = bigram_probs(counts, counted["bigram"]["alpha"])
on_windows = bigram_loss(P_bigram, val_ids[: n_win * BUDGET["block_size"] + 1])
print(
    f"{n_win:,} windows; counted bigram on their positions {on_windows:.5f},"
    f" on all {ngram[2][counted['bigram']['alpha']].loss:.5f}"
)
assert n_win * BUDGET["block_size"] == 631_552 and len(val_ids) == 631_595
assert abs(on_windows - ngram[2][counted["bigram"]["alpha"]].loss) < 1e-5
seed0 = [
    r["val_loss"]
    for r in ladder["runs"]
    if r["rung"] == "neural-bigram" and r.get("final") and r["seed"] == 0
][0]
print("the live run matches the file's seed 0:", abs(live_val - seed0) < 5e-4)
assert abs(live_val - seed0) < 5e-4  # the seeds span 9e-4
"""),
md(r"""
**Prove it.** What chapter 1's rungs achieve, worst case over the seeds (`rung_gap(ladder,
better, worse)` is the worse rung's best run minus the better rung's worst run):

- one character of context is worth 0.83 nats: the counted bigram beats the unigram by that
  much (counted rungs have no seeds, so worst case and mean agree);
- three more characters of context (the 5-gram reads four) are worth 0.82 nats more, on the
  ladder's windows;
- the neural bigram does **not** improve on the counted bigram: both are a $V \times V$ table
  of next-character probabilities, and the counted table is the best such table for the
  *training* text (on validation either can come out a little ahead). Trained for the ladder's budget, every seed ends within 0.01 nats
  of the counted bigram, on the worse side, and the three seeds span less than a fifth of that
  gap.
"""),
code(r"""
spread = summary["neural-bigram"]["spread"]
gaps = {
    ("bigram", "unigram"): rung_gap(ladder, "bigram", "unigram"),
    ("ngram", "bigram"): rung_gap(ladder, "ngram", "bigram"),
    ("bigram", "neural-bigram"): rung_gap(ladder, "bigram", "neural-bigram"),
}
for (better, worse), gap in gaps.items():
    print(f"{better} below {worse}: {gap:.4f} nats (worst case)")
print(f"neural bigram seed spread: {spread:.4f}")
assert round(gaps[("bigram", "unigram")], 2) == 0.83
assert round(gaps[("ngram", "bigram")], 2) == 0.82
neural = rung_losses(ladder, "neural-bigram")
assert all(abs(x - counted["bigram"]["val_loss"]) < 0.01 for x in neural)
assert 0 < gaps[("bigram", "neural-bigram")] < 0.01  # counted slightly better
assert spread < 0.2 * gaps[("bigram", "neural-bigram")]
assert (counted["ngram"]["n"], counted["ngram"]["alpha"]) == (5, 0.03)
"""),
md(r"""
Why is the trained table on the worse side? On the *training* text it has not reached the
minimum that counting attains: after 3,072,000 tokens its training loss is still above the
counted table's, and most of that gap is the recipe's weight decay (0.1), which pulls every
logit toward zero, that is, toward the uniform distribution. The same run (seed 0) without
weight decay gets closer to the counted minimum on the training text:
"""),
code(r"""
import dataclasses

set_seed(0)
no_wd = build_model("neural-bigram", V)
train(
    no_wd,
    train_ids,
    dataclasses.replace(train_config(lr, 0), weight_decay=0.0),
)
for label, m in (("weight decay 0.1", table), ("no weight decay", no_wd)):
    print(
        f"{label:>16}: train {bigram_loss(m.probs(), train_ids):.4f} (counted"
        f" minimum {counted_train:.4f}), val"
        f" {dataset_loss(m, val_ids, BUDGET['block_size']):.4f}"
    )
""", "nbval-ignore-output"),
code(r"""
gap_wd = bigram_loss(table.probs(), train_ids) - counted_train
gap_no_wd = bigram_loss(no_wd.probs(), train_ids) - counted_train
print(
    f"training-loss gap: {gap_wd:.3f} with weight decay,"
    f" {gap_no_wd:.3f} without"
)
assert gap_wd > 0.005 and 0 <= gap_no_wd < 0.5 * gap_wd
assert dataset_loss(no_wd, val_ids, BUDGET["block_size"]) < live_val
"""),
md(r"""
Chapter 2 adds the first rungs that are neither counted nor a table: token embeddings, one
causal attention head reading up to 64 characters, and an output layer. They are trained under
the same budget and scored on the same windows, and their losses are measured against these
four.

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
50 times. Predict its first three merges by counting pairs by hand (the pre-tokenizer makes the
words `low` once, ` low` 49 times, and ` lower`, ` lowest`, ` newer`, ` newest` 50 times each:
`w e` occurs in four of them), then check; and show that it still round-trips a sentence full
of characters it never saw.
"""),
code(r"""
# Solution
from collections import Counter

text = "low lower lowest newer newest " * 50
words = Counter(re.findall(PRETOKENIZE_PATTERN, text))
pairs = Counter()
for word, k in words.items():
    for pair in zip(word, word[1:]):
        pairs[pair] += k
print(pairs.most_common(4))
# 'w e': ' lower', ' lowest', ' newer', ' newest', 50 times each = 200: merge 0.
# Then 'l o' (in 'low', ' low', ' lower', ' lowest': 1 + 49 + 50 + 50 = 150),
# untouched by merge 0; 'o w' had 150 too, but merge 0 took the 'w' of
# ' lower' and ' lowest', leaving 50. Then ' ' + 'lo' (149: the first 'low'
# has no space before it).
assert pairs[("w", "e")] == 200 and pairs[("l", "o")] == 150
assert pairs[(" ", "l")] == 149
toy = BPETokenizer.train(text, vocab_size=300)
first = [toy.token_bytes(256 + r).decode() for r in range(6)]
print(first)
assert first[:3] == ["we", "lo", " lo"]
s = "Ünïcödé — 完全没见过的字符!"
assert toy.decode(toy.encode(s)) == s
print(len(s), "characters ->", len(toy.encode(s)), "tokens")
""", "hide-cell"),
md(r"""
## Key points

- A language model predicts $p(x_t \mid x_{<t})$; by the chain rule that is a model of every
  sequence of a given length, and with an end-of-text token (GPT-2's `<|endoftext|>`, id
  50,256) a model of whole texts. It is scored by cross-entropy on held-out text; $\ln V$ is
  the score of knowing nothing, and $e^{\mathcal{L}}$, the perplexity, reads the loss as a
  number of equally likely choices.
- Text becomes ids by characters, bytes or BPE. BPE trades a bigger vocabulary for shorter
  sequences, and byte-level BPE can encode any text at all.
- A window of $T$ tokens and its one-shifted copy give $T$ next-token training examples at once.
  Here the windows run across the boundaries between plays.
- A bigram model can be counted or trained. On the training text the counted table is the
  minimum and training approaches it; on held-out text the unsmoothed counted table scores
  $\infty$, while a trained table of finite logits never gives probability zero.
- Counting longer contexts helps, then hurts, whatever the smoothing: each extra token of
  context spreads the data over more rows of the table. The best counted $n$-gram here is the
  5-gram, and at this book's small scale it is a hard baseline: the loss ladder shows every
  small GPT of chapters 2-6 above it and the shipped model of chapter 7 only level with it.
  What parameter sharing and attention offer is a model that keeps improving with size and
  context, where the counts run out.

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
