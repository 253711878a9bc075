"""gptlib.baselines (Naive Bayes), gptlib.probe (linear probe) and the shuffled-words task."""

import math
from collections import Counter

import pytest
import torch

from gptlib.baselines import NaiveBayes, word_pairs, words
from gptlib.finetune import (THREE_CLASSES, ClassificationData, GPTClassifier, dev_plays,
                             pad_batch, real_or_shuffled)
from gptlib.genre_data import shuffle_words
from gptlib.model import GPT, GPTConfig
from gptlib.probe import classifier_features, fit_linear_probe


def test_naive_bayes_scores_are_the_smoothed_counts_written_out():
    texts = ["good good lord", "lord death", "death death blood"]
    labels = [0, 0, 1]
    nb = NaiveBayes("words", alpha=0.5).fit(texts, labels)
    vocab = ["good", "lord", "death", "blood"]
    counts = {0: Counter("good good lord lord death".split()),
              1: Counter("death death blood".split())}
    for c in (0, 1):
        total = sum(counts[c].values()) + 0.5 * len(vocab)
        expected = math.log((2, 1)[c] / 3) + sum(
            math.log((counts[c][w] + 0.5) / total) for w in ("good", "death", "lord"))
        # the unseen word is skipped
        got = nb.scores(["Good death, lord! unseenword"])[0, c].item()
        assert got == pytest.approx(expected, rel=1e-6)
    assert nb.predict(["blood and death"]).tolist() == [1]
    assert nb.predict(["good lord"]).tolist() == [0]


def test_word_features():
    assert words("O, Romeo! Thou'rt here.") == ["o", "romeo", "thou'rt", "here"]
    assert word_pairs("To be, or not") == ["to be", "be or", "or not"]


def test_naive_bayes_errors():
    with pytest.raises(ValueError, match="unknown features"):
        NaiveBayes("letters")
    with pytest.raises(ValueError, match="alpha"):
        NaiveBayes(alpha=0)
    with pytest.raises(ValueError, match="as many labels"):
        NaiveBayes().fit(["a b"], [0, 1])
    with pytest.raises(RuntimeError, match="fit"):
        NaiveBayes().predict(["a"])


def test_shuffle_words_keeps_every_character_and_the_headings():
    text = "KING HENRY IV:\nSo shaken as we are, so wan with care,\n\nFirst Lord:\nAy, my lord."
    out = shuffle_words(text, torch.Generator().manual_seed(3))
    assert out != text
    assert sorted(out) == sorted(text)                        # same characters
    assert Counter(words(out)) == Counter(words(text))       # same bag of words
    assert out.startswith("KING HENRY IV:\n") and "\n\nFirst Lord:\n" in out
    assert [c for c in out if not c.isalpha() and c != "'"] == \
        [c for c in text if not c.isalpha() and c != "'"]    # punctuation and layout in place


def test_real_or_shuffled_labels_say_which_passages_changed():
    texts = ["the king is dead and the queen weeps sore", "long live the king of all england"] * 8
    idx, mask = pad_batch([[ord(c) % 50 for c in t] for t in texts])

    class Tok:
        def encode(self, t):
            return [ord(c) % 50 for c in t]

    data = ClassificationData(idx, mask, torch.zeros(16, dtype=torch.long), ("x",), texts,
                              ["p"] * 16)
    task = real_or_shuffled(data, Tok(), seed=0)
    changed = [a != b for a, b in zip(task.texts, texts)]
    assert task.labels.tolist() == [int(c) for c in changed]   # these texts always change
    assert 0 < task.labels.sum() < 16 and task.classes == ("real", "shuffled")


def test_dev_plays_hold_out_whole_training_plays_of_every_class():
    fit, dev = dev_plays(THREE_CLASSES, per_class=2)
    assert len(dev) == 6 and not {p.slug for p in fit} & {p.slug for p in dev}
    assert {p.split for p in fit + dev} == {"train"}
    with pytest.raises(ValueError, match="would leave none"):
        dev_plays(THREE_CLASSES, per_class=6)


def test_linear_probe_converges_and_its_head_reads_raw_features():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=12, block_size=16, n_layer=1, n_head=2, n_embd=16))
    clf = GPTClassifier(model, 2, pooling="mean")
    idx = torch.randint(1, 12, (64, 10))
    labels = (idx == 3).any(1).long()                        # does the passage contain token 3?
    data = ClassificationData(idx, torch.ones_like(idx, dtype=torch.bool), labels, ("a", "b"),
                              [""] * 64, [""] * 64)
    before = [p.clone() for p in model.parameters()]
    info = fit_linear_probe(clf, data, weight_decay=0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # backbone frozen
    h = classifier_features(clf, data).double()
    z = (h - h.mean(0)) / h.std(0)
    # at the optimum of unregularised logistic regression the gradient vanishes
    with torch.no_grad():
        logits = clf(idx, data.padding_mask)[0]
    assert info["train_accuracy"] == (logits.argmax(1) == labels).double().mean().item()
    probs = logits.double().softmax(1)
    grad = (probs - torch.nn.functional.one_hot(labels, 2)).T @ z / len(labels)
    assert grad.abs().max() < 1e-3                           # converged: stationary point
    with pytest.raises(ValueError, match="weight_decay"):
        fit_linear_probe(clf, data, weight_decay=-1)
