"""Pure bracket analysis (no database): OCO lifecycles and orphaned siblings,
including scale-out, partial entries and the both-legs-filled race."""

from __future__ import annotations

from aitrapp.report.brackets import OrderState, Plan, is_full_oco_lifecycle, sibling_problems


def plan(*orders: tuple[str, str, str, int, int]) -> Plan:
    """Orders as (role, side, status, qty, filled_qty)."""
    return Plan(
        "p1",
        tuple(
            OrderState(f"p1:{role}", "p1", role, side, status, qty, filled)
            for role, side, status, qty, filled in orders
        ),
    )


def test_plain_bracket_tp_filled_stop_cancelled() -> None:
    p = plan(
        ("ENTRY", "BUY", "COMPLETE", 10, 10),
        ("TP", "SELL", "COMPLETE", 10, 10),
        ("STOP", "SELL", "CANCELLED", 10, 0),
    )
    assert p.closed and is_full_oco_lifecycle(p) and sibling_problems(p) == []


def test_scale_out_half_way_is_neither_closed_nor_a_problem() -> None:
    p = plan(
        ("ENTRY", "SELL", "COMPLETE", 100, 100),
        ("TP1", "BUY", "COMPLETE", 50, 50),
        ("TP2", "BUY", "OPEN", 50, 0),
        ("STOP", "BUY", "TRIGGER PENDING", 50, 0),
    )
    assert not p.closed and not is_full_oco_lifecycle(p) and sibling_problems(p) == []


def test_scale_out_completed_is_a_full_lifecycle() -> None:
    p = plan(
        ("ENTRY", "BUY", "COMPLETE", 100, 100),
        ("TP1", "SELL", "COMPLETE", 50, 50),
        ("TP2", "SELL", "COMPLETE", 50, 50),
        ("STOP", "SELL", "CANCELLED", 50, 0),
    )
    assert is_full_oco_lifecycle(p) and sibling_problems(p) == []


def test_partial_entry_with_its_remainder_cancelled() -> None:
    p = plan(
        ("ENTRY", "BUY", "CANCELLED", 100, 40),
        ("STOP", "SELL", "COMPLETE", 40, 40),
        ("TP", "SELL", "CANCELLED", 40, 0),
    )
    assert is_full_oco_lifecycle(p) and sibling_problems(p) == []


def test_stop_left_working_after_tp() -> None:
    p = plan(
        ("entry", "BUY", "COMPLETE", 10, 10),
        ("tp", "SELL", "COMPLETE", 10, 10),
        ("stop", "SELL", "TRIGGER PENDING", 10, 0),
    )
    assert not is_full_oco_lifecycle(p)
    (problem,) = sibling_problems(p)
    assert problem.detail == "stop p1:stop still TRIGGER PENDING after tp closed the position"


def test_entry_remainder_left_working_after_the_bracket_closed() -> None:
    p = plan(
        ("ENTRY", "BUY", "OPEN", 100, 40),
        ("TP", "SELL", "COMPLETE", 40, 40),
        ("STOP", "SELL", "CANCELLED", 40, 0),
    )
    (problem,) = sibling_problems(p)
    assert "ENTRY p1:ENTRY still OPEN" in problem.detail


def test_both_legs_filled_then_corrected_is_still_a_failure() -> None:
    p = plan(
        ("ENTRY", "BUY", "COMPLETE", 10, 10),
        ("TP", "SELL", "COMPLETE", 10, 10),
        ("STOP", "SELL", "COMPLETE", 10, 10),
        ("EXIT1", "BUY", "COMPLETE", 10, 10),
    )
    assert p.closed and not is_full_oco_lifecycle(p)
    (problem,) = sibling_problems(p)
    assert "exits filled 20 > entry filled 10" in problem.detail
    assert "and was corrected" in problem.detail


def test_flatten_exit_after_cancelled_legs_is_closed_but_not_a_lifecycle() -> None:
    p = plan(
        ("ENTRY", "BUY", "COMPLETE", 10, 10),
        ("TP", "SELL", "CANCELLED", 10, 0),
        ("STOP", "SELL", "CANCELLED", 10, 0),
        ("EXIT", "SELL", "COMPLETE", 10, 10),
    )
    assert p.closed and not is_full_oco_lifecycle(p) and sibling_problems(p) == []


def test_unfilled_entry_cancelled() -> None:
    p = plan(("ENTRY", "BUY", "CANCELLED", 10, 0))
    assert not p.closed and not is_full_oco_lifecycle(p) and sibling_problems(p) == []
