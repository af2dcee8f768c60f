"""The inference lane: one thread runs model calls, waiting calls of one key run as one batch,
a full queue is refused at once with the seconds to wait, errors reach their callers. Every
wait is on an event, never on a clock."""

from __future__ import annotations

import asyncio

import pytest

from server.core.errors import BadInput
from server.services.inference import InferenceLane
from service_fixtures import Gate


def record(batches: list):
    def run(items):
        batches.append(list(items))
        return [item * 10 for item in items]
    return run


def test_waiting_calls_of_one_key_run_as_one_batch_in_order():
    lane = InferenceLane(capacity=10, max_batch=3)
    batches: list = []
    gate = Gate(lane)
    run = record(batches)
    futures = [lane.submit(run, i, key="a" if i % 2 == 0 else "b") for i in range(6)]
    alone = lane.submit(run, 100)  # no key: never batched
    gate.open()
    assert [f.result(60) for f in futures] == [0, 10, 20, 30, 40, 50]
    assert alone.result(60) == 1000
    assert batches == [[0, 2, 4], [1, 3, 5], [100]]


def test_max_batch_splits_a_long_run_of_one_key():
    lane = InferenceLane(capacity=10, max_batch=2)
    batches: list = []
    gate = Gate(lane)
    futures = [lane.submit(record(batches), i, key="k") for i in range(5)]
    gate.open()
    assert [f.result(60) for f in futures] == [0, 10, 20, 30, 40]
    assert batches == [[0, 1], [2, 3], [4]]


def test_a_full_lane_refuses_at_once_with_retry_after():
    lane = InferenceLane(capacity=2, max_batch=1)
    gate = Gate(lane)  # running, so it does not count as waiting
    waiting = [lane.submit(lambda items: items, i) for i in range(2)]
    with pytest.raises(BadInput) as refused:
        lane.submit(lambda items: items, 99)
    assert refused.value.status == 503 and refused.value.retry_after >= 1
    assert "busy" in str(refused.value) and "2 model calls are waiting" in str(refused.value)
    gate.open()
    assert [f.result(60) for f in waiting] == [0, 1]
    assert lane.call(lambda items: items, 5) == 5  # room again


def test_an_error_reaches_every_caller_of_its_batch_and_the_lane_goes_on():
    lane = InferenceLane(capacity=10, max_batch=4)
    gate = Gate(lane)

    def fail(items):
        raise BadInput("teacher missing", 409)

    failing = [lane.submit(fail, i, key="x") for i in range(2)]
    gate.open()
    for future in failing:
        with pytest.raises(BadInput, match="teacher missing"):
            future.result(60)
    assert lane.call(lambda items: [i + 1 for i in items], 1) == 2


def test_a_cancelled_call_is_skipped():
    lane = InferenceLane(capacity=10, max_batch=4)
    ran: list = []
    gate = Gate(lane)
    cancelled = lane.submit(record(ran), 1, key="k")
    kept = lane.submit(record(ran), 2, key="k")
    assert cancelled.cancel()
    gate.open()
    assert kept.result(60) == 20 and ran == [[2]]


def test_async_callers_wait_without_blocking_the_loop():
    lane = InferenceLane(capacity=10, max_batch=4)
    gate = Gate(lane)

    async def main():
        pending = asyncio.ensure_future(lane.acall(lambda items: items, 7))
        ticks = 0
        while not lane.waiting:  # the call is queued while the loop keeps running
            ticks += 1
            await asyncio.sleep(0)
        gate.opened.set()
        return await pending, ticks

    assert asyncio.run(main())[0] == 7
    gate.future.result(60)


def test_a_closed_lane_refuses_new_calls():
    lane = InferenceLane()
    lane.close()
    with pytest.raises(BadInput) as refused:
        lane.submit(lambda items: items, 1)
    assert refused.value.status == 503
