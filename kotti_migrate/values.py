"""Value classes cheap to define: :class:`Value`, for the classes every boot imports.

A ``@dataclass`` compiles its ``__init__``, ``__repr__``, ``__eq__`` (and,
frozen, ``__hash__``, ``__setattr__``, ``__delattr__``) from source when its
module is imported: about 1 ms per class, which made most of what
``config.include('kotti_migrate')`` cost at head.  A :class:`Value` subclass
declares its fields the same way (annotations in order, class attributes as
defaults, :func:`factory` for a mutable default) and gets the same methods,
written once here::

    class Location(Value, frozen=True):
        spec: str
        needs_ini: bool = False

Fields are positional or keyword arguments in that order; instances compare
equal field by field (same class only); a frozen class's instances are
hashable and refuse assignment, the others are unhashable.

:class:`SplitSet` is a frozen set of the words of a text, split when first
asked (a location's 1000 revision ids cost ~0.1 ms to split; a start-up at
head asks for none of them).  Imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any, Callable, ClassVar, Iterable, Iterator


class FrozenValueError(AttributeError):
    """Assignment to a field of a frozen :class:`Value`."""


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def factory(make: Callable[[], Any]) -> Any:
    """A default made per instance (``field(default_factory=make)``): ``steps: list[str] = factory(list)``."""
    return _Factory(make)


_MISSING = object()
_CLASS_VARS = ("ClassVar", "typing.ClassVar")


class Value:
    """Base class of value classes (see the module's docstring)."""

    #: The fields in order, their defaults (a :func:`factory` for made ones).
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, frozen: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        annotations = cls.__dict__.get("__annotations__", {})
        own = [name for name, kind in annotations.items() if not str(kind).startswith(_CLASS_VARS)]
        fields = tuple(dict.fromkeys([*cls._fields, *own]))
        defaults = dict(cls._defaults)
        for name in own:
            default = cls.__dict__.get(name, _MISSING)
            if isinstance(default, _Factory):
                delattr(cls, name)
            if default is not _MISSING:
                defaults[name] = default
            elif name in defaults:
                del defaults[name]
        first_default = min((fields.index(name) for name in defaults), default=len(fields))
        if any(name not in defaults for name in fields[first_default:]):
            raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
        cls._fields, cls._defaults = fields, defaults
        if frozen:
            cls.__setattr__ = _refuse_assignment  # type: ignore[method-assign,assignment]
            cls.__delattr__ = _refuse_deletion  # type: ignore[method-assign,assignment]
        if "__hash__" not in cls.__dict__:
            cls.__hash__ = Value._hash if frozen else None  # type: ignore[method-assign,assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__}() takes {len(fields)} arguments, {len(args)} given")
        values = dict(zip(fields, args))
        for name, value in kwargs.items():
            if name not in fields:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
            values[name] = value
        for name in fields:
            if name not in values:
                default = self._defaults.get(name, _MISSING)
                if default is _MISSING:
                    raise TypeError(f"{type(self).__name__}() missing required argument {name!r}")
                values[name] = default.make() if isinstance(default, _Factory) else default
            object.__setattr__(self, name, values[name])

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def _hash(self) -> int:
        return hash(self._values())


def _refuse_assignment(self: Value, name: str, value: Any) -> None:
    raise FrozenValueError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")


def _refuse_deletion(self: Value, name: str) -> None:
    raise FrozenValueError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")


class SplitSet(Set):
    """A frozen set of the whitespace separated words of ``text``, split on first use."""

    __slots__ = ("_text", "_words")

    def __init__(self, text: str) -> None:
        self._text = text
        self._words: frozenset[str] | None = None

    @classmethod
    def _from_iterable(cls, iterable: Iterable[str]) -> frozenset[str]:  # results of &, |, -
        return frozenset(iterable)

    def words(self) -> frozenset[str]:
        if self._words is None:
            self._words = frozenset(self._text.split())
        return self._words

    def __contains__(self, word: object) -> bool:
        return word in self.words()

    def __iter__(self) -> Iterator[str]:
        return iter(self.words())

    def __len__(self) -> int:
        return len(self.words())

    def __hash__(self) -> int:
        return hash(self.words())

    def __repr__(self) -> str:
        return f"SplitSet({self._text!r})"
