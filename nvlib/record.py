"""`Record`: typing.NamedTuple's class syntax and behaviour, cheaper to define.

A `class X(Record)` body declares fields by annotation, with optional defaults, as a
NamedTuple body does; instances are tuples: they compare, hash, print, pickle and
`_replace` the same. A frozen dataclass, which exec-compiles its methods, nearly a
millisecond. The device model and the simulator's records are defined on every command
start, so they use this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar, dataclass_transform

if TYPE_CHECKING:
    _T = TypeVar("_T")

    # What type checkers see: a frozen-dataclass-like base, since typing.NamedTuple's
    # special form gives a subclass (`class Gpu(StrictRecord)`) none of its own fields.
    # The tuple side is declared by hand: iteration, length, indexing and the
    # namedtuple helpers the records keep.
    # The tuple side is declared by hand, not inherited: a field may be named like a tuple
    # method (`index`). `_replace` takes any field by name, unchecked.
    @dataclass_transform(frozen_default=True)
    class Record:
        _fields: ClassVar[tuple[str, ...]]
        _field_defaults: ClassVar[dict[str, object]]

        def __iter__(self) -> Iterator[Any]: ...
        def __len__(self) -> int: ...
        def __getitem__(self, index: int) -> Any: ...
        def __lt__(self, other: Self) -> bool: ...
        def __hash__(self) -> int: ...

        @classmethod
        def _make(cls, iterable: Iterable[Any]) -> Self: ...
        def _replace(self, **changes: Any) -> Self: ...
        def _asdict(self) -> dict[str, Any]: ...

    def factory(make: Callable[[], _T]) -> _T:
        """A field default made afresh for each instance (the class below, at run time)."""
        ...

else:
    try:
        from _collections import _tuplegetter  # what collections.namedtuple uses
    except ImportError:  # pragma: no cover - not CPython
        from operator import itemgetter

        def _tuplegetter(index: int, doc: str) -> property:
            return property(itemgetter(index), doc=doc)

    class _RecordType(type):
        """Turns the annotated fields of a `class X(Record)` body into tuple positions."""

        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict) -> type:
            if not bases:  # Record itself
                return super().__new__(mcs, name, (tuple,), namespace)
            fields = tuple(namespace.get("__annotations__", ()))
            defaults: dict[str, object] = {}
            for i, field in enumerate(fields):
                if field in namespace:
                    defaults[field] = namespace[field]
                elif defaults:
                    raise TypeError(f"{name}.{field}: a field without a default after one with")
                namespace[field] = _tuplegetter(i, f"Alias for field number {i}")
            namespace.update(
                __slots__=(),
                _fields=fields,
                _field_defaults=defaults,
                _default_values=tuple(defaults.values()),  # the last fields', in order
                __match_args__=fields,
            )
            return super().__new__(mcs, name, bases, namespace)

    class Record(metaclass=_RecordType):
        """A tuple with named fields, declared as a typing.NamedTuple is."""

        __slots__ = ()
        _fields: tuple[str, ...]
        _field_defaults: dict[str, object]
        _default_values: tuple[object, ...]

        def __new__(cls, *args: object, **kwargs: object) -> Self:
            fields = cls._fields
            if not kwargs:
                if len(args) == len(fields):
                    return tuple.__new__(cls, args)
                # The first fields by position, defaults for the rest (all have one).
                missing = len(fields) - len(args)
                if 0 < missing <= len(cls._default_values):
                    return tuple.__new__(cls, args + cls._default_values[-missing:])
            elif not args:  # fields by name, the common case: one lookup a field, in C
                given = kwargs if len(kwargs) == len(fields) else cls._field_defaults | kwargs
                if len(given) == len(fields):  # no unknown name, unless one is missing
                    try:
                        return tuple.__new__(cls, map(given.__getitem__, fields))
                    except KeyError:
                        pass  # a misspelt name: _arguments says which
            return tuple.__new__(cls, cls._arguments(args, kwargs))

        @classmethod
        def _arguments(cls, args: tuple[object, ...], kwargs: dict[str, object]) -> tuple:
            """The field values from positions, names and defaults; TypeError if wrong."""
            fields = cls._fields
            if len(args) > len(fields):
                raise TypeError(f"{cls.__name__}() takes {len(fields)} arguments")
            values = list(args)
            for field in fields[len(args) :]:
                if field in kwargs:
                    values.append(kwargs.pop(field))
                elif field in cls._field_defaults:
                    values.append(cls._field_defaults[field])
                else:
                    raise TypeError(f"{cls.__name__}() missing argument {field!r}")
            if kwargs:
                raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")
            return tuple(values)

        @classmethod
        def _make(cls, iterable: Iterable[object]) -> Self:
            values = tuple(iterable)
            if len(values) != len(cls._fields):
                raise TypeError(f"expected {len(cls._fields)} values, got {len(values)}")
            return tuple.__new__(cls, values)

        def _replace(self, **changes: object) -> Self:
            # changes.pop(field, current) for each field, looped in C
            values = list(map(changes.pop, self._fields, self))
            if changes:
                raise ValueError(f"got unexpected field names: {sorted(changes)!r}")
            return tuple.__new__(type(self), values)

        def _asdict(self) -> dict[str, object]:
            return dict(zip(self._fields, self, strict=True))

        def __getnewargs__(self) -> tuple[object, ...]:
            return tuple(self)

        def __repr__(self) -> str:
            pairs = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self, strict=True))
            return f"{type(self).__name__}({pairs})"


class StrictRecord(Record):
    """A `Record` that equals only a record of its own class, as a dataclass does.

    A plain `Record` is a tuple and so equals any tuple of the same values; a model
    object compared with another kind of object (or a bare tuple) is simply unequal.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            # a tuple at run time; type checkers see the dataclass-like Record
            return tuple.__eq__(self, other)  # type: ignore[operator]
        # Not NotImplemented for a tuple: Python would then ask tuple.__eq__, which says yes.
        return False if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is type(self):
            return tuple.__ne__(self, other)
        return True if isinstance(other, tuple) else NotImplemented

    __hash__ = tuple.__hash__


_MISSING = object()


if not TYPE_CHECKING:  # type checkers see the function above: the default's type

    class factory:
        """A field default made afresh for each instance: `items: list[str] = factory(list)`."""

        __slots__ = ("make",)

        def __init__(self, make: Callable[[], object]) -> None:
            self.make = make


@dataclass_transform()
class Plain:
    """A dataclass's `__init__`, `__eq__` and `__repr__` without generating code.

    `class X(Plain)` declares fields by annotation, with defaults (`factory(list)` for a
    fresh one per instance), as a `@dataclass` body does, and behaves as that dataclass:
    keyword or positional arguments, `__post_init__`, equality only with an instance of
    the same class, unhashable. `class X(Plain, frozen=True)` is a frozen dataclass:
    hashable, and setting an attribute raises. @dataclass exec-compiles each of those
    methods, 0.5 ms to 0.8 ms a class, and its import pulls in inspect (6 ms), on every
    command start.
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
