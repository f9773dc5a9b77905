"""Every test runs offline, offscreen, and writes user data and logs into temporary folders."""
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["INVERSIONVIEW_DATA_DIR"] = tempfile.mkdtemp(prefix="ivs-data-")
os.environ["INVERSIONVIEW_LOG_DIR"] = tempfile.mkdtemp(prefix="ivs-logs-")
os.environ["HF_HUB_CACHE"] = tempfile.mkdtemp(prefix="ivs-hub-")  # never the machine's own cache
os.environ.setdefault("INVERSIONVIEW_CONFIG_DIR", tempfile.mkdtemp(prefix="ivs-config-"))

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
