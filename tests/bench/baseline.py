"""The benchmark baseline: a voice call on the bare `livekit` SDK and nothing else.

It does the job wespoke-tui does with the least code the SDK allows, so the benchmark's ratios
show what wespoke-tui adds or saves: a token from the API with plain httpx, `Room.connect`,
the SDK's own sounddevice bridge `rtc.MediaDevices` with its defaults (100 ms blocks, APM with
echo cancellation, noise suppression, high-pass and auto gain on), the microphone published,
every remote audio track played through `MediaDevices.open_output()`. No UI, no meters.

Run as a process so its CPU and memory can be measured on their own:
    WESPOKE_API_KEY=KEY python -m tests.bench.baseline --api-url URL --assistant-id ID [--duration S]

It prints one JSON line per milestone on stdout, `{"event": name, "t": CLOCK_MONOTONIC s}`
(the clock is system-wide on Linux, so the benchmark compares it with its own):
`call` (the call action: just before the token request), `token`, `connected`, `published`,
`first_frame` (the first microphone frame handed to the published track's source),
`remote_track`, then `ended`. SIGTERM, SIGINT and SIGHUP disconnect before exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

import httpx
from livekit import rtc


def mark(event: str, **extra: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **extra}), flush=True)


async def fetch_token(api_url: str, api_key: str, assistant_id: str, origin: str | None) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {api_key}"}
    if origin:
        headers["Origin"] = origin
    async with httpx.AsyncClient(timeout=10.0) as http:
        answer = await http.post(
            f"{api_url.rstrip('/')}/api/v1/embed/token",
            json={"assistantId": assistant_id, "metadata": {}},
            headers=headers,
        )
    answer.raise_for_status()
    data = answer.json()["data"]
    return data["url"], data["token"]


async def run_call(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)

    devices = rtc.MediaDevices(loop=loop)
    room = rtc.Room(loop=loop)

    mark("call")
    url, token = await fetch_token(args.api_url, args.api_key, args.assistant_id, args.origin)
    mark("token")
    capture = devices.open_input(enable_aec=not args.no_aec)
    player = devices.open_output()  # after the input: it feeds the input's APM the reverse stream

    # Instrumentation only: note when the first microphone frame reaches the published source.
    published = asyncio.Event()
    first_frame_seen = asyncio.Event()
    capture_frame = capture.source.capture_frame

    async def capture_and_mark(frame: rtc.AudioFrame) -> None:
        await capture_frame(frame)
        if not first_frame_seen.is_set() and published.is_set():
            first_frame_seen.set()
            mark("first_frame")

    capture.source.capture_frame = capture_and_mark  # type: ignore[method-assign]

    playing: set[asyncio.Future[None]] = set()  # referenced until done, or the loop may drop them

    @room.on("track_subscribed")
    def on_track(track: rtc.Track, _pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            mark("remote_track")
            task = asyncio.ensure_future(player.add_track(track))
            playing.add(task)
            task.add_done_callback(playing.discard)

    try:
        await room.connect(url, token)
        mark("connected")
        track = rtc.LocalAudioTrack.create_audio_track("microphone", capture.source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        await room.local_participant.publish_track(track, options)
        published.set()
        mark("published")
        await player.start()
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration)
        except asyncio.TimeoutError:
            pass
    finally:
        await room.disconnect()
        await capture.aclose()
        await player.aclose()
        mark("ended")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-key", default=os.environ.get("WESPOKE_API_KEY"), help="default: $WESPOKE_API_KEY")
    parser.add_argument("--assistant-id", required=True)
    parser.add_argument("--origin")
    parser.add_argument("--duration", type=float, default=None, help="seconds in the call (default: until a signal)")
    parser.add_argument("--no-aec", action="store_true", help="open the microphone with enable_aec=False")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key or WESPOKE_API_KEY is required")
    try:
        asyncio.run(run_call(args))
    except (httpx.HTTPError, KeyError, rtc.ConnectError) as exc:
        print(f"baseline: call failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
