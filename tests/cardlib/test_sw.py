"""Status words: the ISO 7816-4 and purse catalogue, classes, 63Cx retries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib import sw
from cardlib.errors import StatusError


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x9000, "success"),
        (0x9401, "insufficient balance"),
        (0x9302, "MAC invalid"),
        (0x9303, "permanently locked"),
        (0x9403, "key index"),
        (0x9402, "counter at maximum"),
        (0x9406, "MAC unavailable"),
        (0x6988, "secure messaging MAC incorrect"),
        (0x6987, "secure messaging data objects missing"),
        (0x6985, "conditions of use"),
        (0x6983, "blocked"),
        (0x6A81, "function not supported"),
        (0x6A82, "not found"),
        (0x6A83, "record not found"),
        (0x6110, "16 more bytes"),
        (0x6100, "256 more bytes"),
        (0x6C08, "Le=8"),
        (0x63C2, "2 tries left"),
        (0x63C0, "0 tries left"),
        (0x6400, "execution error"),
        (0x6283, "invalidated"),
        (0x62F1, "warning"),
        (0x6A8F, "wrong parameters"),
        (0x94AA, "purse error"),
        (0x1234, "unknown"),
    ],
)
def test_describe(code: int, text: str) -> None:
    assert text in sw.describe(code)


def test_constants_name_the_catalogued_words() -> None:
    expected = {
        "SW_OK": 0x9000, "SW_INSUFFICIENT_BALANCE": 0x9401, "SW_MAC_INVALID": 0x9302,
        "SW_APP_LOCKED": 0x9303, "SW_KEY_INDEX": 0x9403, "SW_COUNTER_MAX": 0x9402,
        "SW_CONDITIONS": 0x6985, "SW_AUTH_BLOCKED": 0x6983, "SW_SECURITY": 0x6982,
        "SW_FILE_NOT_FOUND": 0x6A82, "SW_RECORD_NOT_FOUND": 0x6A83, "SW_FUNC_NOT_SUPPORTED": 0x6A81,
        "SW_WRONG_LENGTH": 0x6700, "SW_WRONG_P1P2": 0x6B00, "SW_INS_NOT_SUPPORTED": 0x6D00,
        "SW_CLA_NOT_SUPPORTED": 0x6E00, "SW_WRONG_DATA": 0x6A80, "SW_INCORRECT_P1P2": 0x6A86,
        "SW_SM_MAC": 0x6988, "SW_REF_DATA_NOT_FOUND": 0x6A88, "SW_NOT_ENOUGH_MEMORY": 0x6A84,
    }
    for name, value in expected.items():
        assert getattr(sw, name) == value, name
    for name in dir(sw):
        if name.startswith("SW_"):
            assert getattr(sw, name) in sw.CATALOGUE, name


def test_catalogue_covers_every_iso_class() -> None:
    sw1s = {code >> 8 for code in sw.CATALOGUE}
    assert {0x62, 0x63, 0x64, 0x65, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6D, 0x6E, 0x6F, 0x93, 0x94} <= sw1s


def test_retries() -> None:
    assert sw.retries(0x63C1) == 1
    assert sw.retries(0x63CF) == 15
    assert sw.retries(0x6300) is None
    assert sw.retries(0x6983) is None


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (0x9000, sw.SWClass.SUCCESS),
        (0x6110, sw.SWClass.MORE_DATA),
        (0x6C08, sw.SWClass.WRONG_LE),
        (0x6282, sw.SWClass.WARNING),
        (0x63C1, sw.SWClass.WARNING),
        (0x6581, sw.SWClass.EXECUTION_ERROR),
        (0x6700, sw.SWClass.CHECKING_ERROR),
        (0x6A82, sw.SWClass.CHECKING_ERROR),
        (0x6F00, sw.SWClass.CHECKING_ERROR),
        (0x9401, sw.SWClass.PURSE_ERROR),
        (0x9303, sw.SWClass.PURSE_ERROR),
        (0x9001, sw.SWClass.UNKNOWN),
        (0x0000, sw.SWClass.UNKNOWN),
    ],
)
def test_classify(code: int, cls: sw.SWClass) -> None:
    assert sw.classify(code) is cls


def test_predicates() -> None:
    assert sw.is_success(0x9000) and not sw.is_success(0x9001)
    assert sw.is_more_data(0x6100) and not sw.is_more_data(0x9000)
    assert sw.is_wrong_le(0x6C10) and not sw.is_wrong_le(0x6110)
    assert sw.is_warning(0x6282) and not sw.is_warning(0x6A82)
    assert sw.is_error(0x9401) and sw.is_error(0x6A82) and not sw.is_error(0x6282)


def test_status_error_uses_the_catalogue() -> None:
    assert "insufficient balance" in str(StatusError(0x9401))


@given(st.integers(0, 0xFFFF))
def test_every_word_has_a_meaning_and_a_class(code: int) -> None:
    assert sw.describe(code)
    cls = sw.classify(code)
    assert sw.is_error(code) == (cls in (sw.SWClass.EXECUTION_ERROR, sw.SWClass.CHECKING_ERROR, sw.SWClass.PURSE_ERROR))
    assert sw.is_warning(code) == (cls is sw.SWClass.WARNING)
