"""The Rasa side of the tokens: `nlu.serve` starts Rasa with `--auth-token` from RASA_TOKEN, and the REST channel
(nlu/channel.py) takes its token from the credentials file and accepts only exactly that token (the end-to-end test
tests/e2e/test_tokens.py sends it requests over HTTP)."""

from __future__ import annotations

import sys

import rasa.__main__

from nlu import channel, serve


def _argv_given_to_rasa(monkeypatch, env_token: str | None, arguments: list[str]) -> list[str]:
    seen: list[list[str]] = []
    monkeypatch.setattr(rasa.__main__, "main", lambda: seen.append(list(sys.argv)))
    monkeypatch.setattr(serve, "install", lambda: None)
    if env_token is None:
        monkeypatch.delenv("RASA_TOKEN", raising=False)
    else:
        monkeypatch.setenv("RASA_TOKEN", env_token)
    serve.main(arguments)
    return seen[0]


def test_rasa_runs_with_the_token_from_the_environment(monkeypatch) -> None:
    argv = _argv_given_to_rasa(monkeypatch, "t" * 20, ["run", "--enable-api"])
    assert argv == ["rasa", "run", "--enable-api", "--auth-token=" + "t" * 20]
    assert _argv_given_to_rasa(monkeypatch, "t" * 20, ["train"]) == ["rasa", "train"]


def test_rasas_own_parser_reads_a_token_that_starts_with_a_dash(monkeypatch) -> None:
    # secrets.token_urlsafe starts with "-" one time in 64; as a separate argument argparse took it for an option
    # and `rasa run` exited with "argument -t/--auth-token: expected one argument".
    from rasa.__main__ import create_argument_parser

    token = "-Abc_def-ghi"
    argv = _argv_given_to_rasa(monkeypatch, token, ["run", "--enable-api"])
    parsed = create_argument_parser().parse_args(argv[1:])
    assert parsed.auth_token == token and parsed.enable_api


def test_the_channel_keeps_rasas_rest_paths_and_checks_its_token() -> None:
    rest = channel.TokenRestInput.from_credentials({"token": "s" * 20})
    assert rest.name() == "rest" and rest.url_prefix() == "rest"
    assert channel.accepts("Bearer " + "s" * 20, rest.token)
    assert not channel.accepts(None, rest.token)
    assert not channel.accepts("s" * 20, rest.token)
    assert not channel.accepts("Bearer " + "s" * 19, rest.token)
    assert not channel.accepts("Bearer ", channel.TokenRestInput.from_credentials(None).token)
