"""The shared argument checks: what they accept, and each refusal's wording with the caller's
error class."""

from __future__ import annotations

import numpy as np
import pytest

from hashgym.errors import HashgymError
from hashgym.metrics import MetricError
from hashgym.validation import (
    check_choice,
    check_count,
    check_int,
    check_number,
    is_integer,
    is_number,
)


def test_predicates_never_take_booleans() -> None:
    assert is_integer(3) and is_integer(np.int64(3)) and not is_integer(True)
    assert not is_integer(np.bool_(True)) and not is_integer(3.0)
    assert is_number(2.5) and is_number(np.float32(1)) and is_number(7) and not is_number(False)
    assert not is_number("1")


def test_accepted_values_come_back_converted() -> None:
    assert check_int(np.int32(4), "n", 1) == 4 and type(check_int(np.int32(4), "n", 1)) is int
    assert check_count(0, "radius", 0) == 0
    assert check_number(1, "rho", 0.0, 1.0) == 1.0 and type(check_number(1, "rho", 0.0, 1.0)) is float
    assert check_choice("a", "mode", ("a", "b")) == "a"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda e: check_int(True, "n_bits", 1, e), "n_bits must be an integer, got True"),
        (lambda e: check_int(0, "n_bits", 1, e), "n_bits must be >= 1, got 0"),
        (lambda e: check_count(0, "k", 1, e), "k must be a positive int, got 0"),
        (lambda e: check_count(-1, "radius", 0, e), "radius must be a non-negative int, got -1"),
        (lambda e: check_count(2.0, "k", 1, e), "k must be a positive int, got 2.0"),
        (lambda e: check_number("x", "lam", 0.0, None, e), "lam must be a number, got 'x'"),
        (lambda e: check_number(1.5, "rho", 0.0, 1.0, e),
         "rho must be a finite number in [0.0, 1.0], got 1.5"),
        (lambda e: check_number(float("nan"), "rho", 0.0, 1.0, e), "rho must be a finite number"),
        (lambda e: check_number(0.0, "lr", 0.0, None, e, open_low=True),
         "lr must be a finite number in (0.0, inf], got 0.0"),
        (lambda e: check_choice("c", "mode", ("a", "b"), e),
         "unknown mode 'c'; expected one of a, b"),
    ],
)
def test_refusals_name_the_argument_with_the_callers_error(call, message) -> None:
    with pytest.raises(MetricError) as caught:
        call(MetricError)
    assert str(caught.value).startswith(message)
    with pytest.raises(HashgymError):  # the default error class
        call(HashgymError)
