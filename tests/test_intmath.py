"""Integer primitives: exact where they must be exact, close to the float op they replace."""

import math

import numpy as np
import pytest
import torch

from squeezeedge.models import intmath as im


@pytest.mark.parametrize("real", [1e-9, 3.3e-5, 0.0123, 0.5, 0.99999, 1.0, 7.25, 1000.0])
def test_quantized_multiplier_is_accurate_to_31_bits(real):
    m, n = im.quantize_multiplier(real)
    assert 1 <= n <= 62 and 0 < m < 2**31
    assert abs(m / 2**n - real) <= real * 2**-29


def test_requantize_rounds_half_up_and_saturates():
    acc = np.array([1, 3, -1, -3, 5, 10_000, -10_000])
    # multiply by 1/2 (m = 2**30, n = 31): 0.5 → 1, 1.5 → 2, -0.5 → 0, -1.5 → -1
    assert im.requantize(acc, 2**30, 31).tolist() == [1, 2, 0, -1, 3, 127, -128]


def test_isqrt_is_exact_floor():
    xs = np.array([0, 1, 2, 3, 4, 15, 16, 17, 2**40 - 1, 2**40, 2**62 - 1])
    assert im.isqrt(xs).tolist() == [math.isqrt(int(x)) for x in xs]


def test_layer_norm_matches_float_layer_norm():
    rng = np.random.default_rng(0)
    r = rng.integers(-2**19, 2**19, size=(32, 64))
    gamma, beta, s_out = rng.uniform(0.5, 1.5, 64), rng.uniform(-0.5, 0.5, 64), 4 / 127
    g = np.round(gamma / s_out * 2**(im.LN_OUT_BITS - im.LN_Y_BITS))
    b = np.round(beta / s_out * 2**im.LN_OUT_BITS)
    got = im.layer_norm(r, g, b) * s_out
    want = torch.nn.functional.layer_norm(torch.tensor(r, dtype=torch.float64), (64,), torch.tensor(gamma),
                                          torch.tensor(beta)).numpy()
    assert np.abs(got - want).max() <= 1.01 * s_out


def test_layer_norm_of_a_constant_row_is_beta():
    out = im.layer_norm(np.full((1, 8), 1234), np.full(8, 2**10), np.full(8, 5 << im.LN_OUT_BITS))
    assert out.tolist() == [[5] * 8]


def test_softmax_ignores_keys_beyond_length_and_sums_to_about_one():
    rng = np.random.default_rng(1)
    scores = rng.integers(-3000, 3000, size=(4, 10))
    m, n = im.quantize_multiplier(0.001 / im.EXP_STEP)  # score unit 0.001
    p = im.softmax_probs(scores, 6, m, n, im.exp_table())
    assert (p[:, 6:] == 0).all()
    want = torch.softmax(torch.tensor(scores[:, :6] * 0.001), -1).numpy() * 255
    assert np.abs(p[:, :6] - want).max() <= 255 * 0.02
    assert (np.abs(p.sum(-1) - 255) <= 6).all()


def test_softmax_changes_nothing_when_padding_changes():
    rng = np.random.default_rng(2)
    scores = rng.integers(-3000, 3000, size=(3, 8))
    other = scores.copy()
    other[:, 5:] = rng.integers(-10**6, 10**6, size=(3, 3))
    args = (5, *im.quantize_multiplier(0.01), im.exp_table())
    assert (im.softmax_probs(scores, *args) == im.softmax_probs(other, *args)).all()


def test_confidence_approximates_the_float_softmax():
    logits = np.array([40, 10, -20, 38])
    s = 0.05
    conf = im.confidence(logits, 0, *im.quantize_multiplier(s / im.EXP_STEP), im.exp_table())
    want = torch.softmax(torch.tensor(logits * s), -1)[0].item()
    assert abs(conf / im.CONF_ONE - want) < 0.02


def test_argmax_prefers_the_lowest_index_on_ties():
    assert im.argmax(np.array([3, 7, 7, 1])) == 1
