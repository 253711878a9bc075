"""Tokenizers: round trips, hand-checked BPE merges, an independent reference, save/load, errors."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.tokenizer import (GPT2_PATTERN, PRETOKENIZE_PATTERN, BPETokenizer, CharTokenizer,
                              load_tokenizer, tokenizer_from_dict)

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

    import regex
    words = Counter((re if pattern == PRETOKENIZE_PATTERN else regex).findall(pattern, text))
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


# Pieces of text to build training text from: letters, spaces, newlines, digits, punctuation,
# contractions and multi-byte UTF-8 (2, 3 and 4 bytes), some repeated so that merges happen.
PIECES = list("ab cd\n0123456789.,;:!?'-_()\t") + ["'s", "'ll", "n't", "'ve", "é", "ü", "语", "言",
                                                   "😀", "the ", " the", "  ", "ab", "__", "x's"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=150).map("".join),
       st.integers(256, 320), st.sampled_from([PRETOKENIZE_PATTERN, GPT2_PATTERN]))
def test_incremental_training_equals_the_naive_reference(text, vocab_size, pattern):
    tok = BPETokenizer.train(text, vocab_size, pattern=pattern)
    assert tok.merges == naive_bpe_merges(text, vocab_size, pattern)
    assert tok.decode(tok.encode(text)) == text


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


@pytest.mark.parametrize("description, message", [
    ({"type": "bpe", "merges": [[97]]}, r"merge 0 must be a pair of token ids \[a, b\], got \[97\]"),
    ({"type": "bpe", "merges": [[97, 98, 99]]}, "merge 0 must be a pair of token ids"),
    ({"type": "bpe", "merges": [[97, 98], 5]}, "merge 1 must be a pair of token ids"),
    ({"type": "bpe", "merges": [["a", "b"]]}, r"merge 0 = \['a', 'b'\]: token ids must be ints"),
    ({"type": "bpe", "merges": [[97, True]]}, "token ids must be ints"),
    ({"type": "bpe", "merges": [[97.0, 98]]}, "token ids must be ints"),
    ({"type": "bpe", "merges": "ab"}, "merges must be a list, got str"),
    ({"type": "bpe", "merges": {"0": [97, 98]}}, "merges must be a list, got dict"),
    ({"type": "bpe", "merges": [[97, 257]]}, r"merge 0 = \(97, 257\) refers to a token that does not "
                                             r"exist yet \(ids must be below 256\)"),
    ({"type": "bpe", "merges": [[-1, 98]]}, "refers to a token that does not exist yet"),
    ({"type": "bpe", "merges": [[97, 98], [97, 98]]}, r"merge 1 = \(97, 98\) repeats merge 0"),
    ({"type": "bpe", "merges": [], "vocab_size": 300}, r"unknown key\(s\) \['vocab_size'\]"),
    ({"type": "char", "chars": "ab", "merges": []}, r"unknown key\(s\) \['merges'\]"),
    ({"type": "bpe"}, "missing key 'merges'"),
    ({"type": "char"}, "missing key 'chars'"),
    ({"type": "char", "chars": ["a", "b"]}, "chars must be a str, got list"),
    ({"type": "char", "chars": "aba"}, "distinct single characters"),
    ({"type": "char", "chars": ""}, "at least one character"),
    ({"type": "bpe", "merges": [], "pattern": 5}, "pattern must be a str"),
    ({"type": "bpe", "merges": [], "pattern": "(a"}, r"pattern '\(a' is not a valid regular expression"),
    ({"type": "bpe", "merges": [], "special_tokens": {"<|e|>": 256}}, "special_tokens given without a vocab"),
    # GPT-2's layout (from_gpt2_files): the bytes of every id, as GPT-2 writes them
    ({"type": "bpe", "merges": [], "vocab": ["a", "a"]}, r"duplicate token: ids 0 and 1 both stand for b'a'"),
    ({"type": "bpe", "merges": [], "vocab": "abc"}, "vocab must be a list"),
    ({"type": "bpe", "merges": [], "vocab": [1, 2]}, r"vocab\[0\] must be a str"),
    ({"type": "bpe", "merges": [], "vocab": ["a", " "]}, r"vocab\[1\] = ' ' has ' ', which is not in "
                                                         r"GPT-2's byte-to-unicode alphabet"),
    ({"type": "bpe", "merges": [], "vocab": ["a", "b"]}, r"no token for byte\(s\) \[0, 1, 2"),
    ({"type": "bpe", "merges": [], "vocab": ["a"], "special_tokens": {"<|e|>": 5}},
     r"special token '<\|e\|>' id 5 is outside the vocabulary \(0..0\)"),
    ({"type": "bpe", "merges": [], "vocab": ["a"], "special_tokens": ["<|e|>"]},
     "special_tokens must be a dict"),
])
def test_malformed_tokenizer_descriptions_are_refused_naming_the_problem(description, message):
    with pytest.raises(ValueError, match="corrupt (bpe|char) tokenizer description: .*" + message):
        tokenizer_from_dict(description)


def test_gpt2_layout_description_errors_in_merges():
    from gptlib.tokenizer import bytes_to_unicode
    vocab = list(bytes_to_unicode().values()) + ["ab"]
    ok = tokenizer_from_dict({"type": "bpe", "merges": [[97 - 33, 98 - 33]], "vocab": vocab,
                              "pattern": GPT2_PATTERN})
    assert ok.encode("cab") == [99 - 33, 256] and ok.decode([256]) == "ab"
    for merges, message in [([[0, 300]], r"merge 0 = \(0, 300\): id 300 is outside the vocabulary"),
                            ([[0, 1]], r"merge 0 joins b'!' and b'\"' into b'!\"', which is not in"),
                            ([["0", 1]], "token ids must be ints")]:
        with pytest.raises(ValueError, match=message):
            tokenizer_from_dict({"type": "bpe", "merges": merges, "vocab": vocab})
