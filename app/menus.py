"""The main window's menus and keyboard shortcuts."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence


def _action(window, menu, text: str, slot, shortcuts=(), tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcuts:
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    menu.addAction(action)
    window.addAction(action)  # shortcuts work wherever the focus is in the window
    return action


def build_menus(w) -> None:
    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    w.open_folder_action = _action(w, file_menu, "&Open model folder…", w.picker.ask_folder, ("Ctrl+O",))
    w.train_decoder_action = _action(w, file_menu, "&Train decoder…", w.open_train_dialog, (),
                                     "Train a decoder for a probed model into a new model, with live curves")
    w.import_paper_json_action = _action(w, file_menu, "&Import paper JSON…", lambda: w.import_paper_json(),
                                         tip="A cached-generation file of the InversionView paper's web viewer")
    file_menu.addSeparator()
    w.export_csv_action = _action(w, file_menu, "&Export samples to CSV…", lambda: w.export_csv(), ("Ctrl+E",),
                                  "One row per sample: rank, multiplicity, distance, text, fact…")
    w.export_paper_json_action = _action(w, file_menu, "Export samples for the paper's &viewer…",
                                         lambda: w.export_paper_json(),
                                         tip="The InversionView paper's web-viewer JSON, with prob-diff colours")
    w.export_notebook_action = _action(w, file_menu, "Export as &notebook…", lambda: w.export_notebook(),
                                       tip="A Jupyter notebook that re-runs the shown result through the engine")
    w.export_results_png_action = _action(w, file_menu, "Export results as &PNG…", lambda: w.export_png("results"))
    w.export_diagram_png_action = _action(w, file_menu, "Export &diagram as PNG…", lambda: w.export_png("diagram"))
    w.export_flow_json_action = _action(w, file_menu, "Export flow graph as &JSON…", lambda: w.export_flow("json"),
                                        tip="The flow graph with the edges the diagram shows (threshold, route only)")
    w.export_flow_np_action = _action(w, file_menu, "Export flow graph for &Neuronpedia…",
                                      lambda: w.export_flow("neuronpedia"),
                                      tip="Graph JSON that attribution-graph viewers read, pruned by influence")
    w.export_flow_png_action = _action(w, file_menu, "Export flow graph as P&NG…", lambda: w.export_flow("png"),
                                       tip="The whole diagram with the flow graph's edges and readouts")
    file_menu.addSeparator()
    _action(w, file_menu, "&Quit", w.close, (QKeySequence.Quit,))

    query_menu = bar.addMenu("&Query")
    w.run_action = _action(w, query_menu, "&Run", w.run_query, ("Ctrl+Return", "Ctrl+Enter"),
                           "Invert the chosen site and position of the query")
    w.cancel_action = _action(w, query_menu, "&Cancel", w.cancel_query, ("Esc",))
    w.map_action = _action(w, query_menu, "&Map this input", lambda: w.map.map_requested(), ("Ctrl+M",),
                           "InversionView at every node of the diagram: what each node's close samples share")
    w.patch_action = _action(w, query_menu, "&Patch…", lambda: w.patch.open(), ("Ctrl+Shift+P",),
                             "The causal check: which nodes carry the difference between the query and a "
                             "corrupted input to the answer")

    view_menu = bar.addMenu("&View")
    _action(w, view_menu, "&Fit diagram", w.diagram.fit, ("Ctrl+0",))
    view_menu.addAction(w.history_dock.toggleViewAction())
    view_menu.addAction(w.node_dock.toggleViewAction())

    help_menu = bar.addMenu("&Help")
    _action(w, help_menu, "&About", lambda: show_about(w))


def show_about(w):
    """Help > About: the version, and where the command line is."""
    from PySide6.QtWidgets import QMessageBox

    from app.messages import show_message
    from engine.cli.main import package_version

    return show_message(w, "About InversionView Studio",
                        f"InversionView Studio {package_version()}: what does an activation encode? Pick a "
                        "site and position, run, and read what the close samples share.\n\n"
                        "Command line: python main.py --help", icon=QMessageBox.Information)
