"""Typed access to Bot API request parameters, whatever encoding they arrived in."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.emulator.errors import bad_request

ATTACH_PREFIX = "attach://"


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


class Params:
    """Request parameters coerced on read, as Telegram does with form fields."""

    # Form and query values are strings (PTB sends non-string values JSON-encoded)
    # while JSON bodies carry typed values, so every getter accepts both.

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, Upload] | None = None) -> None:
        self._values = dict(values)
        self._uploads = dict(uploads or {})

    def nested(self, values: Mapping[str, Any]) -> "Params":
        """An object inside this request (an InputMedia) read as parameters, its `attach://` files from this one."""
        return Params(values, self._uploads)

    def has(self, name: str) -> bool:
        """Whether the parameter was given with a non-empty value."""
        return self._values.get(name) not in (None, "") or name in self._uploads

    def given(self, name: str) -> bool:
        """Whether the parameter was given at all, even empty."""
        return name in self._values or name in self._uploads

    def get_str(self, name: str) -> str | None:
        """The parameter as a string; numbers are rendered as Telegram would."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            return str(value)
        raise bad_request(f"can't parse {name} as string")

    def get_int(self, name: str) -> int | None:
        """The parameter as an integer, or None when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified")

    def require_int(self, name: str) -> int:
        """The parameter as an integer, else `... is empty`."""
        value = self.get_int(name)
        if value is None:
            raise bad_request(f"{name} is empty")
        return value

    def get_float(self, name: str) -> float | None:
        """The parameter as a float, or None when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        """The parameter as a boolean (`true`/`false`/`1`/`0` in forms)."""
        value = self._values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)

    def get_json(self, name: str) -> Any:
        """The parameter as a JSON value; strings are decoded as PTB encodes objects."""
        value = self._values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None

    def require_chat_id(self, name: str = "chat_id") -> int | str:
        """A chat id: an integer or an `@username`."""
        value = self.get_str(name)
        if not value:
            raise bad_request(f"{name} is empty")
        if value.startswith("@"):
            return value
        try:
            return int(value.strip())
        except ValueError:
            raise bad_request("chat not found") from None

    def upload(self, name: str) -> Upload | None:
        """The file uploaded for a parameter, directly or through `attach://<part>`."""
        if name in self._uploads:
            return self._uploads[name]
        value = self._values.get(name)
        if isinstance(value, str) and value.startswith(ATTACH_PREFIX):
            part = value[len(ATTACH_PREFIX) :]
            if part not in self._uploads:
                raise bad_request(f"file must be uploaded as a part named {part}")
            return self._uploads[part]
        return None

    def loggable(self) -> dict[str, Any]:
        """The parameters as JSON-safe data, uploads summarised."""
        logged: dict[str, Any] = dict(self._values)
        for name, upload in self._uploads.items():
            logged[name] = {
                "filename": upload.filename,
                "content_type": upload.content_type,
                "size": len(upload.data),
            }
        return logged
