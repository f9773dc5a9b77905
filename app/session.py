"""What the window is working on, in one Qt-free object: the model, the query's target, the result shown.

The main window, its controllers (colouring, the causal check, the map, the exports) and the
settings read and write this object rather than the window's private fields. Setting a field
that changes its value tells every listener (`listen`), with the field's name, so a view can
follow what it shows without a lambda into the window.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields


@dataclass
class Session:
    entry: object = None  # the ModelEntry chosen
    task: object = None  # its task (a text model's carries its tokenizer)
    loaded: object = None  # the engine's LoadedModel once it has the model; None while loading or after a failure
    restoring: bool = False  # the model being loaded is the last session's (a failure falls back to the default)
    site: str = ""  # the chosen site, short name
    position: int = -1  # the chosen position in the query's tokens
    position_label: str = ""  # followed when the query changes: ':' stays ':' as letters are typed
    shown: object = None  # the HistoryEntry whose result is on screen
    last_request: object = None  # (QueryRequest, ModelEntry) of the last query run: what a notebook re-runs
    _listeners: list = field(default_factory=list, repr=False, compare=False)

    def __setattr__(self, name: str, value) -> None:
        old = self.__dict__.get(name, _UNSET)
        object.__setattr__(self, name, value)
        if name != "_listeners" and old is not _UNSET and old is not value and old != value:
            for listener in list(self.__dict__.get("_listeners", ())):
                listener(name)

    def listen(self, listener: Callable[[str], None]) -> None:
        """listener(field name) after every change of a field's value."""
        self._listeners.append(listener)

    @property
    def model_key(self) -> str:
        """The open model's key (its folder), or ''."""
        return str(self.entry.path) if self.entry is not None else ""

    @property
    def shown_model_key(self) -> str:
        """The model that made the result on screen (it may be another than the open one), or the open one's."""
        return self.shown.model_key if self.shown is not None else self.model_key

    def field_names(self) -> list[str]:
        return [f.name for f in fields(self) if not f.name.startswith("_")]


_UNSET = object()
