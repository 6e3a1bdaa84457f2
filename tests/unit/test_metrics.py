"""`GET /metrics` of the app (issue 20): a short conversation against the emulator and a scripted Rasa moves each
counter by what happened, and the figures read from the database at the scrape (the queue, the outbox backlog, the
live model) say where things stand, at a clock the test sets. Only METRICS_TOKEN opens it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.content import versions
from bot.metrics import AppMetrics
from bot.metrics_figures import Figures, read
from bot.storage import transcript
from bot.telegram.intake import update_kind
from devstack.stack import free_port
from tests.unit.chat_harness import Harness, eventually, running_harness

METRICS_TOKEN = "metrics-test-token-0123456789"
MAYA = 4242
START = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)  # a Wednesday morning: the desk is open all week by default
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _handing_over(body: dict) -> list[dict]:
    if body["message"] == "I want a person":
        return [{"text": "Bringing in a person."}, {"custom": {"handoff": {"reason": "customer_request"}}}]
    return [{"text": f"echo: {body['message']}"}]


@pytest.fixture
def fresh_metrics() -> Iterator[AppMetrics]:
    """A registry of this test's own: nothing another test counted is seen."""
    mine = AppMetrics()
    previous = metrics.use(mine)
    try:
        yield mine
    finally:
        metrics.use(previous)


@pytest.fixture
async def app(tmp_path: Path, fresh_metrics: AppMetrics, clock) -> AsyncIterator[Harness]:
    clock.set_to(START, frozen=True)
    port = free_port()
    async with running_harness(tmp_path, desk=True, APP_PORT=str(port), METRICS_TOKEN=METRICS_TOKEN) as running:
        running.rasa.answer = _handing_over
        yield running


async def _scrape(harness: Harness, token: str | None = METRICS_TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{harness.settings.app_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.text()


async def _samples(harness: Harness) -> Samples:
    status, text = await _scrape(harness)
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _moved(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The counters that changed (histogram buckets left out: their count and sum say enough)."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0].endswith(("_total", "_count")) and after[key] != before.get(key, 0.0)
    }


async def test_only_the_metrics_token_opens_it(app: Harness) -> None:
    assert (await _scrape(app, None))[0] == 401
    assert (await _scrape(app, "not-the-metrics-token-0123"))[0] == 401
    app_token = (Path(app.settings.var_dir) / "tokens" / "app").read_text().strip()
    assert (await _scrape(app, app_token))[0] == 401  # another hop's token is no key here
    assert (await _scrape(app))[0] == 200


async def test_a_short_conversation_moves_each_counter_by_what_happened(app: Harness, clock) -> None:
    before = await _samples(app)
    await app.say("hello")
    await app.say("where is my order")
    await app.say("I want a person")
    expected = {
        ("frontline_updates_total", (("kind", "message"),)): 3,
        ("frontline_rasa_seconds_count", (("outcome", "answered"),)): 3,
        ("frontline_handoffs_total", (("reason", "customer_request"),)): 1,
        # Maya's three answers and her place in the queue; the ticket's card in the agents' group.
        ("frontline_messages_sent_total", (("kind", "text"),)): 4,
        ("frontline_messages_sent_total", (("kind", "card"),)): 1,
    }

    async def moved() -> dict:
        return _moved(before, await _samples(app))

    assert await eventually(moved, expected), await moved()  # counters only grow: one too many never matches
    after = await _samples(app)
    # Where things stand, read from the database: Maya waits, nobody is online.
    assert _value(after, "frontline_queue_length") == 1
    assert _value(after, "frontline_agents_online") == 0
    # /ready's checks: the scripted Rasa answers the REST channel but has no /status, as a Rasa without a model.
    assert _value(after, "frontline_ready", check="database") == 1
    assert _value(after, "frontline_ready", check="rasa") == 0
    assert _value(after, "frontline_queue_oldest_wait_seconds") == 0
    clock.advance(timedelta(minutes=7))
    assert _value(await _samples(app), "frontline_queue_oldest_wait_seconds") == 7 * 60


async def test_a_flooded_chat_counts_its_429_and_an_undelivered_reply_shows_its_age(app: Harness, clock) -> None:
    await app.say("hello")
    before = await _samples(app)
    await app.emulator.set_fault("429", method="sendMessage", chat_id=MAYA, count=1, retry_after=1)
    await app.say("are you there")  # answered once Telegram's second is over
    after = await _samples(app)
    assert _moved(before, after)[("frontline_telegram_retry_after_total", (("chat", "private"),))] == 1
    assert _value(after, "frontline_outbox_pending") == 0
    assert _value(after, "frontline_outbox_oldest_age_seconds") == 0

    await app.emulator.set_fault("500", method="sendMessage", chat_id=MAYA, count=-1)
    await app.emulator.send_text(MAYA, "still there?")

    async def pending() -> float:
        return _value(await _samples(app), "frontline_outbox_pending")

    assert await eventually(pending, 1.0)
    clock.advance(timedelta(minutes=3))
    stuck = await _samples(app)
    assert _value(stuck, "frontline_outbox_oldest_age_seconds") == 3 * 60
    await app.emulator.clear_faults()
    assert await eventually(pending, 0.0)
    assert _value(await _samples(app), "frontline_outbox_oldest_age_seconds") == 0


async def test_the_live_model_and_the_trainings_are_read_at_the_scrape(app: Harness) -> None:
    async with app.sessions.begin() as session:
        first = await session.run_sync(versions.register, Path("aaa.tar.gz"), "aaa", "ana")
        second = await session.run_sync(versions.register, Path("bbb.tar.gz"), "bbb", "ana")
        await session.run_sync(versions.put_version_live, second.id, "ana")
    samples = await _samples(app)
    assert _value(samples, "frontline_live_model_info", version=str(second.id), fingerprint="bbb") == 1
    assert _value(samples, "frontline_live_model_info", version=str(first.id), fingerprint="aaa") == 0
    assert _value(samples, "frontline_trainings", status="ready") >= 2


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"update_id": 1, "message": {}}, "message"),
        ({"update_id": 2, "callback_query": {}}, "callback_query"),
        ({"update_id": 3, "my_chat_member": {}}, "my_chat_member"),
        ({"update_id": 4, "something_new": {}}, "other"),
        ({"update_id": 5}, "other"),
    ],
)
def test_an_update_is_counted_by_what_it_carries(payload: dict, kind: str) -> None:
    assert update_kind(payload) == kind


async def test_the_figures_read_the_same_on_sqlite_and_postgresql(sessions, clock) -> None:
    clock.set_to(START, frozen=True)
    assert await sessions.read(read) == Figures()
    async with sessions.begin() as session:
        customer = await session.run_sync(transcript.upsert_customer, telegram_user_id=MAYA, first_name="Maya")
        conversation = await session.run_sync(transcript.conversation_for_chat, chat_id=MAYA, customer=customer)
        await session.run_sync(transcript.queue_outgoing, conversation=conversation, text="hello", update_id=None)
        version = await session.run_sync(versions.register, Path("ccc.tar.gz"), "ccc", "ana")
        await session.run_sync(versions.put_version_live, version.id, "ana")
    figures = await sessions.read(read)
    assert (figures.outbox_pending, figures.oldest_pending_at, figures.live) == (1, START, (version.id, "ccc"))
    assert figures.trainings == {"ready": 1}


def _counted_in_a_worker(env: dict[str, str], messages: int) -> dict[str, float]:
    """A worker process counts `messages` updates and a handoff, then answers a scrape: what it says."""
    code = (
        "from bot import metrics; m = metrics.current(); "
        f"m.updates.labels('message').inc({messages}); m.handoff('asked'); print(metrics.counted().decode())"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=60)
    return {
        f"{sample.name}{sorted(sample.labels.items())}": sample.value
        for family in text_string_to_metric_families(done.stdout)
        for sample in family.samples
    }


def test_with_several_workers_a_scrape_sums_every_workers_counts(tmp_path: Path) -> None:
    """APP_WORKERS=2: a scrape reaches one worker of the two, and still counts what both did."""
    env = {**os.environ, **metrics.for_workers(tmp_path / "metrics")}
    first = _counted_in_a_worker(env, 3)
    second = _counted_in_a_worker(env, 4)
    assert first["frontline_updates_total[('kind', 'message')]"] == 3
    assert second["frontline_updates_total[('kind', 'message')]"] == 3 + 4
    assert second["frontline_handoffs_total[('reason', 'asked')]"] == 2
    fresh = metrics.for_workers(tmp_path / "metrics")  # a new start of the app forgets the last one's counts
    assert _counted_in_a_worker({**os.environ, **fresh}, 1)["frontline_updates_total[('kind', 'message')]"] == 1
