"""SamplingParams validation, the sampler's filters and determinism, stop strings."""
from __future__ import annotations

import pytest
import torch

from fastcoder.errors import InvalidParameterError
from fastcoder.sample.sampler import Sampler, apply_penalties, filter_logits
from fastcoder.sample.stop import StopStringMatcher
from fastcoder.sampling_params import SamplingParams


@pytest.mark.parametrize("kwargs, param", [
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"min_p": 2.0}, "min_p"),
    ({"presence_penalty": 3.0}, "presence_penalty"),
    ({"frequency_penalty": -2.5}, "frequency_penalty"),
    ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"seed": -1}, "seed"),
    ({"stop": ["ok", ""]}, "stop"),
])
def test_bad_values_raise_typed_error_naming_the_field(kwargs, param):
    with pytest.raises(InvalidParameterError) as info:
        SamplingParams(**kwargs)
    assert info.value.param == param and param in info.value.message
    assert info.value.http_status == 400


def test_stop_accepts_single_string():
    assert SamplingParams(stop="\n\n").stop == ("\n\n",)


def test_greedy_picks_argmax():
    logits = torch.tensor([0.1, 3.0, 2.9, -1.0])
    assert Sampler(SamplingParams(temperature=0))(logits) == 1


def test_same_seed_same_tokens_different_seed_differs():
    logits = torch.zeros(1000)
    a = Sampler(SamplingParams(temperature=1.0, seed=7))
    b = Sampler(SamplingParams(temperature=1.0, seed=7))
    c = Sampler(SamplingParams(temperature=1.0, seed=8))
    seq_a = [a(logits) for _ in range(20)]
    assert seq_a == [b(logits) for _ in range(20)]
    assert seq_a != [c(logits) for _ in range(20)]


def test_top_k_keeps_k_best():
    logits = torch.tensor([1.0, 5.0, 3.0, 4.0, 2.0])
    kept = filter_logits(logits, SamplingParams(temperature=1.0, top_k=2)).isfinite()
    assert kept.tolist() == [False, True, False, True, False]


def test_top_p_keeps_smallest_set_reaching_mass():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    kept = filter_logits(probs.log(), SamplingParams(temperature=1.0, top_p=0.75)).isfinite()
    assert kept.tolist() == [True, True, False, False]
    kept = filter_logits(probs.log(), SamplingParams(temperature=1.0, top_p=0.8)).isfinite()
    assert kept.tolist() == [True, True, False, False]
    kept = filter_logits(probs.log(), SamplingParams(temperature=1.0, top_p=0.81)).isfinite()
    assert kept.tolist() == [True, True, True, False]


def test_min_p_drops_tokens_below_fraction_of_best():
    probs = torch.tensor([0.6, 0.3, 0.07, 0.03])
    kept = filter_logits(probs.log(), SamplingParams(temperature=1.0, min_p=0.1)).isfinite()
    assert kept.tolist() == [True, True, True, False]


def test_temperature_sampling_follows_distribution():
    probs = torch.tensor([0.7, 0.2, 0.1])
    sampler = Sampler(SamplingParams(temperature=1.0, seed=0))
    counts = torch.bincount(torch.tensor([sampler(probs.log()) for _ in range(4000)]),
                            minlength=3).float() / 4000
    assert torch.allclose(counts, probs, atol=0.03)


def test_penalties():
    logits = torch.tensor([2.0, -2.0, 1.0, 0.5])
    params = SamplingParams(repetition_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25)
    out = apply_penalties(logits, frozenset({0, 1}), {2: 2}, params)
    # 0, 1: repetition only (prompt); 2: repetition, then presence + 2 * frequency.
    assert out.tolist() == [1.0, -4.0, 0.5 - 0.5 - 0.5, 0.5]
    assert logits.tolist() == [2.0, -2.0, 1.0, 0.5]          # input untouched


def test_stop_string_spanning_deltas_is_cut_and_held_text_released():
    m = StopStringMatcher(("</end>",))
    assert m.feed("hello <") == ("hello ", False)
    assert m.feed("/en") == ("", False)
    assert m.feed("d> tail") == ("", True)
    m = StopStringMatcher(("</end>",))
    assert m.feed("a </e") == ("a ", False)
    assert m.feed("x") == ("</ex", False)
    assert m.flush() == ""


def test_no_stop_strings_passes_through():
    m = StopStringMatcher(())
    assert m.feed("abc") == ("abc", False)


def test_earliest_stop_string_wins():
    m = StopStringMatcher(("world", "lo w"))
    assert m.feed("hello world") == ("hel", True)
