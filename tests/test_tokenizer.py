"""Tokenizers: round trips, hand-checked BPE merges, an independent reference, save/load, errors."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.tokenizer import BPETokenizer, CharTokenizer, load_tokenizer, tokenizer_from_dict

SETTINGS = settings(max_examples=60, deadline=None)
TRAIN = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
         "Their naïve café — 语言模型 — isn't ours; we'll see 123 + 456.\n") * 3


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(TRAIN, vocab_size=320)


@SETTINGS
@given(st.text(alphabet=sorted(set(TRAIN))))
def test_char_round_trip(text):
    tok = CharTokenizer.train(TRAIN)
    assert tok.decode(tok.encode(text)) == text


@SETTINGS
@given(st.text())  # any Unicode text, including characters never seen in training
def test_bpe_round_trip_on_any_text(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text


def test_bpe_merges_on_a_hand_checked_example():
    # "aaabdaaabac": (a,a) occurs 4 times -> 256; then (a,b) and (aa,a) tie at 2 and the smaller
    # pair (97, 98) wins -> 257 = "ab"; then (aa, ab) occurs twice -> 258 = "aaab".
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=259, pattern=r".+")
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert tok.token_bytes(258) == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def naive_bpe_merges(text, vocab_size, pattern):
    """Reference BPE: recount every pair from scratch after every merge (slow, obviously right)."""
    import re
    words = Counter(re.findall(pattern, text))
    seqs = {w: list(w.encode("utf-8")) for w in words}
    merges = []
    for new_id in range(256, vocab_size):
        pairs = Counter()
        for w, seq in seqs.items():
            for p in zip(seq, seq[1:]):
                pairs[p] += words[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out
    return merges


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="ab cd\n", min_size=1, max_size=300), st.integers(256, 300))
def test_incremental_training_equals_the_naive_reference(text, vocab_size):
    tok = BPETokenizer.train(text, vocab_size)
    assert tok.merges == naive_bpe_merges(text, vocab_size, tok.pattern)


def test_bpe_shortens_sequences_and_learns_common_pieces(bpe):
    assert len(bpe.encode(TRAIN)) < 0.6 * len(TRAIN.encode("utf-8"))
    learned = {bpe.token_bytes(i) for i in range(256, bpe.vocab_size)}
    assert b" speak" in learned or b"peak" in learned


def test_save_and_load(tmp_path, bpe):
    char = CharTokenizer.train(TRAIN)
    for tok in (char, bpe):
        path = tmp_path / f"{type(tok).__name__}.json"
        tok.save(path)
        again = load_tokenizer(path)
        assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
        assert again.encode(TRAIN) == tok.encode(TRAIN)
        assert tokenizer_from_dict(tok.to_dict()).encode("Speak") == tok.encode("Speak")


def test_clear_errors(tmp_path, bpe):
    char = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=r"character 'z' \(position 1\) is not in this tokenizer's vocabulary"):
        char.encode("az")
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer.train("", 300)
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256"):
        BPETokenizer.train("abc", 100)
    with pytest.raises(ValueError, match="token id 3 at position 0 is outside the vocabulary"):
        char.decode([3])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bpe.decode([bpe.vocab_size])
    with pytest.raises(TypeError, match="must be a str"):
        bpe.encode(b"bytes")
    with pytest.raises(ValueError, match="lone surrogate"):
        bpe.encode("a\ud800b")
    with pytest.raises(ValueError, match="refers to a token that does not exist yet"):
        BPETokenizer([(256, 97)])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_tokenizer(bad)
    bad.write_text('{"type": "wordpiece"}')
    with pytest.raises(ValueError, match="type 'char' or 'bpe'"):
        load_tokenizer(bad)
