"""The command-line twin of the app: `python main.py <command>` (see `python main.py --help`)."""
