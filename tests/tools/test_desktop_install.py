"""`make install-desktop`: the launcher and icons for the current user, pointing at this checkout."""
import configparser
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from install_desktop import NAME, SIZES, desktop_entry, quote_exec_arg  # noqa: E402


def test_icons_exist_in_every_size():
    assert (ROOT / "resources" / f"{NAME}.svg").is_file()
    for size in SIZES:
        image = QImage(str(ROOT / "resources" / "icons" / f"{NAME}-{size}.png"))
        assert (image.width(), image.height()) == (size, size)


def test_exec_arguments_are_quoted_when_needed():
    assert quote_exec_arg("/opt/app/.venv/bin/python") == "/opt/app/.venv/bin/python"
    assert quote_exec_arg("/home/a b/main.py") == '"/home/a b/main.py"'
    assert quote_exec_arg("/x/100%") == "/x/100%%"
    entry = desktop_entry(Path("/home/a b/.venv/bin/python"), Path("/home/a b"))
    assert 'Exec="/home/a b/.venv/bin/python" "/home/a b/main.py"' in entry


def test_install_and_uninstall_for_the_current_user(tmp_path):
    env = {"XDG_DATA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "install_desktop.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "applications" / f"{NAME}.desktop"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Name"] == "InversionView Studio" and section["Icon"] == NAME
    assert section["Exec"] == f"{ROOT / '.venv' / 'bin' / 'python'} {ROOT / 'main.py'}"
    assert section["StartupWMClass"] == NAME
    for size in SIZES:
        assert (tmp_path / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png").is_file()
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / f"{NAME}.svg").is_file()
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "install_desktop.py"), "--uninstall"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not entry.exists()


# The Desktop Entry Specification's main categories: a launcher names exactly one.
MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
                   "Office", "Science", "Settings", "System", "Utility"}


def test_the_launcher_follows_the_desktop_entry_spec(tmp_path):
    import shutil

    text = desktop_entry(Path(sys.executable), Path("/opt/ivs"))
    entry = configparser.ConfigParser(interpolation=None, strict=True)
    entry.optionxform = str  # keys are case-sensitive
    entry.read_string(text)
    e = entry["Desktop Entry"]
    assert e["Type"] == "Application" and e["Version"] in ("1.0", "1.1", "1.2", "1.3", "1.4")
    for key in ("Name", "Exec", "Icon", "Categories"):
        assert e[key], key
    categories = [c for c in e["Categories"].split(";") if c]
    assert len([c for c in categories if c in MAIN_CATEGORIES]) == 1, categories
    assert e["Categories"].endswith(";") and e["Keywords"].endswith(";")
    validator = shutil.which("desktop-file-validate")
    if validator:  # the reference checker, where the machine has it
        path = tmp_path / f"{NAME}.desktop"
        path.write_text(text)
        done = subprocess.run([validator, str(path)], capture_output=True, text=True)
        assert done.returncode == 0 and "error" not in done.stdout.lower(), done.stdout
