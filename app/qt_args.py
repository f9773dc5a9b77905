"""Qt's own command-line options (`-style fusion`, `-platform xcb`, `-reverse`…), told apart from ours.

`main.py -style fusion` was sent to the command line as a subcommand and refused; these options
belong to QApplication, which reads them from the argv it is given. No imports: main.py asks here
before it knows whether it opens the window or runs a command.
"""
from __future__ import annotations

# options that take a value (`-style fusion` or `-style=fusion`), and those that do not
WITH_VALUE = frozenset({
    "-style", "-stylesheet", "-platform", "-platformpluginpath", "-platformtheme", "-plugin", "-qmljsdebugger",
    "-qwindowgeometry", "-qwindowicon", "-qwindowtitle", "-display", "-geometry", "-session", "-name", "-title",
    "-visual", "-fontengine", "-dialogs", "-qdevicepixelratio",
})
FLAGS = frozenset({"-reverse", "-widgetcount", "-nograb", "-dograb", "-sync", "-testability", "-nativeui"})


def is_qt_option(arg: str) -> bool:
    if arg.startswith("--"):
        return False
    name = arg.split("=", 1)[0]
    return name in WITH_VALUE or name in FLAGS


def split_qt_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(Qt's options with their values, the rest in order)."""
    qt, rest = [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if is_qt_option(arg):
            qt.append(arg)
            if arg in WITH_VALUE and i + 1 < len(args):
                qt.append(args[i + 1])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return qt, rest
