"""direct_init: the same values as the dataclass's generated __init__, for every class it serves."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import terminal.psam  # noqa: F401 - importing them registers their classes
import terminal.wallet  # noqa: F401
from cardlib.frozen import GENERATED, direct_init

CLASSES = sorted(GENERATED, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_the_purchase_path_is_served() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"TransactionResult", "SamMac1"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_direct_init_gives_what_the_generated_one_gives(cls: type, data: st.DataObject) -> None:
    fields = dataclasses.fields(cls)
    values = [data.draw(st.one_of(st.integers(), st.binary(max_size=8), st.none())) for _ in fields]
    required = sum(f.default is dataclasses.MISSING for f in fields)
    given_count = data.draw(st.integers(required, len(fields)))
    fast = object.__new__(cls)
    slow = object.__new__(cls)
    cls.__init__(fast, *values[:given_count])
    GENERATED[cls](slow, *values[:given_count])
    assert vars(fast) == vars(slow) and list(vars(fast)) == list(vars(slow))
    assert fast == slow and repr(fast) == repr(slow)
    by_name = object.__new__(cls)
    cls.__init__(by_name, **{f.name: v for f, v in zip(fields, values, strict=True)})
    GENERATED[cls](slow, *values)
    assert vars(by_name) == vars(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.x = 1


def test_what_it_refuses() -> None:
    @dataclasses.dataclass
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class Hidden:
        a: int
        b: int = dataclasses.field(default=0, init=False)

    for cls in (Mutable, Factory, Hidden):
        with pytest.raises(TypeError):
            direct_init(cls)


def test_post_init_still_runs() -> None:
    @direct_init
    @dataclasses.dataclass(frozen=True)
    class Checked:
        a: int
        b: int = 2

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("a")

    assert Checked(1) == Checked(a=1, b=2)
    with pytest.raises(ValueError, match="a"):
        Checked(-1)
    with pytest.raises(TypeError):
        Checked()  # type: ignore[call-arg]
