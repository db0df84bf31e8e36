"""The app driven by keys and clicks (Textual Pilot) on a recording controller."""

from __future__ import annotations

import asyncio
import dataclasses

from textual.widgets import Select

from tests.ui_support import FrozenClock, RecordingController, make_app, screen_text, settings_for, until, widget_text
from wespoke_tui.errors import RATE_LIMITED, CallError
from wespoke_tui.events import (
    AgentState,
    AgentStateChanged,
    AssistantLevel,
    CallEnding,
    CallState,
    ErrorEvent,
    MetricsEvent,
    MicLevel,
    RateLimitInfo,
    ReconnectAttempt,
    ToolEvent,
    TranscriptItem,
)
from wespoke_tui.ui.screens.confirm_delete_record import ConfirmDeleteRecord
from wespoke_tui.ui.screens.confirm_hang_up import ConfirmHangUp
from wespoke_tui.ui.screens.devices import DevicesScreen
from wespoke_tui.ui.screens.help import HelpScreen
from wespoke_tui.ui.widgets.call_button import CallButton
from wespoke_tui.ui.widgets.mic_toggle import MicToggle
from wespoke_tui.ui.widgets.status_bar import StatusBar
from wespoke_tui.ui.widgets.transcript import Transcript, TranscriptLine


def status_text(app) -> str:
    """The status bar's words with borders and line wrapping taken out."""
    return " ".join(widget_text(app.query_one(StatusBar)).replace("│", " ").split()[1:-1])


def toasts(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def connected(pilot, controller: RecordingController) -> None:
    await pilot.press("c")
    await until(pilot, lambda: pilot.app.status.state is CallState.CONNECTED)


async def test_c_and_enter_start_a_call_and_the_screen_follows() -> None:
    for key in ("c", "enter"):
        controller = RecordingController()
        app = make_app(controller)
        async with app.run_test() as pilot:
            assert str(app.query_one(CallButton).label) == "Call"
            await pilot.press(key)
            await until(pilot, lambda app=app: app.status.state is CallState.CONNECTED)
            assert controller.names() == ["start"]
            assert str(app.query_one(CallButton).label) == "End call"
            assert "State: Connected" in status_text(app)
            assert "Call: call_123" in status_text(app)
            assert "Assistant: Test Assistant" in status_text(app)
            assert "Connected to Test Assistant" in toasts(app)
            await pilot.press(key)  # already in a call: nothing more
            await pilot.pause()
            assert controller.names() == ["start"]


async def test_call_button_click_calls_then_offers_hang_up() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await pilot.click("#call-button")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        # A Button ignores clicks during its press effect (the "-active" class, 0.2 s); on a busy
        # machine the call connects inside it, so click again once the effect is over.
        await until(pilot, lambda: not app.query_one(CallButton).has_class("-active"))
        await pilot.click("#call-button")
        await until(pilot, lambda: isinstance(app.screen, ConfirmHangUp))
        await pilot.click("#confirm-yes")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        assert controller.names() == ["start", "hang_up"]
        assert str(app.query_one(CallButton).label) == "Call"
        assert "The call has ended" in toasts(app)


async def test_mute_by_key_and_by_click() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.press("m")
        await until(pilot, lambda: app.status.muted)
        assert ("set_muted", True) in controller.calls
        assert str(app.query_one(MicToggle).label) == "Mic muted"
        assert "Mic: muted" in status_text(app)
        await pilot.click("#mic-toggle")
        await until(pilot, lambda: not app.status.muted)
        assert controller.calls[-1] == ("set_muted", False)
        assert str(app.query_one(MicToggle).label) == "Mic on"


async def test_hang_up_cancelled_with_n_and_escape_then_confirmed_with_y() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        for cancel in ("n", "escape"):
            await pilot.press("h")
            await until(pilot, lambda: isinstance(app.screen, ConfirmHangUp))
            assert "Are you sure you want to end the call?" in screen_text(app)
            assert app.focused is not None and app.focused.id == "confirm-no"  # the safe choice
            await pilot.press(cancel)
            await until(pilot, lambda: not isinstance(app.screen, ConfirmHangUp))
            assert app.status.state is CallState.CONNECTED
        assert "hang_up" not in controller.names()
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        assert controller.names() == ["start", "hang_up"]


async def test_enter_confirms_the_hang_up_in_turkish() -> None:
    controller = RecordingController()
    app = make_app(controller, settings_for("tr"))
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, ConfirmHangUp))
        assert "Aramayı sonlandırmak istediğinizden emin misiniz?" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        assert "Arama bitti" in status_text(app)


async def test_h_outside_a_call_does_nothing() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await pilot.press("h")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmHangUp)
        assert controller.calls == []


async def test_x_after_the_call_asks_then_deletes_its_record_once() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.press("x")  # a live call's record is not deleted: the key does nothing
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDeleteRecord)
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDeleteRecord))
        assert "cannot be undone" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")  # kept
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDeleteRecord))
        assert "delete_record" not in controller.names()
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDeleteRecord))
        await pilot.press("y")
        await until(pilot, lambda: "The call's record was deleted" in toasts(app))
        assert controller.names() == ["start", "hang_up", "delete_record"]
        assert app.call_screen.check_action("delete_record", ()) is False  # gone: the key leaves the footer
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDeleteRecord)
        await pilot.press("c")  # a new call has a record of its own
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        assert app.call_screen.check_action("delete_record", ()) is True


async def test_delete_after_deletes_each_record_once_the_call_has_ended() -> None:
    controller = RecordingController()
    app = make_app(controller, settings_for(delete_after=True))
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.pause()
        assert "delete_record" not in controller.names()
        await pilot.press("h", "y")
        await until(pilot, lambda: "The call's record was deleted" in toasts(app))
        assert controller.names() == ["start", "hang_up", "delete_record"]
        assert not isinstance(app.screen, ConfirmDeleteRecord)  # asked for up front: no dialog


async def test_the_demo_has_no_record_to_delete() -> None:
    controller = RecordingController()
    app = make_app(controller, settings_for(demo=True, delete_after=True))
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDeleteRecord)
        assert "delete_record" not in controller.names()


async def test_q_when_idle_quits_and_closes_the_controller() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await pilot.press("q")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0
    assert controller.names() == ["aclose"]


async def test_q_during_a_call_asks_then_hangs_up_and_quits() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmHangUp))
        assert "Quitting ends the call." in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmHangUp))
        assert app.return_code is None and controller.names() == ["start"]
        await pilot.press("q", "y")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0
    assert controller.names() == ["start", "aclose", "hang_up"]
    assert controller.state is CallState.ENDED


async def test_ctrl_c_during_connect_hangs_up_and_exits() -> None:
    controller = RecordingController(hold_connect=True)
    app = make_app(controller)
    async with app.run_test() as pilot:
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTING)
        assert str(app.query_one(CallButton).label) == "Connecting…"
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 130
    assert controller.names() == ["start", "aclose", "hang_up"]
    assert controller.state is CallState.ENDED


async def test_second_ctrl_c_forces_the_exit_when_hanging_up_hangs() -> None:
    class StuckController(RecordingController):
        async def aclose(self) -> None:
            self.calls.append(("aclose", None))
            await asyncio.Event().wait()  # the network never answers

    controller = StuckController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.press("ctrl+c")
        await until(pilot, lambda: controller.names() == ["start", "aclose"])
        assert app.return_code is None
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app.return_code is not None, timeout=2.0)
    assert app.return_code == 130


async def test_ctrl_c_works_while_typing_in_the_message_box() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await pilot.click("#message-input")
        await pilot.press("ctrl+c")
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 130 and "aclose" in controller.names()


async def test_message_input_sends_during_a_call_only() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await pilot.click("#message-input")
        await pilot.press(*"hi", "enter")
        await pilot.pause()
        assert "send_text" not in controller.names()
        assert "No call. Start a call to send a message." in toasts(app)
        await pilot.press("escape")  # leave the box: keys drive the app again
        assert app.focused is None
        await connected(pilot, controller)
        await pilot.click("#message-input")
        await pilot.press(*"hello", "enter")
        await until(pilot, lambda: "send_text" in controller.names())
        assert ("send_text", "hello") in controller.calls
        assert app.query_one("#message-input").value == ""


async def test_reconnecting_banner_then_reconnected() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        controller.emit(ReconnectAttempt(1, 3))
        controller.move_to(CallState.RECONNECTING)
        await until(pilot, lambda: app.status.state is CallState.RECONNECTING)
        bar = app.query_one(StatusBar)
        assert "Reconnecting 1/3" in status_text(app) and bar.has_class("-reconnecting")
        controller.emit(ReconnectAttempt(2, 3))
        await until(pilot, lambda: "Reconnecting 2/3" in status_text(app))
        assert "Connection lost, reconnecting (1/3)…" in toasts(app)
        assert "Connection lost, reconnecting (2/3)…" in toasts(app)
        assert str(app.query_one(CallButton).label) == "End call"
        controller.move_to(CallState.CONNECTED)
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert not bar.has_class("-reconnecting")
        assert "Reconnected" in toasts(app)


async def test_transcript_updates_lines_in_place_and_styles_tools_and_call_ending() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        controller.emit(
            TranscriptItem("u1", "user", "Merhaba", final=True, added=True),
            TranscriptItem("a1", "assistant", "Hel", final=False, added=True),
            TranscriptItem("a1", "assistant", "Hello, how can", final=False, added=False),
            ToolEvent("start", "lookup_order"),
            TranscriptItem("a1", "assistant", "Hello, how can I help?", final=True, added=False),
            CallEnding("done", None),
        )
        transcript = app.query_one(Transcript)
        await until(pilot, lambda: len(transcript.query(TranscriptLine)) == 4)
        lines = list(transcript.query(TranscriptLine))
        texts = [line.render().plain for line in lines]
        assert texts[0] == "You: Merhaba"
        assert texts[1] == "Test Assistant: Hello, how can I help?"  # one line for id a1
        assert lines[1].has_class("-assistant") and not lines[1].has_class("-streaming")
        assert "tool running: lookup_order" in texts[2] and lines[2].has_class("-tool")
        assert "The assistant is ending the call" in texts[3] and lines[3].has_class("-notice")


async def test_status_bar_shows_agent_state_latency_rate_limit_and_duration() -> None:
    controller = RecordingController()
    clock = FrozenClock()
    app = make_app(controller, clock=clock)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        clock.advance(83)
        controller.emit(AgentStateChanged(AgentState.THINKING), MetricsEvent(latency_ms=412.4),
                        RateLimitInfo(97, 100))
        await until(pilot, lambda: app.status.latency_ms is not None)
        app._tick_duration()
        text = status_text(app)
        assert "Assistant is: thinking" in text
        assert "Latency: 412 ms" in text
        assert "Calls left: 97/100" in text
        assert "Time: 01:23" in text


async def test_errors_show_their_user_message_in_the_users_language() -> None:
    controller = RecordingController()
    app = make_app(controller, settings_for("tr"))
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        error = CallError.of(RATE_LIMITED, "Too many requests", retry_after=30)
        controller.emit(ErrorEvent(error, fatal=True))
        controller.move_to(CallState.FAILED, error)
        await until(pilot, lambda: app.status.state is CallState.FAILED)
        message = "Çok fazla arama yapıldı. Lütfen biraz bekleyip tekrar deneyin. (30 sn sonra)"
        await until(pilot, lambda: message in status_text(app))
        assert toasts(app).count(message) == 1  # the error event and the state change: one toast


async def test_muted_hint_appears_only_after_300_ms_of_speech_while_muted() -> None:
    controller = RecordingController()
    clock = FrozenClock()
    app = make_app(controller, clock=clock)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        hint = app.query_one("#muted-hint")

        async def level(rms: float, muted: bool, after_s: float = 0.0) -> None:
            clock.advance(after_s)
            controller.emit(MicLevel(rms, rms + 2, muted=muted))
            await pilot.pause(0.05)

        await level(-20, False)
        await level(-20, False, 0.5)
        assert not hint.display  # talking, not muted
        await level(-20, True)
        await level(-20, True, 0.2)
        assert not hint.display  # 200 ms: could be a cough
        await level(-20, True, 0.15)
        await until(pilot, lambda: hint.display)
        assert "You are muted" in str(hint.render())
        controller.emit(MicLevel(-70, -60, muted=True))
        await until(pilot, lambda: not hint.display)


async def test_devices_screen_applies_the_choice_to_the_next_call_and_saves_it() -> None:
    controller = RecordingController()
    saved: list[dict] = []
    app = make_app(controller, config_saver=lambda path, updates: saved.append(dict(updates)))
    async with app.run_test() as pilot:
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        inputs = app.screen.query_one("#devices-input", Select)
        outputs = app.screen.query_one("#devices-output", Select)
        assert [value for _, value in inputs._options if value != Select.NULL] == ["Built-in Microphone", "USB Headset"]
        inputs.value = "USB Headset"
        outputs.value = "Built-in Speakers"
        await pilot.click("#devices-apply")
        await until(pilot, lambda: not isinstance(app.screen, DevicesScreen))
        assert (app.settings.input_device, app.settings.output_device) == ("USB Headset", "Built-in Speakers")
        assert saved == [{"input_device": "USB Headset", "output_device": "Built-in Speakers"}]
        await pilot.press("d", "escape")
        await until(pilot, lambda: not isinstance(app.screen, DevicesScreen))
        assert app.settings.input_device == "USB Headset"
        assert len(saved) == 1, "a cancelled dialog saves nothing"


async def test_devices_screen_tests_the_microphone_level() -> None:
    async def probe(name):
        for level in (-50.0, -30.0, -12.0):
            yield level
            await asyncio.sleep(0.01)  # pacing: a level every 10 ms, as the probe reads them

    app = make_app(RecordingController(), mic_probe=probe)
    async with app.run_test() as pilot:
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        meter = app.screen.query_one("#devices-meter")
        await pilot.click("#devices-test")
        await until(pilot, lambda: meter.rms_dbfs == -12.0)


async def test_help_opens_and_closes() -> None:
    app = make_app(RecordingController())
    async with app.run_test() as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "mute / unmute the microphone" in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_call_on_start_calls_at_once() -> None:
    controller = RecordingController()
    app = make_app(controller, settings_for(call_on_start=True))
    async with app.run_test() as pilot:
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert controller.names() == ["start"]


async def test_mic_consent_is_asked_once_and_remembered() -> None:
    saved: list[dict] = []
    controller = RecordingController()
    app = make_app(controller, settings_for(mic_consent_given=False),
                   config_saver=lambda path, updates: saved.append(dict(updates)))
    async with app.run_test() as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert "uses your microphone during calls" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert controller.calls == [] and saved == []
        await pilot.press("c", "y")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        assert saved == [{"mic_consent_given": True}]
        await pilot.press("h", "y")
        await until(pilot, lambda: app.status.state is CallState.ENDED)
        await pilot.press("c")
        await until(pilot, lambda: controller.names().count("start") == 2)
        assert len(saved) == 1


async def test_sigterm_hangs_up_and_exits() -> None:
    import os
    import signal

    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 130
    assert "aclose" in controller.names() and controller.state is CallState.ENDED


async def test_turkish_screen_has_no_english() -> None:
    controller = RecordingController()
    app = make_app(controller, settings_for("tr"))
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        text = screen_text(app)
        for turkish in ("Aramayı bitir", "Mikrofon açık", "Durum: Bağlı", "Siz"):
            assert turkish in text
        for english in ("Call", "Mic on", "State", "You", "Connected", "Quit", "Mute"):
            assert english not in text.replace("call_123", "")
        footer = " ".join(b.binding.description for b in app.active_bindings.values() if b.binding.show)
        assert "Sessiz" in footer and "Çık" in footer and "Quit" not in footer
        await pilot.click("#message-input")
        footer = " ".join(b.binding.description for b in app.active_bindings.values() if b.binding.show)
        assert "Yazmayı bırak" in footer and "Leave" not in footer


async def test_volume_meter_repaints_only_when_what_it_shows_changes() -> None:
    from textual.app import App, ComposeResult

    from wespoke_tui.ui.widgets.volume_meter import VolumeMeter

    class MeterApp(App[None]):
        def compose(self) -> ComposeResult:
            yield VolumeMeter("You", id="meter")

    app = MeterApp()
    async with app.run_test(size=(70, 3)) as pilot:
        meter = app.query_one(VolumeMeter)
        painted: list[str] = []
        paint = meter.paint

        def counting_paint(*args):  # type: ignore[no-untyped-def]
            strip = paint(*args)
            painted.append(strip.text)
            return strip

        meter.paint = counting_paint  # type: ignore[method-assign]
        meter.rms_dbfs, meter.peak_dbfs = -20.0, -20.0
        await pilot.pause()
        assert len(painted) == 1 and "-20 dBFS" in painted[-1]
        meter.rms_dbfs = -20.2  # same cells, same whole-dB reading: nothing to repaint
        await pilot.pause()
        assert len(painted) == 1
        meter.rms_dbfs = -35.0
        await pilot.pause()
        assert len(painted) == 2 and "-35 dBFS" in painted[-1]


async def test_the_call_clock_and_the_meters_repaint_their_widgets_not_the_whole_screen() -> None:
    """A whole-screen repaint re-renders every widget (a full compositor update): once a second
    for the clock, it was the TUI's largest single cost during a call."""
    controller = RecordingController()
    clock = FrozenClock()
    app = make_app(controller, clock=clock)
    async with app.run_test(size=(110, 32)) as pilot:
        await connected(pilot, controller)
        await pilot.pause()
        screen = app.screen
        whole_screen: list[dict[str, object]] = []
        refresh = screen.refresh

        def noting_refresh(*regions, **options):  # type: ignore[no-untyped-def]
            if not regions:
                whole_screen.append(options)
            return refresh(*regions, **options)

        screen.refresh = noting_refresh  # type: ignore[method-assign]
        for second in range(1, 4):
            clock.advance(1)
            app._tick_duration()
            controller.emit(MicLevel(-20.0 - second, -18.0, False), AssistantLevel(-30.0, -25.0))
            await pilot.pause()
        await until(pilot, lambda: "Time: 00:03" in status_text(app))
        assert "-23 dBFS" in widget_text(app.query_one("#mic-meter"))
        assert whole_screen == []


async def test_r_records_the_call_and_the_status_bar_says_so() -> None:
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test(size=(100, 32)) as pilot:
        assert app.call_screen.check_action("toggle_recording", ()) is False  # no call: nothing to record, not offered
        await pilot.press("r")
        assert ("set_recording", True) not in controller.calls
        await pilot.press("c")
        await until(pilot, lambda: app.status.state is CallState.CONNECTED)
        await pilot.press("r")
        await until(pilot, lambda: "● REC" in screen_text(app))
        assert app.status.recording
        assert "Recording to /recordings/call_123.wav" in toasts(app)
        await pilot.press("r")
        await until(pilot, lambda: "● REC" not in screen_text(app))
        assert not app.status.recording
        assert "Recording saved: /recordings/call_123.wav" in toasts(app)
        assert [c for c in controller.calls if c[0] == "set_recording"] == [("set_recording", True), ("set_recording", False)]


async def test_the_duration_tick_after_the_call_screens_widgets_are_gone_shows_nothing_and_raises_nothing() -> None:
    """At exit Textual takes the screen's widgets down while the app's one-second tick may still
    come (a traceback on a busy machine, seen in CI): the tick then has nothing to show on."""
    controller = RecordingController()
    app = make_app(controller)
    async with app.run_test() as pilot:
        await connected(pilot, controller)
        await app.call_screen.query("*").remove()
        app.status = dataclasses.replace(app.status, duration_s=app.status.duration_s + 1.0)  # what a tick does
        await pilot.pause()
        assert not app.call_screen.query(StatusBar)
