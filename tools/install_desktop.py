"""Install the app's launcher for the current user, pointing at this checkout's .venv.

    make install-desktop            (or: .venv/bin/python tools/install_desktop.py)

Writes $XDG_DATA_HOME (default ~/.local/share)/applications/inversionview-studio.desktop and
the icons under icons/hicolor/<size>/apps/, then refreshes the desktop's caches when the
tools for that are installed. --uninstall removes the same files.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "resources"
NAME = "inversionview-studio"  # = app.launch.APP_ID: the desktop matches windows to this file by it
SIZES = (16, 24, 32, 48, 64, 128, 256)


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def quote_exec_arg(arg: str) -> str:
    """An Exec= argument, quoted as the Desktop Entry spec asks when it has spaces or specials."""
    if not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg.replace("%", "%%")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return '"' + escaped.replace("%", "%%") + '"'


def desktop_entry(python: Path, root: Path) -> str:
    template = (RESOURCES / f"{NAME}.desktop.in").read_text(encoding="utf-8")
    exec_line = " ".join(quote_exec_arg(str(a)) for a in (python, root / "main.py"))
    return template.replace("@EXEC@", exec_line).replace("@ROOT@", str(root))


def targets(base: Path) -> dict[Path, Path]:
    """Installed file -> source file."""
    icons = base / "icons" / "hicolor"
    files = {icons / f"{s}x{s}" / "apps" / f"{NAME}.png": RESOURCES / "icons" / f"{NAME}-{s}.png" for s in SIZES}
    files[icons / "scalable" / "apps" / f"{NAME}.svg"] = RESOURCES / f"{NAME}.svg"
    return files


def refresh(base: Path) -> None:
    for cmd in (["update-desktop-database", "-q", str(base / "applications")],
                ["gtk-update-icon-cache", "-q", "-t", "-f", str(base / "icons" / "hicolor")]):
        if shutil.which(cmd[0]):
            subprocess.run(cmd, check=False, capture_output=True)


def install(base: Path, python: Path) -> Path:
    if not python.exists():
        raise SystemExit(f"error: {python} not found; run `make setup` first")
    for dest, src in targets(base).items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    entry = base / "applications" / f"{NAME}.desktop"
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(".tmp")
    tmp.write_text(desktop_entry(python, ROOT), encoding="utf-8")
    os.replace(tmp, entry)
    refresh(base)
    return entry


def uninstall(base: Path) -> None:
    for dest in [*targets(base), base / "applications" / f"{NAME}.desktop"]:
        dest.unlink(missing_ok=True)
    refresh(base)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install the InversionView Studio launcher for this user.")
    parser.add_argument("--uninstall", action="store_true", help="remove the launcher and icons")
    parser.add_argument("--python", type=Path, default=ROOT / ".venv" / "bin" / "python",
                        help="the interpreter the launcher runs (default: this checkout's .venv)")
    args = parser.parse_args(argv)
    base = data_home()
    if args.uninstall:
        uninstall(base)
        print(f"removed the launcher and icons from {base}")
        return 0
    entry = install(base, args.python.absolute())
    print(f"installed {entry}\n  runs: {args.python.absolute()} {ROOT / 'main.py'}\n  icons: {base / 'icons/hicolor'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
