"""Run the Telegram Bot API emulator: `python -m bot.emulator --host 127.0.0.1 --port 8081`."""

import argparse
import asyncio
import logging
import signal

from bot.emulator.server import EmulatorServer
from bot.emulator.state import DEFAULT_BOT_NAME, DEFAULT_BOT_USERNAME, EmulatorState

logger = logging.getLogger("bot.emulator")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--bot-username", default=DEFAULT_BOT_USERNAME)
    parser.add_argument("--bot-name", default=DEFAULT_BOT_NAME)
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def _serve(arguments: argparse.Namespace) -> None:
    server = EmulatorServer(
        EmulatorState(bot_username=arguments.bot_username, bot_name=arguments.bot_name),
        access_log=arguments.access_log,
    )
    base_url = await server.start(arguments.host, arguments.port)
    logger.info("Telegram Bot API emulator on %s (PTB base_url %s)", base_url, server.bot_api_url)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    try:
        await stopping.wait()
    finally:
        await server.stop()
        logger.info("Telegram Bot API emulator stopped")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until SIGINT or SIGTERM."""
    arguments = _arguments(argv)
    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(arguments))


if __name__ == "__main__":
    main()
