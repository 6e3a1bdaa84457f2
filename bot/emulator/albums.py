"""Albums (media groups): which media may share one, and their ids."""

from bot.emulator.state import EmulatorState

ALBUM_KINDS = ("photo", "video", "document", "audio")
MAX_ALBUM_ITEMS = 10
_MEDIA_GROUP_ID_BASE = 13_000_000_000_000_000


def album_problem(kinds: list[str]) -> str | None:
    """Why these kinds cannot form one album, in Telegram's words, or None if they can.

    Photos and videos mix; documents go only with documents and audio files only with audio files.
    """
    if not kinds:
        return "there are no messages to send"
    if len(kinds) > MAX_ALBUM_ITEMS:
        return "too many messages to send as an album"
    for kind in kinds:
        if kind == "animation":
            return "can't parse InputMedia: type \"animation\" can't be used in sendMediaGroup"
        if kind not in ALBUM_KINDS:
            return f'can\'t parse InputMedia: type "{kind}" is unsupported'
    for alone in ("document", "audio"):
        if alone in kinds and any(kind != alone for kind in kinds):
            return f"{alone} can't be mixed with other media types"
    return None


def new_media_group_id(state: EmulatorState) -> str:
    """A new album's media_group_id: a decimal string, as Telegram gives."""
    return str(_MEDIA_GROUP_ID_BASE + state.next_id("media_group"))
