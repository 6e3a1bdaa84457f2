"""What the tests' users do through the control API: write, send files and albums, edit, press buttons."""

import base64
from collections.abc import Iterable
from typing import Any

JSON = dict[str, Any]


def without_none(values: JSON) -> JSON:
    """The fields that have a value."""
    return {key: value for key, value in values.items() if value is not None}


class UserActions:
    """The user side of `EmulatorClient`; every method returns what the control API answered."""

    async def _request(self, method: str, path: str, body: JSON | None = None, query: JSON | None = None) -> JSON:
        raise NotImplementedError

    async def send_text(
        self,
        from_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        """A user sends a text; returns `{update_id, message}`."""
        return await self.send_media(
            from_id,
            "text",
            text=text,
            chat_id=chat_id,
            message_thread_id=message_thread_id,
            reply_to_message_id=reply_to_message_id,
        )

    async def send_media(
        self,
        from_id: int,
        kind: str,
        *,
        chat_id: int | None = None,
        caption: str | None = None,
        content: bytes | None = None,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        **options: Any,
    ) -> JSON:
        """A user sends a photo, voice, sticker, document, video, location or contact."""
        # `options` carry the kind's details: file_name, mime_type, duration,
        # emoji, latitude/longitude, contact.
        body = {
            "from_id": from_id,
            "chat_id": chat_id,
            "kind": kind,
            "caption": caption,
            "content_base64": base64.b64encode(content).decode() if content is not None else None,
            "message_thread_id": message_thread_id,
            "reply_to_message_id": reply_to_message_id,
            **options,
        }
        return await self._request("POST", "messages", without_none(body))

    async def edit(self, chat_id: int, message_id: int, text: str) -> JSON:
        """A user edits their message; returns `{update_id, message}`."""
        body = {"chat_id": chat_id, "message_id": message_id, "text": text}
        return await self._request("POST", "edits", body)

    async def edit_caption(self, chat_id: int, message_id: int, caption: str) -> JSON:
        """A user edits the caption of their photo, video, file… ("" removes it); returns `{update_id, message}`."""
        body = {"chat_id": chat_id, "message_id": message_id, "caption": caption}
        return await self._request("POST", "edits", body)

    async def press(
        self, from_id: int, message_id: int, data: str, *, chat_id: int | None = None, forged: bool = False
    ) -> JSON:
        """A user presses an inline button (forged: data that is on no button, as a tampered client sends)."""
        body = {"from_id": from_id, "chat_id": chat_id, "message_id": message_id, "data": data, "force": forged or None}
        return await self._request("POST", "callbacks", without_none(body))

    # `where` below: chat_id (default: the user's private chat), message_thread_id, reply_to_message_id.

    async def send_document(
        self,
        from_id: int,
        content: bytes | None = None,
        *,
        file_name: str = "document.pdf",
        mime_type: str | None = None,
        caption: str | None = None,
        **where: int | None,
    ) -> JSON:
        """A user sends a file (its MIME type guessed from the name unless given); returns `{update_id, message}`."""
        options = without_none({"file_name": file_name, "mime_type": mime_type})
        return await self.send_media(from_id, "document", content=content, caption=caption, **options, **where)

    async def send_voice(
        self,
        from_id: int,
        content: bytes | None = None,
        *,
        duration: int = 3,
        caption: str | None = None,
        **where: int | None,
    ) -> JSON:
        """A user sends a voice note; returns `{update_id, message}`."""
        return await self.send_media(from_id, "voice", content=content, caption=caption, duration=duration, **where)

    async def send_video(
        self,
        from_id: int,
        content: bytes | None = None,
        *,
        duration: int = 3,
        caption: str | None = None,
        **where: int | None,
    ) -> JSON:
        """A user sends a video; returns `{update_id, message}`."""
        return await self.send_media(from_id, "video", content=content, caption=caption, duration=duration, **where)

    async def send_audio(
        self,
        from_id: int,
        content: bytes | None = None,
        *,
        file_name: str = "track.mp3",
        duration: int = 3,
        caption: str | None = None,
        **where: int | None,
    ) -> JSON:
        """A user sends a music file; returns `{update_id, message}`."""
        return await self.send_media(
            from_id, "audio", content=content, caption=caption, file_name=file_name, duration=duration, **where
        )

    async def send_location(self, from_id: int, latitude: float, longitude: float, **where: int | None) -> JSON:
        """A user shares a location; returns `{update_id, message}`."""
        return await self.send_media(from_id, "location", latitude=latitude, longitude=longitude, **where)

    async def send_contact(
        self,
        from_id: int,
        phone_number: str,
        first_name: str,
        *,
        last_name: str | None = None,
        user_id: int | None = None,
        **where: int | None,
    ) -> JSON:
        """A user shares a contact (a Telegram user's when user_id is given); returns `{update_id, message}`."""
        contact = without_none(
            {"phone_number": phone_number, "first_name": first_name, "last_name": last_name, "user_id": user_id}
        )
        return await self.send_media(from_id, "contact", contact=contact, **where)

    async def send_album(self, from_id: int, items: Iterable[JSON], **where: int | None) -> JSON:
        """A user sends 2–10 photos and videos, documents or audio files as one album.

        Each item is `{kind, caption?, content?: bytes, file_name?, mime_type?, duration?, ...}`. The bot gets one
        `message` update per item, all with the same `media_group_id`; returns `{update_ids, messages,
        media_group_id}`.
        """
        encoded = []
        for item in items:
            content = item.get("content")
            item = {key: value for key, value in item.items() if key != "content"}
            if content is not None:
                item["content_base64"] = base64.b64encode(content).decode()
            encoded.append(item)
        body = without_none({"from_id": from_id, "items": encoded, **where})
        return await self._request("POST", "albums", body)

    async def topic_action(
        self,
        from_id: int,
        chat_id: int,
        action: str,
        *,
        message_thread_id: int | None = None,
        name: str | None = None,
        icon_color: int | None = None,
    ) -> JSON:
        """An administrator creates, edits (renames), closes or reopens a forum topic in Telegram's app; the bot
        gets the service message. Returns `{update_id, message, topic}`."""
        body = {
            "from_id": from_id,
            "chat_id": chat_id,
            "action": action,
            "message_thread_id": message_thread_id,
            "name": name,
            "icon_color": icon_color,
        }
        return await self._request("POST", "topics", without_none(body))
