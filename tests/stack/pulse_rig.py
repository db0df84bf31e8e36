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
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import wave
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
        self._echo_module: str | None = None
        self._players: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}

    # ---- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> PulseRig:
        pulseaudio = _require("pulseaudio")
        for binary in ("pactl", "paplay", "parec"):
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
                "--log-target=file:" + str(self.dir / "pulse.log"),
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
                return self
            time.sleep(0.05)
        self.stop()
        raise PulseRigError(f"pulseaudio did not come up in {timeout_s} s: {self.log_tail()}")

    def stop(self) -> None:
        self.stop_recording()
        for player in self._players:
            if player.poll() is None:
                player.kill()
                player.wait()
        self._players.clear()
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

    def play_into_mic(self, wav_path: Path, *, wait: bool = False) -> subprocess.Popen[bytes]:
        """Play a WAV into `micfeed`, i.e. into the default microphone, in real time."""
        player = subprocess.Popen(
            ["paplay", "--device=micfeed", "--latency-msec=20", str(wav_path)],
            env={**os.environ, **self.env},
        )
        self._players.append(player)
        if wait:
            player.wait(timeout=120)
        return player

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
        """Record `speaker.monitor` (what the app played) until `stop_recording()`."""
        self.stop_recording()
        self._recording_path = path
        self._raw_path = path.with_suffix(".raw")
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


def first_onset(levels: np.ndarray, threshold_dbfs: float = -40.0) -> int:
    """Index of the first frame louder than the threshold (ValueError if none)."""
    loud = np.nonzero(levels > threshold_dbfs)[0]
    if loud.size == 0:
        raise ValueError(f"no frame above {threshold_dbfs} dBFS (max {levels.max():.1f})")
    return int(loud[0])


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
