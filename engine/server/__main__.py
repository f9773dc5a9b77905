"""`python -m engine.server`: the engine process (engine/server/main.py)."""
import sys

from engine.server.main import main

sys.exit(main())
