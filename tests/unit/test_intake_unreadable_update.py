"""An update python-telegram-bot cannot read must not stop the app from fetching the next ones.

Kept apart from the fuzzing (tests/unit/test_fuzz_inbound.py), whose app must keep its intake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.storage import inbox
from tests.unit.chat_harness import running_harness


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_one_update_the_library_cannot_read_does_not_stop_the_intake(tmp_path: Path) -> None:
    # A poll without allows_revoting and members_only, which this python-telegram-bot requires (Bot API 9.6, 10.0).
    unreadable = {
        "id": "1",
        "question": "q",
        "options": [],
        "total_voter_count": 0,
        "is_closed": True,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
    }
    async with running_harness(tmp_path) as harness:
        await harness.emulator.inject_update("poll", unreadable)
        assert (await harness.say("still there?", timeout=8))[-1]["text"] == "echo: still there?"
        async with harness.sessions() as session:
            assert await session.run_sync(inbox.pending) == []  # kept, marked done, not handled again after a restart
