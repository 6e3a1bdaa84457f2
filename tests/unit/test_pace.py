"""The app's own pacing (bot/telegram/pace.py), checked against the emulator's model of Telegram's limits."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.emulator.limits import LimitConfig, RateLimiter
from bot.telegram.pace import ANSWER, FOLLOW_UP, Pace

# Telegram's limits scaled down in time (a "second" of 0.05 s) so a property runs quickly; the pace and the
# emulator's limiter read the same clock (the event loop's). The pace keeps one message under each limit, as it
# does by default (28 of 30 a second), and counts a chat's refill a little short (CHAT_LAG), for the moment between
# its room and the request's arrival.
SECOND = 0.05
PER_SECOND = 6


def scaled_pace(loop: asyncio.AbstractEventLoop) -> Pace:
    return Pace(
        PER_SECOND - 1, window=SECOND, chat_burst=3, chat_per_second=1 / SECOND, chat_lag=0.1 * SECOND, clock=loop.time
    )


def scaled_telegram(loop: asyncio.AbstractEventLoop) -> RateLimiter:
    config = LimitConfig(
        private_burst=3, private_per_second=1 / SECOND, global_per_second=PER_SECOND, global_window=SECOND
    )
    return RateLimiter(config, clock=loop.time)


async def take(pace: Pace, chat: int | None, count: int = 1, priority: int = ANSWER) -> None:
    """Room for a request that reaches Telegram at once."""
    async with pace.room(chat, count, priority):
        pass


sends = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=8),  # a private chat
        st.integers(min_value=1, max_value=3),  # messages in the request (an album's copies count each)
        st.sampled_from([ANSWER, FOLLOW_UP]),
        st.integers(min_value=0, max_value=2),  # ticks of the loop before the next request
    ),
    min_size=1,
    max_size=40,
)


@settings(deadline=None, max_examples=40)
@given(sends)
def test_bursts_to_many_chats_never_exceed_telegrams_limits_and_keep_each_chats_order(batch) -> None:
    async def scenario() -> tuple[list[int | None], dict[int, list[int]], dict[int, list[int]]]:
        loop = asyncio.get_running_loop()
        pace, telegram = scaled_pace(loop), scaled_telegram(loop)
        refusals: list[int | None] = []
        sent: dict[int, list[int]] = {}
        asked: dict[int, list[int]] = {}
        locks: dict[int, asyncio.Lock] = {}

        async def send(index: int, chat: int, count: int, priority: int) -> None:
            async with locks.setdefault(chat, asyncio.Lock()):  # one sender per chat, as the outbox has
                await take(pace, chat, count, priority)
                refusals.append(telegram.acquire(chat, True, count))
                sent.setdefault(chat, []).append(index)

        tasks = []
        for index, (chat, count, priority, ticks) in enumerate(batch):
            asked.setdefault(chat, []).append(index)
            tasks.append(asyncio.create_task(send(index, chat, count, priority)))
            for _ in range(ticks):
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return refusals, sent, asked

    refusals, sent, asked = asyncio.run(scenario())
    assert [r for r in refusals if r is not None] == []  # Telegram (the emulator's rules) refused none
    assert sent == asked  # every request went once, in order within its chat


@settings(deadline=None, max_examples=40)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=8),  # a private chat
            st.integers(min_value=1, max_value=3),  # messages in the request
            st.integers(min_value=0, max_value=8),  # tenths of a "second" from leaving to reaching Telegram
            st.integers(min_value=0, max_value=4),  # tenths of a "second" from reaching Telegram to the answer
        ),
        min_size=1,
        max_size=40,
    )
)
def test_requests_slow_to_arrive_never_add_up_to_more_than_telegram_allows(batch) -> None:
    """The time between a request leaving and Telegram counting it varies (a loaded machine, the network): requests
    that left in different seconds can arrive in one. Sent within the pace's room, Telegram still refuses none."""

    async def scenario() -> list[int | None]:
        loop = asyncio.get_running_loop()
        pace, telegram = scaled_pace(loop), scaled_telegram(loop)
        refusals: list[int | None] = []
        locks: dict[int, asyncio.Lock] = {}

        async def send(chat: int, count: int, out: int, back: int) -> None:
            async with locks.setdefault(chat, asyncio.Lock()), pace.room(chat, count):
                await asyncio.sleep(out * SECOND / 10)
                refusals.append(telegram.acquire(chat, True, count))
                await asyncio.sleep(back * SECOND / 10)

        await asyncio.gather(*(send(*request) for request in batch))
        return refusals

    assert [r for r in asyncio.run(scenario()) if r is not None] == []


def test_a_request_given_up_after_its_room_frees_the_room() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        pace = Pace(1, window=SECOND, clock=loop.time)
        async with pace.room(1, 1):
            waiting = asyncio.create_task(take(pace, 2, 1))
            await asyncio.sleep(0)
            room_given = pace._waiters[0][-1]
        while not room_given.done():  # a window after the first was answered
            await asyncio.sleep(0)
        waiting.cancel()  # given its room, it is cancelled before it could send
        await asyncio.gather(waiting, return_exceptions=True)
        await asyncio.sleep(SECOND * 1.01)
        start = loop.time()
        await asyncio.wait_for(take(pace, 3, 1), 10 * SECOND)  # a room never freed would wait for ever
        return loop.time() - start

    assert asyncio.run(scenario()) < SECOND / 2


def test_answers_go_before_follow_ups_when_there_is_no_room() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        pace = Pace(2, window=SECOND, clock=loop.time)
        order: list[str] = []

        async def send(name: str, chat: int, priority: int) -> None:
            await take(pace, chat, 1, priority)
            order.append(name)

        await take(pace, 100, 2)  # the second is spent
        later = [
            asyncio.create_task(send("follow-up 1", -5, FOLLOW_UP)),
            asyncio.create_task(send("follow-up 2", -5, FOLLOW_UP)),
        ]
        await asyncio.sleep(0)
        later += [asyncio.create_task(send("answer 1", 1, ANSWER)), asyncio.create_task(send("answer 2", 2, ANSWER))]
        await asyncio.gather(*later)
        return order

    assert asyncio.run(scenario()) == ["answer 1", "answer 2", "follow-up 1", "follow-up 2"]


def test_a_chat_out_of_its_allowance_does_not_hold_up_the_others() -> None:
    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        pace = Pace(100, window=SECOND, chat_burst=1, chat_per_second=1 / (40 * SECOND), clock=loop.time)
        order: list[int] = []

        async def send(chat: int) -> None:
            await take(pace, chat, 1)
            order.append(chat)

        await take(pace, 1, 1)  # chat 1's allowance is spent for 40 "seconds"
        await asyncio.gather(send(1), *(send(chat) for chat in range(2, 6)))
        return order

    assert asyncio.run(scenario()) == [2, 3, 4, 5, 1]


def test_room_is_there_for_typing_only_when_nothing_waits() -> None:
    async def scenario() -> list[bool]:
        loop = asyncio.get_running_loop()
        pace = Pace(1, window=SECOND, clock=loop.time)
        seen = [pace.has_room()]
        await take(pace, 1, 1)
        seen.append(pace.has_room())
        waiting = asyncio.create_task(take(pace, 2, 1))
        await asyncio.sleep(0)
        seen.append(pace.has_room())
        await waiting
        return seen

    assert asyncio.run(scenario()) == [True, False, False]


def test_no_pacing_when_switched_off() -> None:
    async def scenario() -> int:
        pace = Pace(0)
        for _ in range(1000):
            await take(pace, 1, 1)
        return 1000

    assert asyncio.run(scenario()) == 1000
