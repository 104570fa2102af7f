"""nvlib.record: `Plain` behaves as the dataclass it replaces.

Matrix: each Plain behaviour (construction by position and keyword, defaults, fresh
factory defaults, __post_init__, argument errors, ==, repr, hashing, frozen) side by side
with the same @dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from nvlib.record import Plain, factory


class P(Plain):
    name: str
    count: int = 1
    items: list[str] = factory(list)


@dataclass
class D:
    name: str
    count: int = 1
    items: list[str] = field(default_factory=list)


class Frozen(Plain, frozen=True):
    value: int | None


def test_plain_constructs_compares_and_prints_as_a_dataclass() -> None:
    for cls in (P, D):
        one, two = cls("x"), cls(name="x", count=1)
        assert one == two and one is not two
        assert one.items is not two.items  # a fresh default each
        assert cls("x", 2, ["a"]).items == ["a"]
        assert cls("x") != cls("y") and cls("x") != object()
        one.count = 5  # mutable
        assert one.count == 5 and one != two
        with pytest.raises(TypeError, match="unhashable"):
            hash(one)
    assert repr(P("x", 2)) == "P(name='x', count=2, items=[])"
    assert repr(D("x", 2)) == "D(name='x', count=2, items=[])"
    assert P("x") != D("x")
    assert not hasattr(P, "items") and P.count == 1 and P.__match_args__ == D.__match_args__


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing 1 required positional argument: 'name'"),
        (("x",), {"name": "y"}, "got multiple values for argument 'name'"),
        (("x",), {"bogus": 1}, "got an unexpected keyword argument 'bogus'"),
        (("x", 1, [], 2), {}, "positional arguments but 5 were given"),
    ],
)
def test_plain_rejects_bad_arguments_as_a_dataclass(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    for cls in (P, D):
        with pytest.raises(TypeError, match=message):
            cls(*args, **kwargs)


def test_plain_post_init_and_field_order() -> None:
    class Post(Plain):
        base: int
        if False:  # a type-checker-only attribute is not a field
            derived: int

        def __post_init__(self) -> None:
            self.derived = self.base * 2

    assert (
        Post(2).derived == 4
        and Post._fields == ("base",)
        and repr(Post(1)) == ("test_plain_post_init_and_field_order.<locals>.Post(base=1)")
    )
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        class Bad(Plain):
            a: int = 0
            b: int


def test_frozen_plain_is_hashable_and_read_only() -> None:
    one = Frozen(5)
    assert one == Frozen(5) and hash(one) == hash(Frozen(5)) and {one, Frozen(5)} == {one}
    with pytest.raises(AttributeError, match="cannot assign to field 'value'"):
        one.value = 6  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot delete field 'value'"):
        del one.value  # type: ignore[misc]
