"""The TUI's call for the setup benchmark: press `c` through Textual's Pilot, time to connected.

A process of its own, like the baseline, printing the same JSON milestones (`call` when `c` is
pressed, `connected` when the session enters that state, `first_frame`); the app runs headless
under Pilot (no terminal), with the real session and sound-device engine behind it:
    WESPOKE_API_KEY=KEY python -m tests.bench.tui_call --api-url URL --assistant-id ID
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from tests.bench.app_call import instrument_first_frame, mark
from wespoke_tui.events import CallState
from wespoke_tui.settings import Settings

CONNECT_TIMEOUT_S = 30.0


async def run(args: argparse.Namespace) -> int:
    from wespoke_tui.ui.app import build_app

    settings = Settings(
        api_key=args.api_key, assistant_id=args.assistant_id, api_url=args.api_url, lang="en", mic_consent_given=True,
        audio_engine=args.audio_engine,
    )
    app = build_app(settings)
    async with app.run_test(size=(110, 32)) as pilot:
        await pilot.pause()
        mark("call")
        await pilot.press("c")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_TIMEOUT_S
        while app.controller is None or app.controller.state != CallState.CONNECTED:
            if loop.time() > deadline or (app.controller is not None and app.controller.state == CallState.FAILED):
                mark("failed")
                return 1
            await asyncio.sleep(0.005)
        await asyncio.sleep(args.duration)
        await app.controller.hang_up()
        await pilot.pause()
    mark("ended")
    return 0


def instrument_connected() -> None:
    """Mark the moment the session itself enters `connected` (instrumentation only): the app's
    own loop may be busy painting then, so polling the state would measure the painting too."""
    from wespoke_tui.session import CallSession

    original = CallSession._set_state

    def set_state_and_mark(self: CallSession, state: CallState, error: Any = None) -> None:
        original(self, state, error)
        if state == CallState.CONNECTED:
            mark("connected")

    CallSession._set_state = set_state_and_mark  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tui_call", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-key", default=os.environ.get("WESPOKE_API_KEY"), help="default: $WESPOKE_API_KEY")
    parser.add_argument("--assistant-id", required=True)
    parser.add_argument("--duration", type=float, default=0.5)
    parser.add_argument("--audio-engine", choices=("native", "python"), default="python")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key or WESPOKE_API_KEY is required")
    instrument_first_frame()
    instrument_connected()
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
