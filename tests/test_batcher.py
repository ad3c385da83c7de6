"""Batching: size and wait limits, results back to the right caller, cancelled work skipped.

Where a test needs batches to close by size, the wait limit is a minute, never reached in a passing run, so a
slow machine cannot close a batch early.
"""

import asyncio
import time

import pytest
from rollmatch.server.batcher import Batcher


class RecordingScorer:
    """Stands in for a Scorer: answers each fragment with (fragment, origin, options) and records batches."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.fail = fail

    def score(self, fragments, *, origin_beats, **options):
        if self.fail:
            raise RuntimeError("engine broke")
        self.batches.append(len(fragments))
        return [(f, o, tuple(sorted(options.items()))) for f, o in zip(fragments, origin_beats, strict=True)]


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_are_batched_up_to_the_size_limit_and_answered_in_order():
    scorer = RecordingScorer()

    async def main():
        batcher = Batcher(max_fragments=4, max_wait_s=60)
        batcher.start()
        jobs = [batcher.score(scorer, [f"f{i}a", f"f{i}b"], [i, i + 0.5], {}) for i in range(6)]
        results = await asyncio.gather(*jobs)
        await batcher.stop()
        return results

    results = run(main())
    assert [[r[0] for r in res] for res in results] == [[f"f{i}a", f"f{i}b"] for i in range(6)]
    assert [res[1][1] for res in results] == [i + 0.5 for i in range(6)]
    assert scorer.batches == [4, 4, 4]


def test_a_lone_request_is_sent_when_the_wait_runs_out():
    # Far below the 64-fragment size limit, only the wait limit can close this batch.
    scorer = RecordingScorer()

    async def main():
        batcher = Batcher(max_fragments=64, max_wait_s=0.05)
        batcher.start()
        result = await asyncio.wait_for(batcher.score(scorer, ["only"], [0.0], {}), timeout=60)  # guards a hang
        await batcher.stop()
        return result

    assert run(main())[0][0] == "only"
    assert scorer.batches == [1]


def test_different_options_and_scorers_are_never_mixed():
    a, b = RecordingScorer(), RecordingScorer()

    async def main():
        batcher = Batcher(max_fragments=4, max_wait_s=60)  # the four requests make one batch
        batcher.start()
        results = await asyncio.gather(
            batcher.score(a, ["x"], [0.0], {"top_k": 1}),
            batcher.score(a, ["y"], [0.0], {"top_k": 2}),
            batcher.score(b, ["z"], [0.0], {"top_k": 1}),
            batcher.score(a, ["w"], [0.0], {"top_k": 1}),
        )
        await batcher.stop()
        return results

    results = run(main())
    assert [r[0][2] for r in results] == [(("top_k", 1),), (("top_k", 2),), (("top_k", 1),), (("top_k", 1),)]
    assert sorted(a.batches) == [1, 2] and b.batches == [1]


def test_cancelled_requests_are_skipped_and_errors_reach_every_caller():
    scorer, broken = RecordingScorer(), RecordingScorer(fail=True)

    async def main():
        batcher = Batcher(max_fragments=100, max_wait_s=0.1)
        batcher.start()
        doomed = asyncio.ensure_future(batcher.score(scorer, ["gone"], [0.0], {}))
        await asyncio.sleep(0)
        doomed.cancel()
        kept = await batcher.score(scorer, ["kept"], [0.0], {})
        with pytest.raises(RuntimeError, match="engine broke"):
            await batcher.score(broken, ["x"], [0.0], {})
        await batcher.stop()
        return kept

    assert run(main())[0][0] == "kept"
    assert scorer.batches == [1]  # only "kept" was scored


def test_the_time_spent_in_the_engine_is_counted():
    class SlowScorer(RecordingScorer):
        """Works for 50 ms a batch, and measures how long it worked."""

        seconds = 0.0

        def score(self, fragments, *, origin_beats, **options):
            began = time.perf_counter()
            time.sleep(0.05)
            verdicts = super().score(fragments, origin_beats=origin_beats, **options)
            self.seconds += time.perf_counter() - began
            return verdicts

    scorer = SlowScorer()

    async def main():
        batcher = Batcher(max_fragments=2, max_wait_s=60)
        batcher.start()
        await asyncio.gather(*(batcher.score(scorer, [f"f{i}"], [0.0], {}) for i in range(4)))
        await batcher.stop()
        return batcher.stats

    stats = run(main())
    assert stats.batches == 2 and stats.fragments == 4
    assert stats.engine_seconds >= scorer.seconds >= 2 * 0.05  # the engine's own time, and all of it
