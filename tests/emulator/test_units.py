"""The emulator's parts without HTTP: formatting, flood limits, parameters, update queue."""

import pytest

from bot.emulator import control
from bot.emulator.entities import utf16_len
from bot.emulator.errors import ApiError, ControlError
from bot.emulator.limits import LimitConfig, RateLimiter
from bot.emulator.markup import format_text
from bot.emulator.markup_html import parse_html
from bot.emulator.markup_markdown import parse_markdown, parse_markdown_v2
from bot.emulator.media import image_size, photo_dimensions, placeholder_png
from bot.emulator.params import Params
from bot.emulator.state import EmulatorState


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entity(kind: str, offset: int, length: int, **extra: str) -> dict[str, object]:
    return {"type": kind, "offset": offset, "length": length, **extra}


def test_html_entities_use_utf16_offsets() -> None:
    parsed = parse_html('😀 <b>bold <i>both</i></b> &lt;x&gt; <a href="https://a.example/?q=1&amp;r=2">link</a>')
    assert parsed.text == "😀 bold both <x> link"
    assert utf16_len("😀") == 2
    assert sorted(parsed.entities, key=lambda item: item["offset"]) == [
        entity("bold", 3, 9),
        entity("italic", 8, 4),
        entity("text_link", 17, 4, url="https://a.example/?q=1&r=2"),
    ]


def test_html_pre_with_language_and_errors() -> None:
    parsed = parse_html('<pre><code class="language-python">print(1)</code></pre>')
    assert parsed.entities == [entity("pre", 0, 8, language="python")]
    for broken, message in (
        ("<b>open", "Can't find end tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("a < b", "Unsupported start tag"),
        ("<blink>x</blink>", 'Unsupported start tag "blink"'),
    ):
        with pytest.raises(ApiError, match=message):
            parse_html(broken)


def test_markdown_v2() -> None:
    parsed = parse_markdown_v2(r"*bold _nested_* __under__ `co\`de` [site](https://x.example/a\)b) 9\.90")
    assert parsed.text == "bold nested under co`de site 9.90"
    assert parsed.entities == [
        entity("italic", 5, 6),
        entity("bold", 0, 11),
        entity("underline", 12, 5),
        entity("code", 18, 5),
        entity("text_link", 24, 4, url="https://x.example/a)b"),
    ]
    quoted = parse_markdown_v2(">said\n>twice\nthen")
    assert (quoted.text, quoted.entities) == ("said\ntwice\nthen", [entity("blockquote", 0, 10)])
    with pytest.raises(ApiError, match="Character '.' is reserved"):
        parse_markdown_v2("Total 9.90")
    with pytest.raises(ApiError, match="Can't find end of Bold entity"):
        parse_markdown_v2("*open")


def test_legacy_markdown() -> None:
    parsed = parse_markdown("*bold* _it_ [a](https://a.example) 9.90")
    assert parsed.text == "bold it a 9.90"
    assert [item["type"] for item in parsed.entities] == ["bold", "italic", "text_link"]


def test_format_text_trims_and_detects_entities() -> None:
    source = "  /help@frontline_test_bot mail me@x.org or see https://x.org. #order @ann_lee "
    formatted = format_text(source, None, None)
    assert formatted.text.startswith("/help")
    assert [item["type"] for item in formatted.entities] == ["bot_command", "email", "url", "hashtag", "mention"]
    url = formatted.entities[2]
    assert formatted.text[url["offset"] : url["offset"] + url["length"]] == "https://x.org"


def test_private_bucket_retry_after_is_honest() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitConfig(private_burst=5, private_per_second=1.0), clock)
    assert all(limiter.acquire(1, is_private=True) is None for _ in range(5))
    assert limiter.acquire(1, is_private=True) == 1
    clock.now += 0.4
    assert limiter.acquire(1, is_private=True) == 1  # 0.6 s still missing
    clock.now += 0.6
    assert limiter.acquire(1, is_private=True) is None
    assert limiter.acquire(2, is_private=True) is None  # buckets are per chat


def test_group_window_and_global_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitConfig(group_per_minute=20, global_per_second=30), clock)
    for _ in range(20):
        assert limiter.acquire(-100, is_private=False) is None
        clock.now += 0.5
    assert limiter.acquire(-100, is_private=False) == 50  # first send leaves the window at t+60
    for chat_id in range(10, 40):
        limiter.acquire(chat_id, is_private=True)
    assert limiter.acquire(99, is_private=True) == 1
    assert RateLimiter(LimitConfig(enabled=False), clock).acquire(1, True) is None


def test_one_request_can_count_several_messages() -> None:
    clock = FakeClock()
    limiter = RateLimiter(LimitConfig(group_per_minute=20, private_burst=5, global_per_second=30), clock)
    assert limiter.acquire(-100, is_private=False, count=10) is None
    clock.now += 10
    assert limiter.acquire(-100, is_private=False, count=10) is None
    clock.now += 10
    assert limiter.acquire(-100, is_private=False) == 40  # all 20 used; the first 10 leave the window at t+60
    clock.now += 40
    assert limiter.acquire(-100, is_private=False, count=10) is None
    # An album larger than the private burst needs the full bucket, not more than it can ever hold.
    assert limiter.acquire(1, is_private=True, count=10) is None
    assert limiter.acquire(1, is_private=True) == 1
    clock.now += 4
    assert limiter.acquire(1, is_private=True, count=10) == 1
    clock.now += 1
    assert limiter.acquire(1, is_private=True, count=10) is None


def test_limit_config_updates() -> None:
    config = LimitConfig().updated({"private_burst": "3", "group_window": 2})
    assert (config.private_burst, config.group_window) == (3, 2.0)
    with pytest.raises(ValueError):
        LimitConfig().updated({"burst": 1})


def test_params_coerce_form_values() -> None:
    params = Params({"chat_id": "-1001", "flag": "true", "markup": '{"a": 1}', "text": "42", "bad": "x"})
    assert params.require_chat_id() == -1001
    assert params.get_bool("flag") is True
    assert params.get_json("markup") == {"a": 1}
    assert params.get_str("text") == "42"
    assert params.get_int("missing") is None
    with pytest.raises(ApiError, match="invalid bad"):
        params.get_int("bad")
    typed = Params({"chat_id": 5, "flag": False, "markup": {"a": 1}})
    assert (typed.require_chat_id(), typed.get_bool("flag", True), typed.get_json("markup")) == (5, False, {"a": 1})


def test_update_offsets_like_telegram() -> None:
    state = EmulatorState()
    user = control.add_user(state, {"first_name": "Ann"})
    ids = [control.inject_message(state, {"from_id": user["id"], "text": str(n)})["update_id"] for n in range(5)]
    state.confirm_updates(-2)
    assert [update["update_id"] for update in state.updates] == ids[-2:]
    state.confirm_updates(ids[-1])
    assert [update["update_id"] for update in state.updates] == ids[-1:]
    state.reset()
    control.add_user(state, {"id": 5, "first_name": "Bob"})
    later = control.inject_message(state, {"from_id": 5, "text": "hi"})["update_id"]
    assert later > ids[-1]


def test_control_rejects_impossible_actions() -> None:
    state = EmulatorState()
    ann = control.add_user(state, {"first_name": "Ann"})
    bob = control.add_user(state, {"first_name": "Bob"})
    group = control.add_group(state, {"title": "Team", "members": [ann["id"]]})
    with pytest.raises(ControlError):
        control.inject_message(state, {"from_id": ann["id"], "chat_id": bob["id"], "text": "hi"})
    with pytest.raises(ControlError):
        control.inject_message(state, {"from_id": bob["id"], "chat_id": group["id"], "text": "hi"})
    with pytest.raises(ControlError):
        control.add_group(state, {"title": "Forum", "type": "group", "is_forum": True})
    assert str(group["id"]).startswith("-100")


def test_photo_sizes_and_image_sniffing() -> None:
    assert image_size(placeholder_png(30, 20)) == (30, 20)
    assert photo_dimensions(2560, 1920) == [(90, 68), (320, 240), (800, 600), (1280, 960)]
    assert photo_dimensions(50, 40) == [(50, 40)]
