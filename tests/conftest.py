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
# One torch thread, here and in the command-line processes tests start (they inherit it): on an
# idle 2-core machine the decoder and query tests took the same wall time with one thread as with
# two (104 s each) and 15% less CPU; under load two threads spin-wait for each other (one training
# test took 164 s with two against 22 s with one).
os.environ.setdefault("INVERSIONVIEW_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
