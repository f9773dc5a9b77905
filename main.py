"""InversionView Studio: `python main.py` opens the app; `python main.py <command>` is the command line."""
import sys


def main() -> int:
    from app.qt_args import is_qt_option

    args = sys.argv[1:]
    gui = ("--smoke-test", "--engine-command")
    if not args or args[0].startswith(gui) or is_qt_option(args[0]):  # -style fusion: Qt's own option
        from app.launch import main as gui_main

        return gui_main(args)
    from engine.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
