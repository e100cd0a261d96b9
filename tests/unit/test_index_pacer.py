"""IndexPacer: search documents wait while a burst of mail arrives (issue #9: they took a third of
the node's CPU from reception), are made at the first quieter interval, and a burst that goes on
cannot hold them back for ever."""

from dizimail.services.search import INDEX_BUDGET, IndexPacer


def test_quiet_intervals_index_the_backlog():
    pacer = IndexPacer(received=100, interval=1.0, burst_rate=20)
    assert pacer.budget(100) == INDEX_BUDGET  # nothing arrived
    assert pacer.budget(120) == INDEX_BUDGET  # 20 a second is not a burst


def test_a_burst_defers_indexing_until_it_ends():
    pacer = IndexPacer(received=0, interval=0.5, burst_rate=20)
    assert pacer.budget(11) is None  # 11 in half a second: over 20 a second
    assert pacer.budget(200) is None
    assert pacer.budget(205) == INDEX_BUDGET  # the burst is over: the backlog, at once


def test_a_long_burst_gets_one_batch_an_interval():
    pacer = IndexPacer(received=0, interval=1.0, burst_rate=20, max_deferred=3)
    received = 0
    budgets = []
    for _ in range(6):
        received += 300
        budgets.append(pacer.budget(received))
    assert budgets == [None, None, None, 0.0, 0.0, 0.0]
    assert pacer.budget(received) == INDEX_BUDGET
    received += 300
    assert pacer.budget(received) is None  # a new burst is deferred again
