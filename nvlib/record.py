"""`Plain`: a dataclass's behaviour for the mutable records defined on every command start.

Immutable values are `typing.NamedTuple`s; `Plain` is for the objects that change, or
that need `__post_init__` or equality with their own class only (docs/architecture.md,
"Records"). It stands in for @dataclass because of what that costs a start: on GFD's
real path, importing dataclasses and defining its 16 Plain classes as @dataclasses
takes about 12.5 ms, as Plains under 1 ms (`python bench/run.py startup`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar, dataclass_transform

if TYPE_CHECKING:
    _T = TypeVar("_T")

    def factory(make: Callable[[], _T]) -> _T:
        """A field default made afresh for each instance: `items: list[str] = factory(list)`."""
        ...

else:  # a marker that Plain's __init__ calls; type checkers see the default's type

    class factory:
        __slots__ = ("make",)

        def __init__(self, make: Callable[[], object]) -> None:
            self.make = make


_MISSING = object()


@dataclass_transform()
class Plain:
    """A dataclass's `__init__`, `__eq__` and `__repr__` without generating code.

    `class X(Plain)` declares fields by annotation, with defaults (`factory(list)` for a
    fresh one per instance), as a `@dataclass` body does, and behaves as that dataclass:
    keyword or positional arguments, `__post_init__`, equality only with an instance of
    the same class, unhashable. `class X(Plain, frozen=True)` is a frozen dataclass:
    hashable, and setting an attribute raises. @dataclass exec-compiles each of those
    methods, about 0.45 ms a class, and importing dataclasses (it pulls in inspect) takes
    5.5 ms: 12.5 ms in all on GFD's real start, against under 1 ms for Plain.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, object]] = {}

    def __init_subclass__(cls, *, frozen: bool = False, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        for name in cls.__dict__.get("__annotations__", ()):  # noqa: RUF063 - no inspect
            if name not in fields:
                fields.append(name)
            if name in cls.__dict__:
                defaults[name] = value = cls.__dict__[name]
                if type(value) is factory:
                    delattr(cls, name)  # as a default_factory field leaves no class attribute
            elif defaults:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        cls._fields = tuple(fields)
        cls._defaults = defaults
        setattr(cls, "__match_args__", cls._fields)  # noqa: B010 - undeclared on Plain
        if frozen:  # the class's own hooks, which type checkers see as fixed methods
            cls.__setattr__ = _frozen_setattr  # type: ignore[method-assign,assignment]  # frozen
            cls.__delattr__ = _frozen_delattr  # type: ignore[method-assign,assignment]  # frozen
            cls.__hash__ = _fields_hash  # type: ignore[method-assign,assignment]  # frozen

    def __init__(self, *args: object, **kwargs: object) -> None:
        cls = type(self)
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(
                f"{cls.__qualname__}.__init__() takes {len(fields) + 1} positional arguments"
                f" but {len(args) + 1} were given"
            )
        put = object.__setattr__
        for name, value in zip(fields, args, strict=False):
            if name in kwargs:
                raise TypeError(
                    f"{cls.__qualname__}.__init__() got multiple values for argument {name!r}"
                )
            put(self, name, value)
        for name in fields[len(args) :]:
            if name in kwargs:
                value = kwargs.pop(name)
            else:
                value = cls._defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(
                        f"{cls.__qualname__}.__init__() missing 1 required positional"
                        f" argument: {name!r}"
                    )
                if type(value) is factory:
                    # a factory instance; type checkers see factory() as a function
                    value = value.make()  # type: ignore[attr-defined]
            put(self, name, value)
        if kwargs:
            raise TypeError(
                f"{cls.__qualname__}.__init__() got an unexpected keyword argument"
                f" {next(iter(kwargs))!r}"
            )
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    # unhashable, as a dataclass with eq; object's type says a method
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        pairs = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({pairs})"


def _frozen_setattr(self: Plain, name: str, value: object) -> None:
    raise AttributeError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Plain, name: str) -> None:
    raise AttributeError(f"cannot delete field {name!r}")


def _fields_hash(self: Plain) -> int:
    return hash(self._values())
