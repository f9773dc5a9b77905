"""Old readouts are let go a piece per turn of the event loop (app/retire.py)."""
from app.retire import PIECE, Retirer


def test_retired_containers_are_emptied_a_piece_per_turn(qtbot):
    retirer = Retirer()
    labels = {i: str(i) for i in range(PIECE + 500)}
    dim, edges = set(range(300)), list(range(PIECE))
    kept = {"still": "read"}
    retirer.retire(labels, dim, edges, {})
    assert retirer.pending() == 2 * PIECE + 800  # nothing freed inside the call
    retirer._step()  # one turn of the event loop's worth
    assert retirer.pending() == PIECE + 800  # PIECE entries, across containers
    qtbot.waitUntil(lambda: retirer.pending() == 0, timeout=5000)
    assert not labels and not dim and not edges and kept == {"still": "read"}


def test_a_slow_turn_stops_early_and_the_rest_follows(qtbot, turn_clock):
    """Freeing can cost far more than usual on a busy turn: a slice also stops at the time
    budget (app/turns.py), looking at the clock every STRIDE entries."""
    from app.retire import STRIDE

    retirer = Retirer()
    labels = {i: str(i) for i in range(PIECE)}
    retirer.retire(labels)
    turn_clock.step = 1.0  # every look at the clock finds the turn's budget spent
    retirer._step()
    assert retirer.pending() == PIECE - STRIDE  # one stride, then the clock said stop
    qtbot.waitUntil(lambda: retirer.pending() == 0, timeout=5000)
    assert not labels
