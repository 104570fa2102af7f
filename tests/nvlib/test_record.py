"""nvlib.record: `Plain` and `StrictRecord` behave as the dataclasses they replace.

Matrix: each Plain behaviour (construction by position and keyword, defaults, fresh
factory defaults, __post_init__, argument errors, ==, repr, hashing, frozen) side by side
with the same @dataclass; StrictRecord's class-strict equality, hashing, repr, _replace
and immutability against a frozen dataclass.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field

import pytest

from nvlib.record import Plain, StrictRecord, factory


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


class Rec(StrictRecord):
    a: int
    b: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        return self.a + sum(self.b)


@dataclass(frozen=True)
class FrozenRec:
    a: int
    b: tuple[int, ...] = ()


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


def test_strict_record_compares_hashes_and_prints_as_a_frozen_dataclass() -> None:
    rec, dc = Rec(1, (2, 3)), FrozenRec(1, (2, 3))
    assert rec == Rec(a=1, b=(2, 3)) and rec != Rec(1) and rec.total == 6
    assert hash(rec) == hash(Rec(1, (2, 3))) == hash(dc)
    assert repr(rec) == "Rec(a=1, b=(2, 3))" and repr(dc) == "FrozenRec(a=1, b=(2, 3))"
    assert rec != (1, (2, 3)) and (1, (2, 3)) != rec and rec != dc  # unlike a bare tuple
    assert not rec == (1, (2, 3)) and not (1, (2, 3)) == rec
    assert rec._replace(b=()) == Rec(1)
    with pytest.raises(AttributeError):
        rec.a = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        dc.a = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"x": 1, "why": 2}, "missing argument 'y'", id="misspelt"),
        pytest.param({"x": 1}, "missing argument 'y'", id="missing"),
    ],
)
def test_record_by_name_names_a_wrong_field(kwargs: dict[str, int], message: str) -> None:
    """Every field by name takes a fast path; a wrong name still gets the full error."""

    class Point(StrictRecord):
        x: int
        y: int

    assert Point(y=2, x=1) == Point(1, 2)
    with pytest.raises(TypeError, match=message):
        Point(**kwargs)


def test_record_by_name_fills_defaults_and_rejects_unknown_names() -> None:
    assert Rec(a=1) == Rec(1, ()) == Rec(1) and Rec(b=(2,), a=1) == Rec(1, (2,))
    with pytest.raises(TypeError, match="missing argument 'a'"):
        Rec()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 2 arguments"):
        Rec(1, (), 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"unexpected arguments \['c'\]"):
        Rec(a=1, c=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing argument 'a'"):
        Rec(b=(), c=2)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unexpected field names"):
        Rec(1)._replace(c=2)
