"""Group membership: getChatMember, chat_member and my_chat_member updates, and the service messages of joins."""

import pytest
from telegram import Bot, ChatMemberRestricted, Update
from telegram.error import Forbidden

from bot.emulator.client import EmulatorClient, EmulatorClientError

pytestmark = pytest.mark.asyncio
WITH_MEMBERS = [*Update.ALL_TYPES]  # as Frontline asks: chat_member included


async def agents_group(client: EmulatorClient, **extra: object) -> tuple[dict, dict, dict]:
    """The agents' group (the bot administers it), its owner and an agent."""
    owner = await client.add_user("Olga")
    agent = await client.add_user("Alex")
    group = await client.add_group(
        "Agents", owner_id=owner["id"], members=[agent["id"]], bot_rights={"can_manage_topics": True}, **extra
    )
    return group, owner, agent


async def test_members_come_and_go_as_getchatmember_shows(bot: Bot, client: EmulatorClient) -> None:
    group, owner, agent = await agents_group(client)
    newcomer = await client.add_user("Nina")

    async def status(user: dict) -> str:
        return (await bot.get_chat_member(group["id"], user["id"])).status

    assert await status(newcomer) == "left"
    await client.set_member(group["id"], newcomer["id"])
    assert await status(newcomer) == "member"
    await client.set_member(group["id"], newcomer["id"], admin=True)
    assert await status(newcomer) == "administrator"
    await client.set_member(group["id"], newcomer["id"], status="member")
    assert await status(newcomer) == "member"
    await client.kick(group["id"], agent["id"])
    assert await status(agent) == "kicked"
    with pytest.raises(EmulatorClientError):
        await client.send_text(agent["id"], "let me in", chat_id=group["id"])
    await client.set_member(group["id"], agent["id"])  # unbanned and added back
    assert await status(agent) == "member"
    await client.set_member(group["id"], agent["id"], member=False)
    assert await status(agent) == "left"
    with pytest.raises(EmulatorClientError):
        await client.set_member(group["id"], owner["id"], member=False)


async def test_restricted_members_keep_their_restrictions_when_they_leave(bot: Bot, client: EmulatorClient) -> None:
    group, _, agent = await agents_group(client)
    await client.restrict(group["id"], agent["id"], {"can_send_messages": False})
    member = await bot.get_chat_member(group["id"], agent["id"])
    assert isinstance(member, ChatMemberRestricted)
    assert member.is_member and not member.can_send_messages and not member.can_send_photos
    with pytest.raises(EmulatorClientError, match="restricted"):
        await client.send_text(agent["id"], "hello?", chat_id=group["id"])

    await client.set_member(group["id"], agent["id"], member=False)
    left = await bot.get_chat_member(group["id"], agent["id"])
    assert left.status == "restricted" and not left.is_member
    await client.restrict(group["id"], agent["id"], {"can_send_messages": True}, is_member=True)
    await client.send_text(agent["id"], "back", chat_id=group["id"])


async def test_chat_member_updates_only_when_asked_for(bot: Bot, client: EmulatorClient) -> None:
    group, owner, agent = await agents_group(client)
    await client.kick(group["id"], agent["id"])

    # By default Telegram sends no chat_member updates: only the service message of the removal.
    [update] = await bot.get_updates()
    assert update.message.left_chat_member.id == agent["id"]
    assert update.message.from_user.id == owner["id"]
    await bot.get_updates(offset=update.update_id + 1)

    newcomer = await client.add_user("Nina")
    await client.set_member(group["id"], newcomer["id"])
    changed, joined = await bot.get_updates(allowed_updates=WITH_MEMBERS)
    assert [user.id for user in joined.message.new_chat_members] == [newcomer["id"]]
    assert joined.message.from_user.id == newcomer["id"]  # joined by themself
    assert changed.chat_member.old_chat_member.status == "left"
    assert changed.chat_member.new_chat_member.status == "member"
    assert changed.chat_member.from_user.id == newcomer["id"]
    assert changed.chat_member.chat.id == group["id"]


async def test_no_chat_member_updates_where_the_bot_is_no_admin(bot: Bot, client: EmulatorClient) -> None:
    user = await client.add_user("Ann")
    group = await client.add_group("Customers")
    await bot.get_updates(allowed_updates=WITH_MEMBERS)
    await client.set_member(group["id"], user["id"])
    [update] = await bot.get_updates()
    assert update.message.new_chat_members[0].id == user["id"]


async def test_the_bots_own_status_comes_as_my_chat_member(bot: Bot, client: EmulatorClient) -> None:
    group, owner, agent = await agents_group(client)
    await client.set_bot_status(group["id"], "member")
    assert (await bot.get_chat_member(group["id"], bot.id)).status == "member"
    await client.set_bot_status(group["id"], "left", by=agent["id"])
    with pytest.raises(Forbidden, match="(?i)bot is not a member of the supergroup chat"):
        await bot.send_message(group["id"], "anyone?")
    sent = await client.send_text(agent["id"], "the bot is gone", chat_id=group["id"])
    assert sent["update_id"] is None  # nobody tells a bot about a group it left
    await client.set_bot_status(group["id"], "administrator", rights={"can_manage_topics": True})
    await client.set_bot_status(group["id"], "kicked")
    with pytest.raises(Forbidden, match="(?i)bot was kicked from the supergroup chat"):
        await bot.send_message(group["id"], "anyone?")

    demoted, removed, added, welcome, kicked = await bot.get_updates()
    assert demoted.my_chat_member.old_chat_member.status == "administrator"
    assert demoted.my_chat_member.new_chat_member.status == "member"
    assert demoted.my_chat_member.from_user.id == owner["id"]
    assert removed.my_chat_member.new_chat_member.status == "left"
    assert removed.my_chat_member.from_user.id == agent["id"]
    assert added.my_chat_member.new_chat_member.can_manage_topics
    assert welcome.message.new_chat_members[0].id == bot.id
    assert kicked.my_chat_member.new_chat_member.status == "kicked"
    assert (await bot.get_chat_member(group["id"], bot.id)).status == "kicked"


async def test_allowed_updates_set_by_set_webhook_stay_for_polling(bot: Bot, client: EmulatorClient) -> None:
    group, _, agent = await agents_group(client)
    assert await bot.set_webhook("https://frontline.example/telegram", allowed_updates=["chat_member"])
    assert await bot.delete_webhook()
    await client.kick(group["id"], agent["id"])
    [update] = await bot.get_updates()  # the service message is not a chat_member update
    assert update.chat_member.new_chat_member.status == "kicked"
