"""Named implementations (backends, decoders) that configuration chooses by name."""

from typing import Callable, Dict, Generic, List, Type, TypeVar

from hobot_npu_infer.core.errors import ConfigError, InferError

T = TypeVar('T')


class Registry(Generic[T]):

    def __init__(self, kind: str, unknown_error: Type[InferError] = ConfigError):
        self.kind = kind
        self.unknown_error = unknown_error
        self._classes: Dict[str, Type[T]] = {}

    def register(self, name: str) -> Callable[[Type[T]], Type[T]]:
        """Class decorator: the class becomes creatable as ``name`` and knows its name."""
        def decorate(cls: Type[T]) -> Type[T]:
            cls.name = name
            self._classes[name] = cls
            return cls
        return decorate

    def names(self) -> List[str]:
        return sorted(self._classes)

    def lookup(self, name: str) -> Type[T]:
        """Return the class registered as ``name``; an unknown name lists the known ones."""
        try:
            return self._classes[name]
        except KeyError:
            raise self.unknown_error(f'unknown {self.kind} {name!r}; available: '
                                     f'{", ".join(self.names())}') from None

    def create(self, name: str, **options) -> T:
        cls = self.lookup(name)
        try:
            return cls(**options)
        except TypeError as exc:
            raise ConfigError(f'bad option for {self.kind} {name}: {exc}') from None
