"""The engine as a process of its own, spoken to over one pipe (docs/design.md, "The engine process").

wire.py frames messages, codec.py turns values into them and back (no pickle), service.py runs
requests by priority, backend.py maps each kind of request to the engine, main.py is the process.
"""
