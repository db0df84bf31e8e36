"""A private PulseAudio server with null sinks: real, real-time sound devices without a sound card.

Layout (see DESIGN.md, "Audio devices"):
- sink `micfeed` (48 kHz): tests play WAVs into it; its monitor, remapped as source `mic`, is the
  default microphone;
- sink `speaker` (48 kHz): the default output; tests record `speaker.monitor`;
- ALSA's default PCM is `type pulse` (in the rig's own ALSA config file), so PortAudio's ALSA
  host API reaches the rig. Named PCMs `rig_mic`, `rig_speaker` and `rig_missing` are defined
  too, for device selection by name and for a device that cannot be opened.

Nothing depends on the machine's own sound settings: HOME, XDG_RUNTIME_DIR, PULSE_SERVER and
ALSA_CONFIG_PATH all point into the rig's temporary directory.

On a busy machine the rig's own parts must not be what glitches, and what does glitch must be
counted, so a test can tell the engine's faults from the load's:
- the microphone is fed by the server itself (`pactl upload-sample` + `play-sample`), from its
  real-time sink thread, not by a client process that can starve;
- the speaker is recorded by `parec`, whose server-side queue holds 40 s, so a starved `parec`
  loses nothing;
- the server logs (debug level, with times) every underrun of every playback stream, e.g. of the
  engine's output stream when its callback came too late, and every stream it creates;
  `events()` reads them back in this process's clock (`time.monotonic()`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 48_000

# ALSA's global config plus ours: the `pulse` plugin as default and named PCMs for the tests.
RIG_ALSA_PCMS = """\
pcm.!default { type pulse hint { show on description "rig default (PulseAudio)" } }
ctl.!default { type pulse }
pcm.rig_mic { type pulse device "mic" hint { show on description "rig microphone" } }
pcm.rig_speaker { type pulse device "speaker" hint { show on description "rig speaker" } }
pcm.rig_missing { type pulse device "no_such_source" hint { show on description "missing" } }
"""


class PulseRigError(RuntimeError):
    pass


# What the server logs (pulsecore/protocol-native.c, sink-input.c, source-output.c at debug and
# info level), after the "(  12.345|   0.001) D: [thread] " prefix that --log-time adds.
LOG_LINE = re.compile(r"^\(\s*(\d+\.\d+)\|\s*\d+\.\d+\) \w: \[[^\]]*\] (.*)$")
LOG_EVENTS = {
    "underrun": re.compile(r"protocol-native\.c: (?:Implicit|Actual) underrun of '(.*)'$"),
    "input": re.compile(r'sink-input\.c: Created input \d+ "(.*)" on '),
    "output": re.compile(r'source-output\.c: Created output \d+ "(.*)" on '),
}


@dataclass(frozen=True, slots=True)
class RigEvent:
    """One thing the server logged: `kind` (underrun, input, output) of stream `name`, at `t`."""

    t: float  # time.monotonic() of this process
    kind: str
    name: str


@dataclass(slots=True)
class MicFeed:
    """A WAV the server plays into `micfeed` from its sample cache.

    It quacks like the `paplay` process it replaces (`wait`, `poll`, `terminate`, `kill`,
    `returncode`), so callers keep treating the feed as a player.
    """

    rig: PulseRig
    name: str
    returncode: int | None = field(default=None)

    def poll(self) -> int | None:
        if self.returncode is None and self._sink_input() is None:
            self._finish(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"play-sample {self.name}", timeout or 0.0)
            time.sleep(0.05)
        return code

    def terminate(self) -> None:
        if self.returncode is None:
            index = self._sink_input()
            if index is not None:
                self.rig._pactl_ok("kill-sink-input", str(index))
            self._finish(0 if index is None else -15)

    kill = terminate

    def _sink_input(self) -> int | None:
        for entry in json.loads(self.rig.pactl("-f", "json", "list", "sink-inputs")):
            if entry["properties"].get("event.id") == self.name:
                return int(entry["index"])
        return None

    def _finish(self, code: int) -> None:
        self.returncode = code
        self.rig._pactl_ok("remove-sample", self.name)


def alsa_base_config() -> str:
    """ALSA's global config (the PCM types and card PCMs) minus the hooks that load the
    machine's files (/etc/asound.conf, /etc/alsa/conf.d, ~/.asoundrc): the rig's and the
    no-device tests' ALSA sees only what they define."""
    text = Path("/usr/share/alsa/alsa.conf").read_text()
    start = text.find("@hooks [")
    end = text.find("\n]\n", start)
    if start < 0 or end < 0:
        raise PulseRigError("unexpected /usr/share/alsa/alsa.conf: no @hooks section to leave out")
    return text[:start] + text[end + 3 :]


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise PulseRigError(
            f"{binary} is not installed: the sound rig needs the Debian packages "
            "pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 (scripts/setup-and-test.sh)"
        )
    return path


class PulseRig:
    """Starts and owns one PulseAudio daemon; `env` is what its clients need."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wespoke-pulse-rig-"))
        self.home = self.dir / "home"
        self.runtime = self.dir / "run"
        self.socket = self.dir / "sock"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._recorder: subprocess.Popen[bytes] | None = None
        self._recording_path: Path | None = None
        self._raw_path: Path | None = None
        self._recording_mark = 0
        self._echo_module: str | None = None
        self._feeds: list[MicFeed] = []
        self._feed_names = itertools.count()
        self._log_offset = 0.0  # log time + offset = time.monotonic()
        self.recording_started_at: float | None = None
        self.env: dict[str, str] = {}

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> PulseRig:
        pulseaudio = _require("pulseaudio")
        for binary in ("pactl", "parec"):
            _require(binary)
        self.home.mkdir()
        self.runtime.mkdir(mode=0o700)
        alsa_conf = self.dir / "asound.conf"
        alsa_conf.write_text(alsa_base_config() + "\n" + RIG_ALSA_PCMS)
        self.env = {
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.runtime / "pulse"),
            # ALSA's own definitions plus ours, without its hooks that read /etc and ~/.asoundrc.
            "ALSA_CONFIG_PATH": str(alsa_conf),
        }
        rig_pa = self.dir / "rig.pa"
        rig_pa.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name=micfeed rate={RATE} channels=1 "
            "norewinds=1 sink_properties=device.description=micfeed\n"
            f"load-module module-null-sink sink_name=speaker rate={RATE} channels=1 "
            "norewinds=1 sink_properties=device.description=speaker\n"
            "load-module module-remap-source source_name=mic master=micfeed.monitor "
            "source_properties=device.description=mic\n"
            "set-default-sink speaker\n"
            "set-default-source mic\n"
        )
        self._daemon = subprocess.Popen(
            [
                pulseaudio, "-n", "-F", str(rig_pa), "--exit-idle-time=-1",
                "--daemonize=no", "--disallow-exit", "--disable-shm=yes",
                "--log-target=file:" + str(self.dir / "pulse.log"), "--log-level=debug", "--log-time=1",
            ],
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._daemon.poll() is not None:
                raise PulseRigError(f"pulseaudio exited ({self._daemon.returncode}): {self.log_tail()}")
            if self.socket.exists() and self._pactl_ok("info"):
                self._calibrate_log_clock()
                return self
            time.sleep(0.05)
        self.stop()
        raise PulseRigError(f"pulseaudio did not come up in {timeout_s} s: {self.log_tail()}")

    def stop(self) -> None:
        self.stop_recording()
        if self._daemon is not None and self._daemon.poll() is None:
            self.stop_feeds()
        if self._daemon is not None and self._daemon.poll() is None:
            self._daemon.terminate()
            try:
                self._daemon.wait(5)
            except subprocess.TimeoutExpired:
                self._daemon.kill()
                self._daemon.wait()
        self._daemon = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        log = self.dir / "pulse.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""

    # ---- what the server logged ----------------------------------------------------------------

    def _calibrate_log_clock(self, tries: int = 5) -> None:
        """Find the offset of the log's clock (the server's CLOCK_MONOTONIC since its first line)
        from a few `pactl` connections bracketed by this process's clock: each one logs
        "Created N ..." while the bracket is open. The narrowest bracket wins."""
        best: tuple[float, float] | None = None
        for _ in range(tries):
            mark = self.log_mark()
            before = time.monotonic()
            self.pactl("stat")
            after = time.monotonic()
            created = [t for t, text in self._log_lines(mark) if 'client.c: Created' in text]
            if created and (best is None or after - before < best[1] - best[0]):
                best = (before - created[0], after - created[0])
        if best is None:
            raise PulseRigError(f"the server logs no client connections with times: {self.log_tail()}")
        self._log_offset = (best[0] + best[1]) / 2

    def log_mark(self) -> int:
        """A position in the server log, for `events(since=...)`."""
        log = self.dir / "pulse.log"
        return log.stat().st_size if log.exists() else 0

    def _log_lines(self, since: int) -> list[tuple[float, str]]:
        with open(self.dir / "pulse.log", "rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
        lines = []
        for line in text.splitlines():
            match = LOG_LINE.match(line)
            if match:
                lines.append((float(match.group(1)), match.group(2)))
        return lines

    def events(self, since: int = 0) -> list[RigEvent]:
        """Underruns of playback streams and the streams created, since a `log_mark()`.

        Stream names: the engine's PortAudio streams are "ALSA Playback" and "ALSA Capture";
        a mic feed is its sample's name; a recording is its file's path."""
        out = []
        for t, text in self._log_lines(since):
            for kind, pattern in LOG_EVENTS.items():
                match = pattern.search(text)
                if match:
                    out.append(RigEvent(t + self._log_offset, kind, match.group(1)))
        return out

    def apply_to_process(self) -> None:
        """Point this process's PortAudio at the rig (PortAudio reads the env at initialise)."""
        os.environ.update(self.env)
        import sounddevice as sd

        sd._terminate()
        sd._initialize()

    # ---- pactl ------------------------------------------------------------------------------

    def pactl(self, *args: str) -> str:
        result = subprocess.run(
            ["pactl", *args], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=10
        )
        if result.returncode != 0:
            raise PulseRigError(f"pactl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def _pactl_ok(self, *args: str) -> bool:
        try:
            self.pactl(*args)
        except (PulseRigError, subprocess.TimeoutExpired):
            return False
        return True

    def source_names(self) -> list[str]:
        return [line.split("\t")[1] for line in self.pactl("list", "short", "sources").splitlines()]

    # ---- the microphone ---------------------------------------------------------------------

    def play_into_mic(self, wav_path: Path, *, wait: bool = False) -> MicFeed:
        """Play a WAV into `micfeed`, i.e. into the default microphone, in real time.

        The server plays it from its sample cache in its own sink thread (real-time priority), so
        a busy machine cannot starve the feed the way it starves a `paplay` client."""
        feed = MicFeed(self, f"wespoke-feed-{next(self._feed_names)}")
        self.pactl("upload-sample", str(wav_path), feed.name)
        self.pactl("play-sample", feed.name, "micfeed")
        self._feeds.append(feed)
        if wait:
            feed.wait(timeout=120)
        return feed

    def stop_feeds(self) -> None:
        """Silence the microphone: stop every feed still playing."""
        for feed in self._feeds:
            feed.terminate()
        self._feeds.clear()

    def suspend_mic(self) -> None:
        """The microphone dies silently: source `mic` stops delivering, its streams stay open.

        This is the failure that matters (livekit/agents #6075): PortAudio just stops calling back.
        """
        self.pactl("suspend-source", "mic", "1")

    def unload_mic(self) -> None:
        """Remove source `mic`. PulseAudio moves its streams to another source (it rescues them)."""
        module = self._module_of("module-remap-source")
        if module is not None:
            self.pactl("unload-module", module)

    def restore_mic(self) -> None:
        """Put the microphone back as the test found it: present, running, the default."""
        if "mic" in self.source_names():
            self.pactl("suspend-source", "mic", "0")
        else:
            self.pactl(
                "load-module", "module-remap-source", "source_name=mic", "master=micfeed.monitor",
                "source_properties=device.description=mic",
            )
        self.pactl("set-default-source", "mic")

    # ---- the speaker ------------------------------------------------------------------------

    def start_recording_speaker(self, path: Path) -> None:
        """Record `speaker.monitor` (what the app played) until `stop_recording()`.

        `recording_started_at` is then when the server attached the recorder (this process's
        clock): sample i of the recording is what the speaker played ~i / RATE s later."""
        self.stop_recording()
        self._recording_path = path
        self._raw_path = path.with_suffix(".raw")
        self._recording_mark = self.log_mark()
        self.recording_started_at = None
        self._recorder = subprocess.Popen(
            [
                "parec", "--device=speaker.monitor", "--format=s16le", f"--rate={RATE}",
                "--channels=1", "--latency-msec=20", "--raw", str(self._raw_path),
            ],
            env={**os.environ, **self.env},
        )

    def stop_recording(self) -> Path | None:
        if self._recorder is None:
            return None
        self._recorder.terminate()
        self._recorder.wait(5)
        self._recorder = None
        assert self._recording_path is not None and self._raw_path is not None
        raw_name = str(self._raw_path)
        attached = [e.t for e in self.events(self._recording_mark) if e.kind == "output" and e.name == raw_name]
        self.recording_started_at = attached[0] if attached else None
        raw = self._raw_path.read_bytes() if self._raw_path.exists() else b""
        write_wav(self._recording_path, np.frombuffer(raw[: len(raw) // 2 * 2], dtype=np.int16))
        self._raw_path.unlink(missing_ok=True)
        path, self._recording_path = self._recording_path, None
        return path

    # ---- the echo path ----------------------------------------------------------------------

    def add_echo_path(self, delay_ms: int = 50) -> None:
        """Loop what the speaker plays back into the microphone, `delay_ms` later."""
        self.remove_echo_path()
        self._echo_module = self.pactl(
            "load-module", "module-loopback", "source=speaker.monitor", "sink=micfeed",
            f"latency_msec={delay_ms}", "source_dont_move=true", "sink_dont_move=true",
        ).strip()

    def remove_echo_path(self) -> None:
        if self._echo_module is not None:
            self._pactl_ok("unload-module", self._echo_module)
            self._echo_module = None

    def _module_of(self, name: str) -> str | None:
        for line in self.pactl("list", "short", "modules").splitlines():
            fields = line.split("\t")
            if len(fields) > 1 and fields[1] == name:
                return fields[0]
        return None


# ---- signals and their analysis, for the tests ------------------------------------------------


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        if wav.getnchannels() > 1:
            data = data.reshape(-1, wav.getnchannels())[:, 0]
        return data.copy(), wav.getframerate()


def sine(freq_hz: float, seconds: float, dbfs: float = -20.0, rate: int = RATE) -> np.ndarray:
    """An int16 sine whose PEAK is `dbfs` (so its RMS is `dbfs` - 3 dB)."""
    t = np.arange(round(seconds * rate)) / rate
    amplitude = 32767.0 * 10 ** (dbfs / 20.0)
    return np.round(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def frame_levels(samples: np.ndarray, frame: int = 480) -> np.ndarray:
    """dBFS RMS of each 10 ms frame (48 kHz), floored at -96."""
    n = samples.size // frame * frame
    power = (samples[:n].astype(np.float64).reshape(-1, frame) / 32768.0) ** 2
    return 10 * np.log10(np.maximum(power.mean(axis=1), 10 ** -9.6))


def power_dbfs(samples: np.ndarray) -> float:
    """dBFS RMS of a whole stretch of samples."""
    if samples.size == 0:
        return -96.0
    power = float(np.mean((samples.astype(np.float64) / 32768.0) ** 2))
    return max(-96.0, 10 * np.log10(max(power, 1e-12)))


def dominant_hz(samples: np.ndarray, rate: int = RATE) -> float:
    """The strongest frequency (Hann-windowed FFT)."""
    windowed = samples.astype(np.float64) * np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(windowed))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / samples.size)


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) index runs where `mask` is true."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.nonzero(edges == 1)[0].tolist(), np.nonzero(edges == -1)[0].tolist(), strict=True))


GAP_DB = 3.0  # a frame this far under its sound's median level lost at least half its samples


@dataclass(frozen=True, slots=True)
class Segment:
    """One sound of a recording, found by its content, in 10 ms frames [start, stop).

    `gaps` are the dropouts inside it: runs of frames at least GAP_DB under its median level."""

    start: int
    stop: int
    gaps: tuple[tuple[int, int], ...]

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def gap_frames(self) -> int:
        return sum(stop - start for start, stop in self.gaps)

    def steady(self, samples: np.ndarray, margin: int = 2, frame: int = 480) -> np.ndarray:
        """Its samples without `margin` frames at its edges and on each side of each gap."""
        keep = np.zeros(self.frames, dtype=bool)
        keep[margin : self.frames - margin] = True
        for start, stop in self.gaps:
            keep[max(0, start - self.start - margin) : stop - self.start + margin] = False
        pieces = [samples[(self.start + a) * frame : (self.start + b) * frame] for a, b in runs_of(keep)]
        return np.concatenate(pieces) if pieces else samples[:0]


def segments(levels: np.ndarray, threshold_dbfs: float = -40.0, bridge_frames: int = 50) -> list[Segment]:
    """The sounds in `frame_levels(...)`, each from its own onset to its own offset.

    A sound is a run of frames above the threshold; runs closer than `bridge_frames` are one sound
    with a dropout between them (a device glitch is far shorter than the silences a test puts
    between its sounds). Locating each sound by its content, not at a fixed offset from the first
    onset, keeps one dropped or inserted block from shifting every later window."""
    loud = runs_of(levels > threshold_dbfs)
    joined: list[list[int]] = []
    for start, stop in loud:
        if joined and start - joined[-1][1] < bridge_frames:
            joined[-1][1] = stop
        else:
            joined.append([start, stop])
    out = []
    for start, stop in joined:
        inside = levels[start:stop]
        low = inside < float(np.median(inside)) - GAP_DB
        gaps = tuple((start + a, start + b) for a, b in runs_of(low) if a > 0 and b < stop - start)
        out.append(Segment(start, stop, gaps))
    return out


@dataclass(slots=True)
class FeedTiming:
    """How late `write_realtime` wrote each frame: its own glitches, as the stand-in for a
    remote track (a busy machine starves the test's event loop too)."""

    scheduled_at: list[float] = field(default_factory=list)  # time.monotonic() each frame was due
    lateness_s: list[float] = field(default_factory=list)

    def stalls(self, longer_than_s: float) -> list[tuple[float, float]]:
        """(from, to) times when frames were late by more than `longer_than_s`: long enough to
        empty a jitter buffer holding that much."""
        late = np.array(self.lateness_s) > longer_than_s
        due = np.array(self.scheduled_at)
        return [(float(due[a]), float(due[b - 1] + self.lateness_s[b - 1])) for a, b in runs_of(late)]


async def write_realtime(write: Callable[[np.ndarray], None], samples: np.ndarray, frame: int = 480) -> FeedTiming:
    """Write 10 ms frames at the pace of the clock, as a remote track delivers them; a frame
    overdue after a stall is written at once, so the feed catches up."""
    timing = FeedTiming()
    loop = asyncio.get_running_loop()
    start, offset = loop.time(), time.monotonic() - loop.time()
    for i, block in enumerate(samples[: samples.size // frame * frame].reshape(-1, frame)):
        due = start + i * frame / RATE
        timing.scheduled_at.append(due + offset)
        timing.lateness_s.append(max(0.0, loop.time() - due))
        write(block)
        delay = due + frame / RATE - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
    return timing


def speech_wav(path: Path, text: str, rate: int = RATE) -> Path:
    """Speech from espeak-ng (a real far-end voice), resampled to `rate`, normalised to -6 dBFS peak."""
    espeak = _require("espeak-ng")
    raw = path.with_suffix(".espeak.wav")
    subprocess.run([espeak, "-s", "150", "-w", str(raw), text], check=True, capture_output=True, timeout=60)
    samples, source_rate = read_wav(raw)
    raw.unlink()
    t_out = np.arange(round(samples.size * rate / source_rate)) / rate
    resampled = np.interp(t_out, np.arange(samples.size) / source_rate, samples.astype(np.float64))
    peak = max(1.0, float(np.abs(resampled).max()))
    return write_wav(path, np.round(resampled * (0.5 * 32767 / peak)).astype(np.int16), rate)
