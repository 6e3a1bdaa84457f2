"""`rasa run`, with a pulled model loaded beside the one serving instead of in its place (runs in `.venv-rasa`).

Rasa 3.6 loads a model it pulls from the model server on its event loop: every conversation waits until the
new model is loaded (about 7 s for this pipeline on 2 busy cores, measured by `make bench-deploy`). Here the
pull stays Rasa's own, and the load runs in a worker thread while the running model keeps answering; the new
model replaces it in one assignment once it is whole. A model that fails to load leaves the running one in
place, as Rasa does.

    python -m nlu.serve run --enable-api ...    (the arguments of `rasa`; with RASA_TOKEN, also --auth-token)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

log = logging.getLogger("nlu.serve")


async def update_model_beside(model_server: Any, agent: Any) -> None:
    """Pull the model if the server has a new one, then load it off the event loop."""
    from rasa.core import agent as rasa_agent
    from rasa.nlu.utils import is_url
    from rasa.utils.common import TempDirectoryPath, get_temp_dir_name

    if not is_url(model_server.url):
        raise ValueError(f"the model server's URL is not a URL: {model_server.url}")
    with TempDirectoryPath(get_temp_dir_name()) as folder:
        try:
            fingerprint = await rasa_agent._pull_model_and_fingerprint(model_server, agent.fingerprint, folder)
            if not fingerprint:
                return
            log.info("loading model %s beside the one serving", fingerprint)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.to_thread(rasa_agent._load_and_set_updated_model, agent, folder, fingerprint)
            log.info("model %s serving (loaded in %.1f s)", fingerprint, loop.time() - started)
        except Exception:  # Rasa's behaviour: keep the model that runs
            log.exception("the pulled model could not be loaded; the previous model stays")


def compact_nlg_request(utter_action: str, tracker: Any, output_channel: str, **kwargs: Any) -> dict[str, Any]:
    """Rasa's NLG request with the tracker cut to what the app's NLG endpoint reads (its slots). Rasa would send
    every event of the session, with each message's full intent ranking, for every response: its size grows with
    the conversation, and serialising and reading it was a fifth of the app's CPU time in a long one."""
    response_id = kwargs.pop("response_id", None)
    return {
        "response": utter_action,
        "id": response_id,
        "arguments": kwargs,
        "tracker": {"sender_id": tracker.sender_id, "slots": tracker.current_slot_values()},
        "channel": {"name": output_channel},
    }


def install() -> None:
    """Make Rasa's model pulling (at start and every interval) load models in a thread, and its NLG requests
    carry the slots only."""
    from rasa.core import agent as rasa_agent
    from rasa.core.nlg import callback

    rasa_agent._update_model_from_server = update_model_beside
    callback.nlg_request_format = compact_nlg_request
    # The loading thread holds the GIL for up to this long at a time; short turns keep the serving loop responsive.
    sys.setswitchinterval(0.001)


def main(argv: list[str] | None = None) -> None:
    install()
    from rasa.__main__ import main as rasa_main

    arguments = list(sys.argv[1:] if argv is None else argv)
    token = os.environ.get("RASA_TOKEN")
    if token and arguments[:1] == ["run"]:
        # Rasa's HTTP API answers only with the token; given here, it stays out of the process list. One argument
        # with "=": a generated token may start with "-", which argparse would take for an option of its own.
        arguments += [f"--auth-token={token}"]
    sys.argv = ["rasa", *arguments]
    rasa_main()


if __name__ == "__main__":
    main()
