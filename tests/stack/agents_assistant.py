"""A real LiveKit Agents assistant for the local stack: a `livekit-agents` worker whose
`AgentSession` runs on offline, deterministic parts written against the framework's base classes.

    .venv-agents/bin/python -m tests.stack.agents_assistant --url ws://127.0.0.1:7880 \\
        --api-key devkey --api-secret secret --agent-name wespoke-test-agent --log-file worker.jsonl

It registers with the LiveKit server under `--agent-name`, so it is dispatched only explicitly:
by the room configuration in a caller's token (`RoomAgentDispatch(agent_name=...)`), which the
local API server mints for assistants configured that way. Per call it
- greets on join: the call's `assistantOverrides.firstMessage` (in the dispatch metadata), else
  `GREETING`;
- hears with the silero VAD (its model ships in the plugin's wheel) segmenting the caller's audio
  for a non-streaming STT (`stt.StreamAdapter`, tests/stack/agents_hearing.py) that "transcribes"
  an utterance as how long its speech lasted (`describe_speech`), or, when the call asks for it,
  recognizes its words with pocketsphinx;
- answers each turn, spoken or typed on `lk.chat`, after a fixed think time with `reply_to(text)`;
- speaks with espeak-ng; can be interrupted (VAD barge-in).
What a call asks of it beyond that (not to give way when talked over, to answer wrong every Nth
time, to report a barge-in, which recognizer) comes in the call's metadata: `AgentControl`.
Nothing here reaches the network beyond loopback: an audit hook refuses (and logs as
`network_blocked`) any Python socket to another host, so a plugin reaching for a model hub fails
loudly instead of downloading.

The log (`--log-file`) is JSON lines: every record has "wall" (epoch s), "mono"
(time.monotonic()), "level", "logger", "msg"; the assistant's own reports also have "event"
(registered, job_started, agent_state, user_state, user_transcript, stt_recognized, llm_request,
llm_answered, tts_synthesized, text_input, conversation_item, speech_created, barge_in_sent,
session_closed, job_ended, stopping, stopped, network_blocked).

Jobs run on the thread executor: one process for the worker and all its calls (espeak-ng runs
and is waited for per sentence), so stopping it (closing stdin with `--exit-on-stdin-eof`,
SIGTERM, SIGINT or SIGHUP) leaves no process behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.resources
import ipaddress
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    Agent,
    AgentServer,
    AgentSession,
    APIConnectOptions,
    JobContext,
    JobExecutorType,
    JobProcess,
    NotGivenOr,
    llm,
    room_io,
    stt,
    tts,
    utils,
)
from livekit.plugins import silero

from tests.stack.agents_control import AGENT_NAME, GREETING, THINK_S, AgentControl
from tests.stack.agents_hearing import DescribingSTT, PocketsphinxSTT, make_stt, warm_up

log = logging.getLogger("agents-assistant")

ESPEAK_RATE = 22_050  # espeak-ng's own output rate
ESPEAK_WPM = 175
SHUTDOWN_TIMEOUT_S = 10.0
SELF_CHECK_SENTENCE = "Could you call me back later this afternoon?"

# -------------------------------------------------------------------------------- logging

_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object a line, with both clocks, and every `extra=` field of the record."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "wall": record.created,
            # The framework's records carry only the epoch time: their monotonic time is derived.
            "mono": getattr(record, "mono", None) or time.monotonic() - (time.time() - record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key != "mono":
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def report(event: str, **fields: Any) -> None:
    log.info(event, extra={"event": event, "mono": time.monotonic(), **fields})


def setup_logging(path: str | None, level: str) -> None:
    handler: logging.Handler = logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler()
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    log.setLevel(logging.INFO)  # the reports, whatever the framework's level


# -------------------------------------------------------------------------------- no network

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _network_guard(event: str, args: tuple[Any, ...]) -> None:
    """Refuse any Python socket (or name lookup) that leaves this machine."""
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        if not isinstance(address, tuple):
            return  # a unix socket
        host = address[0]
    else:
        return
    if host is None or _is_loopback(host):
        return
    report("network_blocked", audit_event=event, host=str(host))
    raise PermissionError(f"the test assistant stays on loopback: {event} to {host!r} refused")


# -------------------------------------------------------------------------------- the parts


_answers: dict[str, int] = {}  # answers given so far, by the count's name (AgentControl.counter)
_answers_lock = threading.Lock()  # jobs run on threads of one process


def next_answer_number(count: str) -> int:
    with _answers_lock:
        _answers[count] = _answers.get(count, 0) + 1
        return _answers[count]


class ScriptedLLM(llm.LLM):
    """Answers the last user message with `reply_to(text)`, after a fixed think time (or with
    WRONG_ANSWER every Nth time, as the call's control asks)."""

    def __init__(self, think_s: float, control: AgentControl | None = None, count: str = "") -> None:
        super().__init__()
        self.think_s = think_s
        self.control = control or AgentControl()
        self.count = self.control.counter or count

    @property
    def model(self) -> str:
        return "you-said"

    @property
    def provider(self) -> str:
        return "wespoke-tests"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _ScriptedStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _ScriptedStream(llm.LLMStream):
    async def _run(self) -> None:
        assert isinstance(self._llm, ScriptedLLM)
        users = [m for m in self._chat_ctx.messages() if m.role == "user"]
        heard = (users[-1].text_content or "") if users else ""
        report("llm_request", user_text=heard)
        await asyncio.sleep(self._llm.think_s)
        number = next_answer_number(self._llm.count)
        answer = self._llm.control.answer(heard, number)
        request_id = utils.shortuuid("reply_")
        # Word by word, as a provider streams tokens: the TTS adapter splits sentences itself.
        for i, word in enumerate(answer.split(" ")):
            delta = llm.ChoiceDelta(role="assistant", content=word if i == 0 else " " + word)
            self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=delta))
        report("llm_answered", user_text=heard, answer=answer, number=number, count=self._llm.count)


class EspeakTTS(tts.TTS):
    """espeak-ng as a non-streaming TTS (the session runs it sentence by sentence)."""

    def __init__(self, voice: str = "en-us", wpm: int = ESPEAK_WPM) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=ESPEAK_RATE, num_channels=1)
        self.voice, self.wpm = voice, wpm

    @property
    def model(self) -> str:
        return "espeak-ng"

    @property
    def provider(self) -> str:
        return "wespoke-tests"

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


def espeak_pcm(text: str, voice: str, wpm: int) -> bytes:
    """16-bit mono PCM at ESPEAK_RATE. The text goes on stdin, so nothing in it is an option."""
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdin", "--stdout"],
        input=text.encode(), capture_output=True, timeout=30, check=True,
    )
    wav = done.stdout
    at = wav.find(b"data")  # streamed to a pipe, the header's sizes are placeholders
    if not wav.startswith(b"RIFF") or at < 0:
        raise RuntimeError(f"espeak-ng gave no WAV: {done.stderr[-200:]!r}")
    pcm = wav[at + 8 :]
    return pcm[: len(pcm) // 2 * 2]


class _EspeakStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        assert isinstance(self._tts, EspeakTTS)
        pcm = await asyncio.to_thread(espeak_pcm, self.input_text, self._tts.voice, self._tts.wpm)
        report("tts_synthesized", text=self.input_text, audio_s=round(len(pcm) / 2 / ESPEAK_RATE, 3))
        output_emitter.initialize(
            request_id=utils.shortuuid("tts_"), sample_rate=ESPEAK_RATE, num_channels=1, mime_type="audio/pcm"
        )
        output_emitter.push(pcm)
        output_emitter.flush()


# -------------------------------------------------------------------------------- the session


class Greeter(Agent):
    def __init__(self, greeting: str) -> None:
        super().__init__(instructions="Answer every turn with reply_to(text).")
        self._greeting = greeting

    async def on_enter(self) -> None:
        self.session.say(self._greeting)


def prewarm(proc: JobProcess) -> None:
    # Model weights from the plugin's wheel (livekit/plugins/silero/resources/silero_vad.onnx).
    proc.userdata["vad"] = silero.VAD.load()
    try:
        warm_up()  # pocketsphinx's model, from its wheel
    except ImportError:
        log.warning("pocketsphinx is not installed: calls that ask for it hear nothing")


def _greeting(metadata: str) -> str:
    """The token's `assistantOverrides.firstMessage` (the dispatch metadata), else GREETING."""
    try:
        doc = json.loads(metadata) if metadata else {}
    except ValueError:
        return GREETING
    overrides = doc.get("assistantOverrides") if isinstance(doc, dict) else None
    first = overrides.get("firstMessage") if isinstance(overrides, dict) else None
    return first if isinstance(first, str) and first.strip() else GREETING


def make_entrypoint(options: argparse.Namespace) -> Any:
    async def entrypoint(ctx: JobContext) -> None:
        job = ctx.job
        control = AgentControl.from_dispatch(job.metadata)
        report("job_started", job_id=job.id, room=job.room.name, dispatch_metadata=job.metadata,
               control=dataclasses.asdict(control))
        vad = ctx.proc.userdata["vad"]
        fields = {"job_id": job.id, "room": job.room.name}
        session: AgentSession = AgentSession(
            stt=stt.StreamAdapter(stt=make_stt(control.recognizer, **fields), vad=vad),
            vad=vad,
            llm=ScriptedLLM(options.think_s, control, count=job.id),
            tts=EspeakTTS(),
            turn_handling={
                # The framework's default turn detector and adaptive interruption are models
                # served by LiveKit Cloud; the VAD is what this machine has.
                "turn_detection": "vad",
                "interruption": {"mode": "vad", "min_duration": options.min_interruption_s,
                                 "enabled": control.interruptible,
                                 "resume_false_interruption": control.resumes},
                # A reply starts only once the turn ended, so "thinking" lasts the think time.
                "preemptive_generation": {"enabled": False},
            },
        )
        user_state = ["listening"]

        def on_agent_state(ev: Any) -> None:
            report("agent_state", state=ev.new_state, previous=ev.old_state, **fields)
            # Cut short: the agent stops speaking while the caller speaks.
            if control.report_barge_in and ev.old_state == "speaking" and user_state[0] == "speaking":
                payload = json.dumps({"type": "barge_in"}).encode()
                task = asyncio.get_running_loop().create_task(ctx.room.local_participant.publish_data(payload))
                task.add_done_callback(lambda _: report("barge_in_sent", **fields))

        def on_user_state(ev: Any) -> None:
            user_state[0] = ev.new_state
            report("user_state", state=ev.new_state, previous=ev.old_state, **fields)

        session.on("agent_state_changed", on_agent_state)
        session.on("user_state_changed", on_user_state)
        session.on(
            "user_input_transcribed",
            lambda ev: report("user_transcript", text=ev.transcript, final=ev.is_final, **fields),
        )
        session.on(
            "speech_created",
            lambda ev: report("speech_created", source=ev.source, user_initiated=ev.user_initiated, **fields),
        )

        def on_item(ev: Any) -> None:
            item = ev.item
            if isinstance(item, llm.ChatMessage):
                # metrics: the turn's latencies as the framework measured them (transcription and
                # end-of-turn delays for the user, time to first token and audio for the agent).
                report("conversation_item", role=item.role, text=item.text_content or "",
                       interrupted=item.interrupted, metrics=dict(item.metrics), **fields)

        session.on("conversation_item_added", on_item)

        def on_close(ev: Any) -> None:
            report("session_closed", reason=ev.reason.value, **fields)
            # The session ends with the caller; the job (and our participant) go with it.
            ctx.shutdown(reason="session closed")

        session.on("close", on_close)

        async def on_text(sess: AgentSession, ev: room_io.TextInputEvent) -> None:
            report("text_input", text=ev.text, sender=ev.participant.identity, topic=ev.info.topic, **fields)
            await sess.interrupt()
            sess.generate_reply(user_input=ev.text)

        ctx.add_shutdown_callback(lambda reason: _job_ended(reason, fields))
        await session.start(
            agent=Greeter(_greeting(job.metadata)),
            room=ctx.room,
            room_options=room_io.RoomOptions(
                text_input=room_io.TextInputOptions(text_input_cb=on_text),
                delete_room_on_close=True,
            ),
            record=False,
        )

    return entrypoint


async def _job_ended(reason: str, fields: dict[str, Any]) -> None:
    report("job_ended", reason=reason, **fields)


# -------------------------------------------------------------------------------- self-check


async def self_check(think_s: float) -> dict[str, Any]:
    """The offline parts on their own, with the network guard on: the `--self-check` report."""
    report_doc: dict[str, Any] = {
        "vad_model": str(importlib.resources.files("livekit.plugins.silero.resources") / "silero_vad.onnx"),
        "silero_package": os.path.dirname(silero.__file__),
    }
    vad = silero.VAD.load()

    speech = [ev.frame async for ev in EspeakTTS().synthesize(GREETING)]
    spoken = rtc.combine_audio_frames(speech)
    report_doc["tts_audio_s"] = spoken.duration
    report_doc["tts_peak"] = int(np.abs(np.frombuffer(spoken.data, dtype=np.int16)).max())

    # The session's hearing path: the VAD segments, the STT describes each segment.
    silence = rtc.AudioFrame(b"\0\0" * ESPEAK_RATE, ESPEAK_RATE, 1, ESPEAK_RATE)
    hearing = stt.StreamAdapter(stt=DescribingSTT(), vad=vad).stream()
    for frame in (silence, *speech, silence, silence):
        hearing.push_frame(frame)
    hearing.end_input()
    report_doc["stt_events"] = [
        {"type": ev.type.value, "text": ev.alternatives[0].text if ev.alternatives else None} async for ev in hearing
    ]
    # The same path with pocketsphinx, on a sentence in the caller's voice (espeak-ng at 160 wpm).
    said = [ev.frame async for ev in EspeakTTS(wpm=160).synthesize(SELF_CHECK_SENTENCE)]
    recognizing = stt.StreamAdapter(stt=PocketsphinxSTT(), vad=vad).stream()
    for frame in (silence, *said, silence, silence):
        recognizing.push_frame(frame)
    recognizing.end_input()
    report_doc["pocketsphinx"] = {"said": SELF_CHECK_SENTENCE, "heard": [
        ev.alternatives[0].text async for ev in recognizing
        if ev.type is stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives
    ]}

    chat_ctx = llm.ChatContext.empty()
    chat_ctx.add_message(role="user", content="are you there")
    started = time.monotonic()
    answer = await ScriptedLLM(think_s).chat(chat_ctx=chat_ctx).collect()
    report_doc["llm_answer"], report_doc["llm_s"] = answer.text, time.monotonic() - started

    def connect() -> None:
        with socket.socket() as sock:  # a bare connect: no name lookup before it
            sock.settimeout(1)
            sock.connect(("192.0.2.1", 443))  # TEST-NET-1: nobody's address

    def lookup() -> None:
        socket.getaddrinfo("huggingface.co", 443)

    refused: dict[str, str] = {}
    for name, attempt in (("connect", connect), ("getaddrinfo", lookup)):
        try:
            attempt()
            refused[name] = "allowed"
        except PermissionError as exc:
            refused[name] = f"refused: {exc}"
        except OSError as exc:
            refused[name] = f"failed otherwise: {exc!r}"
    report_doc["network"] = refused
    return report_doc


# -------------------------------------------------------------------------------- the worker


async def serve(options: argparse.Namespace) -> int:
    server = AgentServer(
        ws_url=options.url,
        api_key=options.api_key,
        api_secret=options.api_secret,
        # Threads, not processes: one process to stop, nothing left behind if it is killed.
        job_executor_type=JobExecutorType.THREAD,
        num_idle_processes=1,  # one session runner kept warm: a dispatch does not wait for it
        # The load it reports is the machine's CPU use by default: on a busy test machine the
        # worker would mark itself full, and LiveKit dispatches no job to a worker whose load
        # is at its target. A test worker takes every job it is sent.
        load_fnc=lambda: 0.0,
        load_threshold=math.inf,
        initialize_process_timeout=30.0,
        shutdown_process_timeout=5.0,
        host="127.0.0.1",
        port=0,  # its health endpoint on a free port: several workers can share the machine
        setup_fnc=prewarm,
    )
    server.rtc_session(make_entrypoint(options), agent_name=options.agent_name)
    server.on(
        "worker_registered",
        lambda worker_id, info: report("registered", worker_id=worker_id, agent_name=options.agent_name, url=options.url),
    )

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    why: list[str] = []

    def request_stop(reason: str) -> None:
        if not why:
            why.append(reason)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, request_stop, signal.Signals(sig).name)
    if options.exit_on_stdin_eof:
        def watch_stdin() -> None:
            while sys.stdin.buffer.read(4096):
                pass
            loop.call_soon_threadsafe(request_stop, "stdin closed")

        threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()

    running = loop.create_task(server.run(devmode=False), name="agent-server")
    stopper = loop.create_task(stop.wait())
    await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if running.done() and not running.cancelled() and running.exception() is not None:
        log.error("the agent server stopped", exc_info=running.exception())
        code = 1
    report("stopping", reason=why[0] if why else "server stopped")
    try:
        await asyncio.wait_for(server.aclose(), SHUTDOWN_TIMEOUT_S)
    except (asyncio.TimeoutError, Exception):
        log.exception("the agent server did not close cleanly")
        code = 1
    stopper.cancel()
    running.cancel()
    with contextlib.suppress(BaseException):
        await running
    report("stopped", code=code)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="ws://127.0.0.1:7880")
    parser.add_argument("--api-key", default="devkey")
    parser.add_argument("--api-secret", default="secret")
    parser.add_argument("--agent-name", default=AGENT_NAME)
    parser.add_argument("--log-file", default=None, help="JSON lines (default: stderr)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--think-s", type=float, default=THINK_S, help="the LLM's think time")
    parser.add_argument("--min-interruption-s", type=float, default=0.5,
                        help="speech needed to interrupt the agent (the framework's default)")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="shut down when stdin closes (the parent's pipe: a dead parent stops us)")
    parser.add_argument("--nice", type=int, default=0,
                        help="change the worker's scheduling priority by this much (negative: before other work)")
    parser.add_argument("--self-check", action="store_true",
                        help="run the VAD, STT, LLM and TTS offline once, print a JSON report, exit")
    options = parser.parse_args(argv)
    setup_logging(options.log_file, options.log_level)
    if options.nice:
        try:
            os.nice(options.nice)
        except PermissionError:
            log.warning("cannot change the priority by %d; running at %d", options.nice, os.nice(0))
    sys.addaudithook(_network_guard)
    if options.self_check:
        print(json.dumps(asyncio.run(self_check(options.think_s))), flush=True)
        code = 0
    else:
        code = asyncio.run(serve(options))
    logging.shutdown()
    # The rtc FFI's threads can hold the interpreter's exit (or abort in finalization, as the
    # client's own runner found); everything is closed and flushed by now.
    os._exit(code)


if __name__ == "__main__":
    main()
