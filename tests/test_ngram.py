"""gptlib.ngram against computations written out independently with plain Python loops."""

import math
import random
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlib.ngram import (BigramLanguageModel, bigram_loss, bigram_probs, count_bigrams, ngram_loss,
                          ngram_losses,
                          sample_from_probs)

V = 5
IDS = [0, 1, 2, 1, 0, 3, 1, 2, 1, 1, 4, 0, 1, 2, 3, 1, 0, 0, 2, 1]
ids_lists = st.lists(st.integers(0, V - 1), min_size=3, max_size=60)


@settings(max_examples=50, deadline=None)
@given(ids_lists)
def test_count_bigrams_counts_every_adjacent_pair(ids):
    counts = count_bigrams(torch.tensor(ids), V)
    pairs = Counter(zip(ids, ids[1:]))
    assert counts.shape == (V, V) and int(counts.sum()) == len(ids) - 1
    for a in range(V):
        for b in range(V):
            assert int(counts[a, b]) == pairs[(a, b)]


def test_bigram_probs_by_hand():
    counts = torch.tensor([[2, 0, 2], [0, 0, 0], [1, 3, 0]])
    P = bigram_probs(counts, alpha=0.0)
    assert P.dtype == torch.float64
    assert P.tolist() == [[0.5, 0.0, 0.5], [1 / 3, 1 / 3, 1 / 3], [0.25, 0.75, 0.0]]  # unseen row: uniform
    P1 = bigram_probs(counts, alpha=1.0)
    assert torch.allclose(P1[0], torch.tensor([3 / 7, 1 / 7, 3 / 7], dtype=torch.float64))
    assert torch.allclose(P1[2], torch.tensor([2 / 7, 4 / 7, 1 / 7], dtype=torch.float64))


def test_bigram_loss_is_the_mean_negative_log_likelihood():
    P = bigram_probs(count_bigrams(torch.tensor(IDS), V), alpha=0.5)
    expected = -sum(math.log(float(P[a, b])) for a, b in zip(IDS, IDS[1:])) / (len(IDS) - 1)
    assert bigram_loss(P, torch.tensor(IDS)) == pytest.approx(expected, rel=1e-12)
    P0 = bigram_probs(count_bigrams(torch.tensor(IDS), V))
    assert bigram_loss(P0, torch.tensor([4, 4])) == math.inf     # a pair never seen: probability 0


def reference_ngram(train, held_out, n, vocab_size, alpha):
    """Brute force: for each held-out position scan the whole training list for its context."""
    k, total, seen, counts = n - 1, 0.0, 0, []
    for i in range(k, len(held_out)):
        context, token = held_out[i - k:i], held_out[i]
        c_ctx = sum(1 for j in range(k, len(train)) if train[j - k:j] == context)
        c_gram = sum(1 for j in range(k, len(train)) if train[j - k:j] == context and train[j] == token)
        total -= math.log((c_gram + alpha) / (c_ctx + alpha * vocab_size))
        seen += c_ctx > 0
        counts.append(c_ctx)
    counts.sort()
    m = len(counts)
    median = counts[(m - 1) // 2]           # torch.median: the lower of the two middle values
    distinct = len({tuple(train[j - k:j]) for j in range(k, len(train))})
    return total / m, distinct, seen / m, median


@settings(max_examples=40, deadline=None)
@given(ids_lists, ids_lists, st.integers(1, 4), st.sampled_from([0.01, 0.1, 1.0]))
def test_ngram_loss_equals_a_brute_force_count(train, held_out, n, alpha):
    if len(train) < n or len(held_out) < n:
        with pytest.raises(ValueError, match=f"needs at least {n}"):
            ngram_loss(train, held_out, n, V, alpha)
        return
    r = ngram_loss(train, held_out, n, V, alpha)
    loss, contexts, seen, median = reference_ngram(train, held_out, n, V, alpha)
    assert r.loss == pytest.approx(loss, rel=1e-12)
    assert (r.contexts, r.seen_fraction, r.median_count) == (contexts, pytest.approx(seen), median)


@settings(max_examples=40, deadline=None)
@given(ids_lists, ids_lists, st.integers(1, 4))
def test_ngram_losses_is_ngram_loss_at_each_alpha(train, held_out, n):
    if len(train) < n or len(held_out) < n:
        return
    alphas = (0.01, 0.3, 2.0)
    results = ngram_losses(train, held_out, n, V, alphas)
    assert list(results) == list(alphas)
    for alpha in alphas:
        assert results[alpha] == ngram_loss(train, held_out, n, V, alpha)  # bit for bit
    k = n - 1
    grams = {tuple(train[i:i + n]) for i in range(len(train) - k)}
    unseen = [tuple(held_out[i - k:i + 1]) not in grams for i in range(k, len(held_out))]
    assert results[0.01].unseen_fraction == pytest.approx(sum(unseen) / len(unseen))


def test_ngram_losses_by_hand():
    # train "0 1 0 1 2": bigrams 01 x2, 10, 12; contexts 0 (2), 1 (2). Held out "0 1 1":
    # p(1 | 0) = (2 + a) / (2 + 3a); p(1 | 1) = (0 + a) / (2 + 3a), an unseen bigram.
    r = ngram_losses([0, 1, 0, 1, 2], [0, 1, 1], 2, 3, (0.5, 1.0))
    for a in (0.5, 1.0):
        expected = -(math.log((2 + a) / (2 + 3 * a)) + math.log(a / (2 + 3 * a))) / 2
        assert r[a].loss == pytest.approx(expected, rel=1e-12)
        assert (r[a].seen_fraction, r[a].unseen_fraction, r[a].contexts) == (1.0, 0.5, 2)
    with pytest.raises(ValueError, match="alphas is empty"):
        ngram_losses(IDS, IDS, 2, V, ())
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ngram_losses(IDS, IDS, 2, V, (0.1, 0.0))


def test_ngram_with_n_2_is_the_smoothed_bigram():
    train, held_out = IDS, [1, 2, 1, 0, 4, 4, 3]
    for alpha in (0.1, 1.0):
        P = bigram_probs(count_bigrams(torch.tensor(train), V), alpha)
        assert ngram_loss(train, held_out, 2, V, alpha).loss == pytest.approx(
            bigram_loss(P, torch.tensor(held_out)), rel=1e-12)
    # n = 1 is the smoothed unigram
    unigram = Counter(train)
    expected = -sum(math.log((unigram[t] + 0.1) / (len(train) + 0.1 * V)) for t in held_out) / len(held_out)
    assert ngram_loss(train, held_out, 1, V, 0.1).loss == pytest.approx(expected, rel=1e-12)


def test_ngram_loss_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match=r"eval_ids has 1 token\(s\); an n-gram model with n=2 needs "
                                         r"at least 2"):
        ngram_loss(IDS, [3], 2, V)
    with pytest.raises(ValueError, match=r"eval_ids has 2 token\(s\); .* n=3 needs at least 3"):
        ngram_loss(IDS, [1, 2], 3, V)
    with pytest.raises(ValueError, match=r"train_ids has 0 token\(s\)"):
        ngram_loss([], IDS, 1, V)
    with pytest.raises(ValueError, match=r"eval_ids\[2\] = 5 is not a token id in 0..4"):
        ngram_loss(IDS, [0, 1, 5], 2, V)
    with pytest.raises(ValueError, match=r"train_ids\[0\] = 1.0 is not a token id"):
        ngram_loss([1.0, 2, 3], IDS, 2, V)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        ngram_loss(IDS, IDS, 2, V, alpha=0.0)
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        ngram_loss(IDS, IDS, 0, V)
    assert ngram_loss(torch.tensor(IDS), torch.tensor(IDS), 2, V) == ngram_loss(IDS, IDS, 2, V)


def test_gradient_descent_reaches_the_counted_loss():
    torch.manual_seed(0)
    rng = random.Random(0)
    ids = torch.tensor([rng.choice([0, 1, 1, 2, 3, 3, 3, 4]) for _ in range(400)])
    model = BigramLanguageModel(V)
    logits, loss = model(ids[None, :3])
    assert torch.equal(logits, torch.zeros(1, 3, V)) and loss is None     # starts uniform
    assert model(ids[None, :-1], ids[None, 1:])[1].item() == pytest.approx(math.log(V), abs=1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(300):
        loss = model(ids[None, :-1], ids[None, 1:])[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    counted = bigram_loss(bigram_probs(count_bigrams(ids, V)), ids)
    assert bigram_loss(model.probs(), ids) == pytest.approx(counted, abs=2e-3)
    assert torch.allclose(model.probs().sum(dim=1), torch.ones(V, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"token ids must lie in 0..4"):
        model(torch.tensor([[5]]))
    with pytest.raises(TypeError, match="int64"):
        model(torch.tensor([[1.0]]))


def test_sample_from_probs_follows_the_table():
    cycle = torch.zeros(V, V, dtype=torch.float64)
    for a in range(V):
        cycle[a, (a + 1) % V] = 1.0                     # a deterministic table: a -> a + 1
    assert sample_from_probs(cycle, 3, 7) == [4, 0, 1, 2, 3, 4, 0]
    table = bigram_probs(torch.tensor([[1, 2, 3, 4, 0]] * V), 0.0)   # every row: 0.1 .. 0.4, 0
    draws = sample_from_probs(table, 0, 20_000, generator=torch.Generator().manual_seed(0))
    freq = Counter(draws)
    assert freq[4] == 0
    for b, p in enumerate([0.1, 0.2, 0.3, 0.4]):
        assert abs(freq[b] / 20_000 - p) < 4 * math.sqrt(p * (1 - p) / 20_000)
    again = sample_from_probs(table, 0, 50, generator=torch.Generator().manual_seed(0))
    assert again == draws[:50] and sample_from_probs(table, 0, 0) == []


def test_sample_from_probs_refuses_bad_arguments():
    table = torch.full((11, 11), 1 / 11, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"start must be a token id in 0..10 \(the table has 11 rows\), "
                                         r"got 50"):
        sample_from_probs(table, 50, 5)
    with pytest.raises(ValueError, match="start must be a token id"):
        sample_from_probs(table, -1, 5)
    with pytest.raises(ValueError, match="n_tokens must be an int >= 0"):
        sample_from_probs(table, 0, -3)
    with pytest.raises(ValueError, match=r"each row of probs must sum to 1.*off by 0.5"):
        sample_from_probs(table * 0.5, 0, 5)
    with pytest.raises(ValueError, match=r"probs must be a \(V, V\) float tensor"):
        sample_from_probs(table[:3], 0, 5)
    with pytest.raises(ValueError, match="finite and non-negative"):
        sample_from_probs(torch.full((2, 2), math.nan), 0, 5)


def test_counting_functions_refuse_bad_input():
    with pytest.raises(ValueError, match="1-D int64 tensor"):
        count_bigrams([0, 1], V)
    with pytest.raises(ValueError, match=r"token ids must lie in 0..4; found 0..7"):
        count_bigrams(torch.tensor([0, 7]), V)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        bigram_probs(torch.ones(V, V), -1)
    with pytest.raises(ValueError, match=r"counts must be a \(V, V\) tensor"):
        bigram_probs(torch.ones(V), 0.1)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        bigram_loss(bigram_probs(torch.ones(V, V)), torch.tensor([1]))
