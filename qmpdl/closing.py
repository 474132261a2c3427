"""Objects that hold a resource until they are closed, usable as ``with obj: ...``."""

from __future__ import annotations

from typing import Self


class Closing:
    """A mixin: the end of a ``with`` block closes the object.  Subclasses define
    :meth:`close`, which may be called more than once."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
