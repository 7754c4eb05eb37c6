"""Round effort, luck and block statuses on hand-made sequences."""

from __future__ import annotations

import pytest

from services.aggregator.domain.blocks import BlockLedger, fold_round_seconds

from .samples import T0_MS, block, block_hash, share

pytestmark = pytest.mark.unit

S = 1_000  # one second in ms
A, B, C, D = (block_hash(i) for i in range(1, 5))


def feed(ledger: BlockLedger, *shares_args: tuple[int, float]) -> None:
    ledger.add_round_seconds(fold_round_seconds([share(T0_MS + t, difficulty=d) for t, d in shares_args]))


def test_effort_and_luck_on_a_hand_made_sequence() -> None:
    ledger = BlockLedger()
    ledger.start_round("main", T0_MS)  # the previous block, as loaded from storage
    feed(ledger, (10 * S, 50.0), (20 * S, 50.0))
    ledger.observe(block(T0_MS + 30 * S, A, network_difficulty=100.0))
    feed(ledger, (40 * S, 200.0))
    ledger.observe(block(T0_MS + 60 * S, B, network_difficulty=100.0))
    feed(ledger, (61 * S, 50.0))
    ledger.observe(block(T0_MS + 90 * S, C, network_difficulty=100.0))
    assert [ledger.effort(h) for h in (A, B, C)] == [1.0, 2.0, 0.5]
    luck = ledger.luck("main", 64)
    assert (luck.blocks, luck.luck) == (3, pytest.approx(3 / 3.5))
    assert ledger.luck("main", 2).luck == pytest.approx(2 / 2.5)  # the newest two: C and B
    assert ledger.blocks_found("main") == 3
    feed(ledger, (95 * S, 25.0))
    assert ledger.current_effort("main") == 0.25  # against C's network difficulty
    assert ledger.current_effort("main", 50.0) == 0.5


def test_a_share_in_the_blocks_own_second_counts_to_the_next_round() -> None:
    ledger = BlockLedger()
    ledger.start_round("main", T0_MS)
    feed(ledger, (5 * S, 10.0), (30 * S + 999, 7.0))
    ledger.observe(block(T0_MS + 30 * S + 500, A, network_difficulty=10.0))
    assert ledger.effort(A) == 1.0
    assert ledger.current_effort("main") == 0.7


def test_block_event_after_later_shares_splits_the_round_exactly() -> None:
    ledger = BlockLedger()
    ledger.start_round("main", T0_MS)
    feed(ledger, (92 * S, 20.0), (95 * S, 30.0), (99 * S, 1.0))  # shares from other nodes, first
    ledger.observe(block(T0_MS + 93 * S + 500, D, network_difficulty=10.0))
    assert ledger.effort(D) == 2.0
    assert ledger.current_effort("main") == 3.1


def test_late_share_changes_its_own_round_only() -> None:
    ledger = BlockLedger()
    ledger.start_round("main", T0_MS)
    feed(ledger, (10 * S, 100.0))
    ledger.observe(block(T0_MS + 30 * S, A, network_difficulty=100.0))
    feed(ledger, (40 * S, 100.0))
    ledger.observe(block(T0_MS + 60 * S, B, network_difficulty=100.0))
    feed(ledger, (15 * S, 100.0))  # arrives late, belongs to A's round
    assert (ledger.effort(A), ledger.effort(B)) == (2.0, 1.0)


def test_first_block_without_a_known_round_start_has_no_effort() -> None:
    ledger = BlockLedger()
    feed(ledger, (10 * S, 100.0))
    ledger.observe(block(T0_MS + 30 * S, A))
    feed(ledger, (40 * S, 50.0))
    ledger.observe(block(T0_MS + 60 * S, B, network_difficulty=100.0))
    assert ledger.effort(A) is None
    assert ledger.effort(B) == 0.5
    assert ledger.luck("main", 64).blocks == 1  # A is left out of luck
    assert ledger.luck("other", 64).luck is None


def test_status_transitions_by_hash_in_any_order() -> None:
    ledger = BlockLedger()
    first = ledger.observe(block(T0_MS, A, reward=3.125))
    assert first.is_new and first.block.status == "candidate"
    again = ledger.observe(block(T0_MS + 10 * S, A, status="confirmed"))
    assert not again.is_new and again.block.status == "confirmed"
    assert again.block.reward == 3.125  # kept when the later event has none
    ledger.observe(block(T0_MS + 5 * S, A, status="candidate"))  # stale candidate: ignored
    assert ledger.block(A).status == "confirmed"  # type: ignore[union-attr]
    ledger.observe(block(T0_MS + 20 * S, A, status="orphaned"))  # reorganised away later
    assert ledger.block(A).status == "orphaned"  # type: ignore[union-attr]
    ledger.observe(block(T0_MS + 15 * S, A, status="confirmed"))  # older than the orphaning
    assert ledger.block(A).status == "orphaned"  # type: ignore[union-attr]
    assert ledger.counts("main") == {"candidate": 0, "confirmed": 0, "orphaned": 1}
    assert ledger.blocks_found("main") == 1


def test_orphaned_blocks_still_count_in_luck() -> None:
    ledger = BlockLedger()
    ledger.start_round("main", T0_MS)
    feed(ledger, (10 * S, 100.0))
    ledger.observe(block(T0_MS + 30 * S, A, network_difficulty=100.0))
    before = ledger.luck("main", 64)
    ledger.observe(block(T0_MS + 40 * S, A, status="orphaned"))
    assert ledger.luck("main", 64) == before
    assert before.luck == 1.0


def test_earlier_event_moves_the_found_time_and_the_round_boundary() -> None:
    ledger = BlockLedger()
    ledger.start_round("main", T0_MS)
    feed(ledger, (10 * S, 100.0), (50 * S, 100.0))
    ledger.observe(block(T0_MS + 60 * S, A, status="confirmed", network_difficulty=100.0))
    assert ledger.effort(A) == 2.0
    update = ledger.observe(block(T0_MS + 30 * S, A, status="candidate"))  # the original find
    assert update.moved_from_ms == T0_MS + 60 * S
    assert update.block.found_at_ms == T0_MS + 30 * S
    assert update.block.status == "confirmed"
    assert ledger.effort(A) == 1.0
    assert ledger.current_effort("main") == 1.0


def test_block_older_than_the_detail_horizon_is_kept_out_of_rounds() -> None:
    ledger = BlockLedger(detail_horizon_ms=3_600_000)
    ledger.start_round("main", T0_MS)
    feed(ledger, (10 * S, 100.0), (3 * 3600 * S, 100.0))  # the watermark moves 3 h on
    update = ledger.observe(block(T0_MS + 30 * S, A))
    assert not update.block.in_rounds
    assert ledger.effort(A) is None


def test_only_accepted_shares_are_work() -> None:
    out = fold_round_seconds([
        share(T0_MS + 1, difficulty=5.0),
        share(T0_MS + 2, difficulty=5.0, status="rejected"),
        share(T0_MS + 3, difficulty=5.0, status="stale"),
        share(T0_MS + 1_500, difficulty=1.0),
    ])
    assert out == {("main", T0_MS // 1000): 5 * 2**80, ("main", T0_MS // 1000 + 1): 2**80}
