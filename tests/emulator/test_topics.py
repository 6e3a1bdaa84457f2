"""Forum topics: who may write in a closed topic, the service messages topics post, and their flood-limit cost."""

import pytest
from telegram import Bot
from telegram.error import BadRequest, RetryAfter

from bot.emulator.client import EmulatorClient, EmulatorClientError

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
]
TOPIC_RIGHTS = {"can_manage_topics": True}


async def desk(client: EmulatorClient) -> tuple[dict, dict, dict]:
    """A forum the bot runs topics in, with an administrator and an agent who is a plain member."""
    admin = await client.add_user("Olga")
    agent = await client.add_user("Alex")
    forum = await client.add_group(
        "Agents", is_forum=True, admins=[admin["id"]], members=[agent["id"]], bot_rights=TOPIC_RIGHTS
    )
    return forum, admin, agent


async def test_only_administrators_write_in_a_closed_topic(bot: Bot, client: EmulatorClient) -> None:
    forum, admin, agent = await desk(client)
    topic = await bot.create_forum_topic(forum["id"], "Ann #1")
    thread = topic.message_thread_id
    question = await client.send_text(agent["id"], "Who has this?", chat_id=forum["id"], message_thread_id=thread)
    assert await bot.close_forum_topic(forum["id"], thread)

    with pytest.raises(EmulatorClientError, match="closed") as refused:
        await client.send_text(agent["id"], "Me!", chat_id=forum["id"], message_thread_id=thread)
    assert refused.value.status == 403
    with pytest.raises(EmulatorClientError, match="closed"):  # replying to a message there is writing there
        await client.send_text(
            agent["id"], "Me!", chat_id=forum["id"], reply_to_message_id=question["message"]["message_id"]
        )
    await client.send_text(admin["id"], "Closed: done.", chat_id=forum["id"], message_thread_id=thread)
    # The bot administers the group with can_manage_topics, so it still writes there.
    await bot.send_message(forum["id"], "Ticket closed", message_thread_id=thread)

    await client.set_bot_status(forum["id"], "administrator", rights={"can_delete_messages": True})
    with pytest.raises(BadRequest, match="(?i)TOPIC_CLOSED"):
        await bot.send_message(forum["id"], "Late", message_thread_id=thread)
    with pytest.raises(BadRequest, match="(?i)TOPIC_CLOSED"):
        await bot.send_chat_action(forum["id"], "typing", message_thread_id=thread)
    await client.set_bot_status(forum["id"], "administrator", rights=TOPIC_RIGHTS)
    assert await bot.reopen_forum_topic(forum["id"], thread)
    await client.send_text(agent["id"], "Me, now", chat_id=forum["id"], message_thread_id=thread)
    with pytest.raises(BadRequest, match="(?i)TOPIC_NOT_MODIFIED"):
        await bot.reopen_forum_topic(forum["id"], thread)


async def test_topic_changes_are_service_messages_in_the_topic(bot: Bot, client: EmulatorClient) -> None:
    forum, _, _ = await desk(client)
    topic = await bot.create_forum_topic(forum["id"], "Ann #1")
    thread = topic.message_thread_id
    other = await bot.create_forum_topic(forum["id"], "Bob #2")
    await bot.send_message(forum["id"], "New ticket", message_thread_id=thread)
    assert await bot.edit_forum_topic(forum["id"], thread, name="Ann #1 (waiting)")
    assert await bot.close_forum_topic(forum["id"], thread)
    assert await bot.reopen_forum_topic(forum["id"], thread)

    history = await client.history(forum["id"], message_thread_id=thread)
    events = [next(key for key in message if key.startswith("forum_topic") or key == "text") for message in history]
    assert events == ["forum_topic_created", "text", "forum_topic_edited", "forum_topic_closed", "forum_topic_reopened"]
    assert history[0]["message_id"] == thread and history[0]["forum_topic_created"]["name"] == "Ann #1"
    assert history[2]["forum_topic_edited"] == {"name": "Ann #1 (waiting)"}
    assert all(message["from"]["id"] == bot.id and message["message_thread_id"] == thread for message in history)
    everything = await client.history(forum["id"])
    assert len(everything) == len(history) + 1 and other.message_thread_id in [m["message_id"] for m in everything]
    # The sent log keeps what the bot sent, not the service messages.
    assert [entry["text"] for entry in (await client.sent(chat_id=forum["id"])).messages] == ["New ticket"]


async def test_topic_service_messages_count_toward_the_group_limit(bot: Bot, client: EmulatorClient) -> None:
    forum, _, agent = await desk(client)
    await client.set_limits(group_per_minute=5)
    topic = await bot.create_forum_topic(forum["id"], "Ann #1")
    thread = topic.message_thread_id
    await bot.edit_forum_topic(forum["id"], thread, name="Ann #1 (waiting)")
    await bot.close_forum_topic(forum["id"], thread)
    await bot.reopen_forum_topic(forum["id"], thread)
    await bot.send_message(forum["id"], "Five messages in a minute", message_thread_id=thread)

    for attempt in (
        bot.send_message(forum["id"], "one too many", message_thread_id=thread),
        bot.create_forum_topic(forum["id"], "Bob #2"),
        bot.close_forum_topic(forum["id"], thread),
        bot.edit_forum_topic(forum["id"], thread, name="renamed"),
    ):
        with pytest.raises(RetryAfter):
            await attempt
    # Refused changes change nothing.
    history = await client.history(forum["id"])
    assert len(history) == 5
    assert all("forum_topic_created" not in message or message["message_id"] == thread for message in history)
    # People are not held to the bot's limit.
    await client.send_text(agent["id"], "still here", chat_id=forum["id"], message_thread_id=thread)


async def test_administrators_handle_topics_in_the_app(bot: Bot, client: EmulatorClient) -> None:
    forum, admin, agent = await desk(client)
    topic = await bot.create_forum_topic(forum["id"], "Ann #1")
    thread = topic.message_thread_id
    closed = await client.topic_action(admin["id"], forum["id"], "close", message_thread_id=thread)
    assert closed["topic"]["is_closed"] and closed["message"]["forum_topic_closed"] == {}
    with pytest.raises(BadRequest, match="(?i)TOPIC_NOT_MODIFIED"):
        await bot.close_forum_topic(forum["id"], thread)
    renamed = await client.topic_action(admin["id"], forum["id"], "edit", message_thread_id=thread, name="Ann")
    created = await client.topic_action(admin["id"], forum["id"], "create", name="Internal")
    with pytest.raises(EmulatorClientError, match="not an administrator"):
        await client.topic_action(agent["id"], forum["id"], "reopen", message_thread_id=thread)

    updates = await bot.get_updates()
    assert [update.update_id for update in updates] == [closed["update_id"], renamed["update_id"], created["update_id"]]
    assert updates[0].message.forum_topic_closed is not None
    assert updates[0].message.from_user.id == admin["id"] and updates[0].message.message_thread_id == thread
    assert updates[1].message.forum_topic_edited.name == "Ann"
    assert updates[2].message.forum_topic_created.name == "Internal"
    assert updates[2].message.message_thread_id == created["topic"]["message_thread_id"]
    await bot.send_message(forum["id"], "in the new topic", message_thread_id=created["topic"]["message_thread_id"])
