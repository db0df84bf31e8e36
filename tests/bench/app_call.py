"""wespoke-tui's call in a process of its own, instrumented like the baseline, for the benchmark.

It drives `CallSession` on the sound-device engine exactly as `wespoke-tui call --no-tui`
does, and prints the same JSON milestones as `tests/bench/baseline.py` (`call`, `connected`,
`first_frame`, `ended`, CLOCK_MONOTONIC seconds), plus one `health` line per `AudioHealth`
event, so the two are measured the same way; `published` when the microphone's track is (on the
native engine no Python hands frames over: the module sends them once the track is published):
    WESPOKE_API_KEY=KEY python -m tests.bench.app_call --api-url URL --assistant-id ID [--duration S]
        [--audio-engine native|python] [--no-aec] [--no-ns] [--no-agc]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from typing import Any

from livekit import rtc

from wespoke_tui.events import AudioHealth, CallState, ErrorEvent, StateChanged
from wespoke_tui.settings import Settings


def mark(event: str, **extra: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **extra}), flush=True)


def instrument_first_frame() -> None:
    """Mark when the first microphone frame has been handed to a published track's source.

    The session creates its `AudioSource` right before publishing and starts the mic pump after,
    so the first `capture_frame` that returns is the first frame sent (instrumentation only).
    """
    original = rtc.AudioSource.capture_frame
    seen = False

    async def capture_and_mark(self: rtc.AudioSource, frame: rtc.AudioFrame) -> None:
        nonlocal seen
        await original(self, frame)
        if not seen:
            seen = True
            mark("first_frame")

    rtc.AudioSource.capture_frame = capture_and_mark  # type: ignore[method-assign]
    publish = rtc.LocalParticipant.publish_track

    async def publish_and_mark(self: rtc.LocalParticipant, track: Any, *args: Any, **kwargs: Any) -> Any:
        publication = await publish(self, track, *args, **kwargs)
        if isinstance(track, rtc.LocalAudioTrack):
            mark("published")
        return publication

    rtc.LocalParticipant.publish_track = publish_and_mark  # type: ignore[method-assign]


async def run_call(args: argparse.Namespace) -> int:
    from wespoke_tui.audio.engine import device_backend
    from wespoke_tui.session import CallSession

    settings = Settings(
        api_key=args.api_key, assistant_id=args.assistant_id, api_url=args.api_url, aec=not args.no_aec,
        noise_suppression=not args.no_ns, auto_gain=not args.no_agc, lang="en", audio_engine=args.audio_engine,
    )
    session = CallSession(settings, lambda: device_backend(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    failed = False

    async def consume() -> None:
        nonlocal failed
        async for event in session.events():
            if isinstance(event, StateChanged):
                mark("state", state=event.state.value)
                if event.state == CallState.CONNECTED:
                    mark("connected")
                if event.state == CallState.FAILED:
                    failed = True
                    stop.set()
            elif isinstance(event, AudioHealth):
                mark("health", **dataclasses.asdict(event))
            elif isinstance(event, ErrorEvent):
                mark("error", code=event.error.code, fatal=event.fatal)

    consumer = loop.create_task(consume())
    mark("call")
    await session.start()
    if session.state == CallState.CONNECTED:
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration)
        except asyncio.TimeoutError:
            pass
    await session.aclose()
    await asyncio.wait_for(consumer, 5.0)
    mark("ended")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app_call", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-key", default=os.environ.get("WESPOKE_API_KEY"), help="default: $WESPOKE_API_KEY")
    parser.add_argument("--assistant-id", required=True)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--no-aec", action="store_true")
    parser.add_argument("--no-ns", action="store_true")
    parser.add_argument("--no-agc", action="store_true")
    parser.add_argument("--audio-engine", choices=("native", "python"), default="python")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key or WESPOKE_API_KEY is required")
    instrument_first_frame()
    return asyncio.run(run_call(args))


if __name__ == "__main__":
    sys.exit(main())
