"""The bare-SDK floor: what the `livekit` SDK alone costs for a call's audio, with nothing else.

A token from the API with plain httpx, `Room.connect`, one 48 kHz mono `AudioSource` published
as `microphone` and fed speech-like audio generated in memory at real time, and every remote
audio track read through `rtc.AudioStream` and thrown away. No sound devices, no APM, no
meters, no UI: the least any client of this SDK can spend, so the benchmark can say how much
each subject adds above it.

    WESPOKE_API_KEY=KEY python -m tests.bench.floor --api-url URL --assistant-id ID [--frame-ms 10|20]

It prints the same JSON milestones as `tests/bench/baseline.py` (`call`, `connected`,
`first_frame`, `remote_track`, `ended`; CLOCK_MONOTONIC seconds). SIGTERM, SIGINT and SIGHUP
disconnect before exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import httpx
import numpy as np
from livekit import rtc

from tests.bench.baseline import fetch_token, mark

RATE = 48_000


def speech_like(seconds: float) -> np.ndarray:
    """Voiced syllables and pauses, as `tests.bench.subjects.talk_wav` plays into the rig's mic.

    Made a second at a time: in one go its float64 intermediates peak at about 40 MB for 8 s,
    which would stay in the floor's peak RSS (VmHWM) and misstate what the SDK itself holds.
    """
    total = int(seconds * RATE)
    out = np.empty(total, dtype=np.int16)
    phase_at = 0.0  # the pitch glide's phase carried from one second into the next
    for start in range(0, total, RATE):
        t = np.arange(start, min(total, start + RATE)) / RATE
        pitch = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
        phase = phase_at + 2 * np.pi * np.cumsum(pitch) / RATE
        phase_at = float(phase[-1])
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) * (np.sin(2 * np.pi * 0.25 * t) > -0.3)
        out[start : start + t.size] = np.round(voice * syllables * 6000)
    return out


async def feed(source: rtc.AudioSource, frame_ms: int, stop: asyncio.Event) -> None:
    """Real-time pacing by the loop clock, one frame per period, as a device callback would."""
    samples = RATE * frame_ms // 1000
    audio = speech_like(8.0)
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    position = 0
    first = True
    while not stop.is_set():
        if position + samples > audio.size:
            position = 0
        chunk = audio[position : position + samples]
        position += samples
        await source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, samples))
        if first:
            first = False
            mark("first_frame")
        next_at += frame_ms / 1000
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def drain(track: rtc.Track) -> None:
    async for _event in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
        pass


async def run_call(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    room = rtc.Room(loop=loop)
    readers: set[asyncio.Task[None]] = set()

    @room.on("track_subscribed")
    def on_track(track: rtc.Track, _pub: rtc.RemoteTrackPublication, _p: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            mark("remote_track")
            task = loop.create_task(drain(track))
            readers.add(task)
            task.add_done_callback(readers.discard)

    mark("call")
    url, token = await fetch_token(args.api_url, args.api_key, args.assistant_id, None)
    source = rtc.AudioSource(RATE, 1, queue_size_ms=50)
    try:
        await room.connect(url, token)
        mark("connected")
        track = rtc.LocalAudioTrack.create_audio_track("microphone", source)
        await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        feeder = loop.create_task(feed(source, args.frame_ms, stop))
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration)
        except asyncio.TimeoutError:
            stop.set()
        await feeder
    finally:
        await room.disconnect()
        for task in list(readers):
            task.cancel()
        await source.aclose()
        mark("ended")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floor", description=__doc__.splitlines()[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--api-key", default=os.environ.get("WESPOKE_API_KEY"), help="default: $WESPOKE_API_KEY")
    parser.add_argument("--assistant-id", required=True)
    parser.add_argument("--duration", type=float, default=None, help="seconds in the call (default: until a signal)")
    parser.add_argument("--frame-ms", type=int, choices=(10, 20), default=10, help="frame size handed to the SDK")
    args = parser.parse_args(argv)
    if not args.api_key:
        parser.error("--api-key or WESPOKE_API_KEY is required")
    try:
        asyncio.run(run_call(args))
    except (httpx.HTTPError, KeyError, rtc.ConnectError) as exc:
        print(f"floor: call failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
