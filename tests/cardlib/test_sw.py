from __future__ import annotations

import pytest

from cardlib import sw


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x9000, "success"),
        (0x9401, "insufficient balance"),
        (0x9302, "MAC invalid"),
        (0x9303, "permanently locked"),
        (0x9403, "key index"),
        (0x9402, "counter at maximum"),
        (0x6985, "conditions of use"),
        (0x6983, "blocked"),
        (0x6A82, "not found"),
        (0x6110, "16 more bytes"),
        (0x6C08, "Le=8"),
        (0x63C2, "2 tries left"),
        (0x6400, "execution error"),
        (0x1234, "unknown"),
    ],
)
def test_describe(code: int, text: str) -> None:
    assert text in sw.describe(code)


def test_classes() -> None:
    assert sw.retries(0x63C1) == 1
    assert sw.retries(0x6300) is None
    assert sw.is_more_data(0x6100) and not sw.is_more_data(0x9000)
    assert sw.is_wrong_le(0x6C10)
    assert sw.is_warning(0x6282) and not sw.is_warning(0x6A82)
