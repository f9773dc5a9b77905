"""The bundled models and icons travel with an installed package, not only with a checkout."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from engine.store.shipped import CHECKOUT_ROOT, SHARE_NAME, shipped_dir

ROOT = Path(__file__).resolve().parents[3]
DATA = f"inversionview_studio-0.1.0.data/data/share/{SHARE_NAME}/"


def test_a_checkout_uses_its_own_folders():
    assert shipped_dir("models") == ROOT / "models"
    assert shipped_dir("resources") == ROOT / "resources"


def test_outside_a_checkout_the_installed_copy_under_the_prefix_is_used(tmp_path):
    site = tmp_path / "site-packages"  # no pyproject.toml: an installed package's parent
    (site / "models").mkdir(parents=True)  # a stray folder there must not be taken for ours
    found = shipped_dir("models", checkout_root=site, prefix=tmp_path / "venv")
    assert found == tmp_path / "venv" / "share" / SHARE_NAME / "models"


def test_the_wheel_carries_every_bundled_model_file_and_icon(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(CHECKOUT_ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p for top in ("models", "resources") for p in (ROOT / top).rglob("*") if p.is_file()]
    missing = [str(p.relative_to(ROOT)) for p in shipped if DATA + str(p.relative_to(ROOT)) not in names]
    assert shipped and not missing, f"add these to [tool.setuptools.data-files]: {missing}"
    assert "engine/store/shipped.py" in names and "app/launch.py" in names
