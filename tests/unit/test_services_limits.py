"""Limits shared by all sessions of a node."""

from __future__ import annotations

from dizimail.services.limits import MemoryBudget


def test_memory_budget_takes_up_to_its_limit_and_gets_bytes_back():
    budget = MemoryBudget(100)
    assert budget.take(60)
    assert not budget.take(41)  # refused: nothing taken
    assert budget.in_use == 60
    assert budget.take(40)
    budget.give(60)
    assert budget.in_use == 40
    assert budget.take(60)
    budget.give(1000)  # never below zero
    assert budget.in_use == 0
