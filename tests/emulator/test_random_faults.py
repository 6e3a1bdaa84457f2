"""Random faults (a probability and a seed), the call log's timing of 429s, and raw updates for fuzzing."""

import pytest
from telegram import Bot
from telegram.error import NetworkError, RetryAfter

from bot.emulator.client import EmulatorClient, EmulatorClientError
from bot.emulator.faults import Fault, FaultBook, fault_from_json
from bot.emulator.server import EmulatorServer

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def outcomes(book: FaultBook, calls: int, method: str = "sendMessage", chat_id: str | None = "1") -> list[str | None]:
    """The mode that hit each of `calls` calls in a row, None where none did."""
    return [fault.mode if (fault := book.take(method, chat_id)) else None for _ in range(calls)]


def random_book(seed: int) -> FaultBook:
    book = FaultBook()
    book.add(fault_from_json({"mode": "429", "probability": 0.25, "count": -1, "seed": seed, "retry_after": 2}))
    book.add(fault_from_json({"mode": "502", "probability": 0.25, "count": -1, "seed": seed + 1}))
    return book


def test_a_seed_repeats_the_same_failures_and_another_seed_does_not() -> None:
    first, again, other = (outcomes(random_book(seed), 200) for seed in (7, 7, 8))
    assert first == again
    assert first != other


def test_random_rules_fail_some_calls_in_each_way_and_spare_others() -> None:
    seen = outcomes(random_book(11), 400)
    # 429 hits a quarter of all calls; 502 a quarter of the rest (3/16): both and neither are certain in 400 draws.
    assert 40 < seen.count("429") < 160
    assert 25 < seen.count("502") < 125
    assert 150 < seen.count(None) < 330


def test_a_spared_call_uses_nothing_of_the_count() -> None:
    book = FaultBook()
    book.add(Fault(mode="500", probability=0.5, count=3, seed=3))
    seen = outcomes(book, 100)
    assert seen.count("500") == 3
    assert book.as_list() == []  # used up, then removed


def test_a_random_rule_only_draws_for_the_calls_it_matches() -> None:
    book = FaultBook()
    book.add(Fault(mode="429", method="sendMessage", chat_id="5", probability=0.5, count=-1, seed=1))
    assert outcomes(book, 50, method="getUpdates", chat_id=None) == [None] * 50
    assert outcomes(book, 50, chat_id="6") == [None] * 50
    reference = FaultBook()
    reference.add(Fault(mode="429", probability=0.5, count=-1, seed=1))
    assert outcomes(book, 50, chat_id="5") == outcomes(reference, 50)  # the draws were not spent elsewhere


def test_rules_show_their_seed_and_refuse_nonsense() -> None:
    drawn = fault_from_json({"mode": "502", "probability": 0.1, "count": -1}).as_dict()
    assert isinstance(drawn["seed"], int)
    assert drawn["probability"] == 0.1
    assert set(drawn) == {
        "mode",
        "method",
        "chat_id",
        "count",
        "retry_after",
        "delay",
        "probability",
        "seed",
        "description",
    }
    for body in (
        {"mode": "429", "probability": 0},
        {"mode": "429", "probability": 1.5},
        {"mode": "429", "probability": -0.2},
        {"mode": "429", "retry_after": 0},
    ):
        with pytest.raises(ValueError):
            fault_from_json(body)
    assert fault_from_json({"mode": "429"}).hits("getMe", None)  # no probability: every matching call


async def test_random_faults_through_the_control_api(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    rule = await client.set_fault("429", method="sendMessage", count=-1, probability=0.5, seed=5, retry_after=1)
    assert (rule["probability"], rule["seed"], rule["count"]) == (0.5, 5, -1)
    await client.set_limits(enabled=False)
    failed = 0
    for number in range(30):
        try:
            await bot.send_message(user["id"], str(number))
        except RetryAfter:
            failed += 1
    calls = await client.calls(method="sendMessage")
    assert [call["fault"] == "429" for call in calls].count(True) == failed
    book = FaultBook()
    book.add(Fault(mode="429", probability=0.5, count=-1, seed=5))
    assert [call["fault"] for call in calls] == outcomes(book, 30)  # the same seed, the same calls: the same failures
    assert 0 < failed < 30
    with pytest.raises(EmulatorClientError, match="probability"):
        await client.set_fault("502", probability=2)


async def test_the_call_log_says_when_a_429_was_answered_and_for_how_long(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.set_fault("429", method="sendMessage", retry_after=4)
    await client.set_fault("502", method="sendMessage")
    with pytest.raises(RetryAfter):
        await bot.send_message(user["id"], "one")
    with pytest.raises(NetworkError):
        await bot.send_message(user["id"], "two")
    await bot.send_message(user["id"], "three")
    refused, gateway, accepted = await client.calls(method="sendMessage")
    assert (refused["status"], refused["retry_after"]) == (429, 4)
    assert (gateway["status"], gateway["retry_after"]) == (502, None)
    assert (accepted["status"], accepted["retry_after"]) == (200, None)
    assert refused["time"] <= refused["time"] + refused["duration"] <= gateway["time"]


async def test_flood_limit_429s_are_logged_with_their_retry_after(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    await client.set_limits(private_burst=1, private_per_second=0.5)
    await bot.send_message(user["id"], "one")
    with pytest.raises(RetryAfter):
        await bot.send_message(user["id"], "two")
    last = (await client.calls(method="sendMessage"))[-1]
    assert last["status"] == 429 and last["retry_after"] >= 1


async def test_raw_updates_arrive_as_given(bot: Bot, client: EmulatorClient, emulator: EmulatorServer) -> None:
    odd = {"message_id": 1, "date": 0, "chat": {"id": 77, "type": "private"}, "text": "no sender"}
    first = await client.inject_update("message", odd)
    made_up = await client.inject_update("something_new", {"x": [1, 2]})
    assert made_up["update_id"] == first["update_id"] + 1
    raw = await bot.get_updates()
    assert [update.update_id for update in raw] == [first["update_id"], made_up["update_id"]]
    assert raw[0].message.text == "no sender" and raw[0].message.from_user is None
    assert raw[1].api_kwargs == {"something_new": {"x": [1, 2]}}
    for body in ({"update_id": 5, "message": odd}, {"message": odd, "edited_message": odd}, {}):
        with pytest.raises(EmulatorClientError, match="update"):
            await client._request("POST", "updates", body)
