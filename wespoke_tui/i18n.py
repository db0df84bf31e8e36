"""Every string the user sees, in Turkish and English.

Error messages are not here: they come with each `CallError` (`wespoke_tui.errors`).
`text(key, lang, **values)` formats one; a missing key is a bug the tests catch, so there
is no silent fallback to the key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from wespoke_tui.errors import Lang

STRINGS: dict[str, dict[Lang, str]] = {
    # Call states, as the status bar says them.
    "state.idle": {"tr": "Hazır", "en": "Ready"},
    "state.requesting_token": {"tr": "Jeton alınıyor…", "en": "Getting token…"},
    "state.connecting": {"tr": "Bağlanıyor…", "en": "Connecting…"},
    "state.connected": {"tr": "Bağlı", "en": "Connected"},
    "state.reconnecting": {"tr": "Yeniden bağlanıyor {attempt}/{max}", "en": "Reconnecting {attempt}/{max}"},
    "state.ending": {"tr": "Sonlandırılıyor…", "en": "Ending…"},
    "state.ended": {"tr": "Arama bitti", "en": "Call ended"},
    "state.failed": {"tr": "Başarısız", "en": "Failed"},
    # A text chat's states, where they differ from a call's.
    "chat_state.connecting": {"tr": "Sohbet başlatılıyor…", "en": "Starting the chat…"},
    "chat_state.connected": {"tr": "Sohbet açık", "en": "Chat open"},
    "chat_state.ended": {"tr": "Sohbet bitti", "en": "Chat ended"},
    # The assistant's state.
    "agent.initializing": {"tr": "hazırlanıyor", "en": "starting"},
    "agent.idle": {"tr": "boşta", "en": "idle"},
    "agent.listening": {"tr": "dinliyor", "en": "listening"},
    "agent.thinking": {"tr": "düşünüyor", "en": "thinking"},
    "agent.speaking": {"tr": "konuşuyor", "en": "speaking"},
    "agent.unknown": {"tr": "—", "en": "—"},
    "headless.record_deleted": {"tr": "Arama kaydı silindi", "en": "Call record deleted"},
    "headless.assistant_state": {"tr": "asistan: {state}", "en": "assistant: {state}"},
    "headless.recording": {"tr": "Kaydediliyor: {path}", "en": "Recording to {path}"},
    "headless.recording_saved": {"tr": "Kayıt kaydedildi: {path}", "en": "Recording saved: {path}"},
    "notice.cleared.MICROPHONE_SILENT": {"tr": "Mikrofondan yeniden ses geliyor.",
                                          "en": "The microphone gives sound again."},
    # Status bar labels.
    "status.state": {"tr": "Durum", "en": "State"},
    "status.duration": {"tr": "Süre", "en": "Time"},
    "status.call_id": {"tr": "Arama", "en": "Call"},
    "status.chat_id": {"tr": "Sohbet", "en": "Chat"},
    "status.recording": {"tr": "● KAYIT", "en": "● REC"},
    "status.quality": {"tr": "Kalite", "en": "Quality"},
    # The call-quality panel.
    "quality.title": {"tr": "Arama kalitesi", "en": "Call quality"},
    "quality.good": {"tr": "iyi", "en": "good"},
    "quality.fair": {"tr": "orta", "en": "fair"},
    "quality.poor": {"tr": "zayıf", "en": "poor"},
    "quality.level": {"tr": "Genel", "en": "Overall"},
    "quality.rtt": {"tr": "Gidiş-dönüş", "en": "Round trip"},
    "quality.jitter": {"tr": "Titreşim", "en": "Jitter"},
    "quality.loss": {"tr": "Paket kaybı", "en": "Packet loss"},
    "quality.bitrate": {"tr": "Gelen / giden", "en": "In / out"},
    "quality.buffer": {"tr": "Çalma tamponu", "en": "Playback buffer"},
    "quality.underruns": {"tr": "Kesinti (10 sn)", "en": "Underruns (10 s)"},
    "quality.aec": {"tr": "Yankı giderici", "en": "Echo canceller"},
    "quality.response": {"tr": "Son yanıt süresi", "en": "Last response"},
    "status.assistant": {"tr": "Asistan", "en": "Assistant"},
    "status.mic": {"tr": "Mikrofon", "en": "Mic"},
    "status.agent": {"tr": "Asistan durumu", "en": "Assistant is"},
    "status.latency": {"tr": "Gecikme", "en": "Latency"},
    "status.rate_limit": {"tr": "Kalan arama", "en": "Calls left"},
    "status.error": {"tr": "Hata", "en": "Error"},
    "status.none": {"tr": "—", "en": "—"},
    "mic.on": {"tr": "açık", "en": "on"},
    "mic.muted": {"tr": "kapalı", "en": "muted"},
    # Buttons.
    "button.call": {"tr": "Ara", "en": "Call"},
    "button.connecting": {"tr": "Bağlanıyor…", "en": "Connecting…"},
    "button.end_call": {"tr": "Aramayı bitir", "en": "End call"},
    "button.ending": {"tr": "Bitiriliyor…", "en": "Ending…"},
    "button.chat": {"tr": "Sohbet başlat", "en": "Start chat"},
    "button.end_chat": {"tr": "Sohbeti bitir", "en": "End chat"},
    "button.mic_on": {"tr": "Mikrofon açık", "en": "Mic on"},
    "button.mic_muted": {"tr": "Mikrofon kapalı", "en": "Mic muted"},
    # Meters.
    "meter.mic": {"tr": "Siz", "en": "You"},
    "meter.assistant": {"tr": "Asistan", "en": "Assistant"},
    "meter.muted_hint": {
        "tr": "Mikrofonunuz kapalı: konuşuyorsunuz ama sizi duymuyor. Açmak için m.",
        "en": "You are muted: you are talking but nobody hears you. Press m to unmute.",
    },
    # Transcript.
    "role.user": {"tr": "Siz", "en": "You"},
    "role.assistant": {"tr": "Asistan", "en": "Assistant"},
    "role.system": {"tr": "Sistem", "en": "System"},
    "role.tool": {"tr": "Araç", "en": "Tool"},
    "tool.start": {"tr": "araç çalışıyor: {name}", "en": "tool running: {name}"},
    "tool.complete": {"tr": "araç bitti: {name}", "en": "tool done: {name}"},
    "tool.failed": {"tr": "araç başarısız: {name}", "en": "tool failed: {name}"},
    "tool.delayed": {"tr": "araç gecikiyor: {name}", "en": "tool delayed: {name}"},
    "call_ending.notice": {"tr": "Asistan aramayı bitiriyor", "en": "The assistant is ending the call"},
    "knowledge.used": {"tr": "bilgi kaynağı: {sources}", "en": "knowledge used: {sources}"},
    "chat.reply_cut": {"tr": "[yanıt yarıda kesildi]", "en": "[reply cut off]"},
    "chat.empty": {
        "tr": "Sohbet burada görünecek. Başlatmak için c veya Enter; sesli arama için t.",
        "en": "The chat shows here. Press c or Enter to start it; t for a voice call.",
    },
    "chat.placeholder": {"tr": "Mesajınızı yazın, Enter ile gönderin", "en": "Write a message, Enter sends"},
    "transcript.empty": {
        "tr": "Konuşma burada görünecek. Aramak için c veya Enter.",
        "en": "The conversation shows here. Press c or Enter to call.",
    },
    "input.placeholder": {
        "tr": "Asistana yazın (arama sırasında), Enter ile gönderin",
        "en": "Type to the assistant (during a call), Enter sends",
    },
    # Bindings (footer and help).
    "key.call": {"tr": "Ara", "en": "Call"},
    "key.mute": {"tr": "Sessiz", "en": "Mute"},
    "key.hang_up": {"tr": "Kapat", "en": "Hang up"},
    "key.devices": {"tr": "Aygıtlar", "en": "Devices"},
    "key.help": {"tr": "Yardım", "en": "Help"},
    "key.quit": {"tr": "Çık", "en": "Quit"},
    "key.interrupt": {"tr": "Kapat ve çık", "en": "Hang up and quit"},
    "key.yes": {"tr": "Evet", "en": "Yes"},
    "key.no": {"tr": "Hayır", "en": "No"},
    "key.close": {"tr": "Kapat", "en": "Close"},
    "key.delete_record": {"tr": "Kaydı sil", "en": "Delete record"},
    "key.leave_input": {"tr": "Yazmayı bırak", "en": "Leave input"},
    "key.switch_mode": {"tr": "Sohbet/Ses", "en": "Chat/Voice"},
    "key.record": {"tr": "Kaydet", "en": "Record"},
    "key.quality": {"tr": "Kalite", "en": "Quality"},
    "key.call.chat": {"tr": "Sohbet", "en": "Chat"},
    "key.hang_up.chat": {"tr": "Sohbeti bitir", "en": "End chat"},
    # Toasts.
    "toast.connected": {"tr": "{name} ile bağlantı kuruldu", "en": "Connected to {name}"},
    "toast.reconnecting": {"tr": "Bağlantı koptu, yeniden bağlanılıyor ({attempt}/{max})…", "en": "Connection lost, reconnecting ({attempt}/{max})…"},
    "toast.reconnected": {"tr": "Yeniden bağlandı", "en": "Reconnected"},
    "toast.ending": {"tr": "Arama sonlandırılıyor…", "en": "Ending the call…"},
    "toast.ended": {"tr": "Arama sona erdi", "en": "The call has ended"},
    "toast.record_deleted": {"tr": "Arama kaydı silindi", "en": "The call's record was deleted"},
    "toast.chat_ended": {"tr": "Sohbet sona erdi", "en": "The chat has ended"},
    "toast.recording": {"tr": "Kaydediliyor: {path}", "en": "Recording to {path}"},
    "toast.recording_saved": {"tr": "Kayıt kaydedildi: {path}", "en": "Recording saved: {path}"},
    "toast.recording_unavailable": {"tr": "Şu an kaydedilemiyor: kayıt yalnız bağlı bir sesli aramada", "en": "Nothing to record now: only a connected voice call is recorded"},
    "toast.ending_chat": {"tr": "Sohbet sonlandırılıyor…", "en": "Ending the chat…"},
    "toast.not_in_chat": {"tr": "Sohbet açık değil. Başlatmak için c.", "en": "No chat open. Press c to start one."},
    "toast.mode_chat": {"tr": "Yazılı sohbet: mikrofon ve hoparlör kullanılmaz", "en": "Text chat: no microphone, no speaker"},
    "toast.mode_voice": {"tr": "Sesli arama", "en": "Voice call"},
    "toast.not_in_call": {"tr": "Arama yok. Mesaj göndermek için önce arayın.", "en": "No call. Start a call to send a message."},
    "toast.forced_exit": {"tr": "Çıkış zorlanıyor", "en": "Forcing exit"},
    "toast.devices_saved": {"tr": "Aygıtlar kaydedildi; bir sonraki aramada kullanılacak", "en": "Devices saved; they are used from the next call"},
    "toast.saved_config": {"tr": "Ayarlar kaydedildi: {path}", "en": "Settings saved to {path}"},
    "toast.save_failed": {"tr": "Ayarlar kaydedilemedi: {reason}", "en": "Could not save the settings: {reason}"},
    "assistant.unnamed": {"tr": "asistan", "en": "the assistant"},
    # Confirmation modal.
    "confirm.hang_up": {
        "tr": "Aramayı sonlandırmak istediğinizden emin misiniz?",
        "en": "Are you sure you want to end the call?",
    },
    "confirm.quit": {
        "tr": "Çıkmak aramayı sonlandırır. Aramayı sonlandırmak istediğinizden emin misiniz?",
        "en": "Quitting ends the call. Are you sure you want to end the call?",
    },
    "confirm.delete_record": {
        "tr": "Bu aramanın kaydı (döküm ve ses kaydı dahil) arama geçmişinden silinsin mi? Geri alınamaz.",
        "en": "Delete this call's record (transcript and recording included) from the call history? This cannot be undone.",
    },
    "confirm.delete_yes": {"tr": "Evet, sil (y)", "en": "Yes, delete it (y)"},
    "confirm.delete_no": {"tr": "Hayır, kalsın (n)", "en": "No, keep it (n)"},
    "confirm.yes": {"tr": "Evet, bitir (y)", "en": "Yes, end it (y)"},
    "confirm.no": {"tr": "Hayır, devam (n)", "en": "No, keep talking (n)"},
    "confirm.end_chat": {
        "tr": "Sohbeti sonlandırmak istediğinizden emin misiniz?",
        "en": "Are you sure you want to end the chat?",
    },
    "confirm.quit_chat": {
        "tr": "Çıkmak sohbeti sonlandırır. Emin misiniz?",
        "en": "Quitting ends the chat. Are you sure?",
    },
    # Microphone consent.
    "consent.title": {"tr": "Mikrofon", "en": "Microphone"},
    "consent.text": {
        "tr": "wespoke-tui arama sırasında mikrofonunuzu kullanır ve sesinizi asistana gönderir. "
        "Bu soru bir kez sorulur.",
        "en": "wespoke-tui uses your microphone during calls and sends your voice to the assistant. "
        "You are asked once.",
    },
    "consent.allow": {"tr": "İzin ver (y)", "en": "Allow (y)"},
    "consent.deny": {"tr": "Vazgeç (n)", "en": "Cancel (n)"},
    # Setup screen.
    "setup.title": {"tr": "wespoke-tui kurulumu", "en": "wespoke-tui setup"},
    "setup.intro": {
        "tr": "Arama yapmak için bir embed API anahtarı (pk_live_… veya pk_test_…) ve bir asistan kimliği gerekir.",
        "en": "A call needs an embed API key (pk_live_… or pk_test_…) and an assistant id.",
    },
    "setup.key_label": {"tr": "API anahtarı", "en": "API key"},
    "setup.assistant_label": {"tr": "Asistan kimliği", "en": "Assistant id"},
    "setup.save": {"tr": "{path} dosyasına kaydet (yalnız siz okuyabilirsiniz)", "en": "Save to {path} (readable by you only)"},
    "setup.continue": {"tr": "Devam", "en": "Continue"},
    "setup.demo": {"tr": "Demoyu dene", "en": "Try the demo"},
    "setup.quit": {"tr": "Çık", "en": "Quit"},
    "setup.demo_hint": {
        "tr": "Anahtarınız yok mu? wespoke-tui --demo, ağ ve anahtar olmadan yerleşik bir yankı asistanıyla çalışır.",
        "en": "No key yet? wespoke-tui --demo runs against a built-in echo assistant, no network and no key.",
    },
    "setup.bad_key": {
        "tr": "Anahtar pk_live_ veya pk_test_ ile başlamalı.",
        "en": "The key must start with pk_live_ or pk_test_.",
    },
    "setup.no_assistant": {"tr": "Asistan kimliği gerekli.", "en": "The assistant id is required."},
    # Devices screen.
    "devices.title": {"tr": "Ses aygıtları", "en": "Sound devices"},
    "devices.input": {"tr": "Mikrofon", "en": "Microphone"},
    "devices.output": {"tr": "Hoparlör", "en": "Speaker"},
    "devices.default": {"tr": "Sistem varsayılanı", "en": "System default"},
    "devices.test": {"tr": "Mikrofonu dene", "en": "Test microphone"},
    "devices.testing": {"tr": "Konuşun… {level}", "en": "Speak… {level}"},
    "devices.test_idle": {"tr": "Seviyeyi görmek için mikrofonu deneyin.", "en": "Test the microphone to see its level."},
    "devices.none": {"tr": "Hiç ses aygıtı bulunamadı.", "en": "No sound device found."},
    "devices.apply": {"tr": "Uygula", "en": "Apply"},
    "devices.cancel": {"tr": "Vazgeç", "en": "Cancel"},
    # Help screen.
    "help.title": {"tr": "Yardım", "en": "Help"},
    "help.intro": {
        "tr": "wespoke-tui ile bir Wespoke sesli asistanıyla terminalden konuşursunuz.",
        "en": "wespoke-tui lets you talk to a Wespoke voice assistant from your terminal.",
    },
    "help.keys": {"tr": "Tuşlar", "en": "Keys"},
    "help.close_hint": {"tr": "Kapatmak için Esc veya ?", "en": "Esc or ? closes this"},
    "help.call": {"tr": "aramayı başlat", "en": "start the call"},
    "help.mute": {"tr": "mikrofonu kapat / aç", "en": "mute / unmute the microphone"},
    "help.hang_up": {"tr": "aramayı bitir (onay sorulur)", "en": "end the call (asks first)"},
    "help.devices": {"tr": "mikrofon ve hoparlör seç, mikrofonu dene", "en": "pick microphone and speaker, test the mic"},
    "help.delete_record": {"tr": "arama bitince: kaydını geçmişten sil (onay sorulur)", "en": "after a call: delete its record from the history (asks first)"},
    "help.switch_mode": {"tr": "arama yokken: yazılı sohbet ile sesli arama arasında geç", "en": "when idle: switch between text chat and voice call"},
    "help.record": {"tr": "arama sırasında: kaydı başlat / durdur", "en": "during a call: start / stop a recording"},
    "help.quality": {"tr": "arama kalitesi panelini aç / kapat", "en": "show / hide the call-quality panel"},
    "help.help": {"tr": "bu yardım", "en": "this help"},
    "help.quit": {"tr": "çık (arama sürüyorsa önce onay)", "en": "quit (asks first during a call)"},
    "help.interrupt": {"tr": "aramayı hemen kapat ve çık", "en": "hang up and quit at once"},
    "help.input": {"tr": "alttaki kutuya yazıp Enter: asistana mesaj", "en": "type in the box below, Enter: message the assistant"},
    # Demo assistant.
    "demo.assistant_name": {"tr": "Yankı (demo)", "en": "Echo (demo)"},
    "demo.greeting": {
        "tr": "Merhaba! Bir şey söyleyin, tekrar edeyim.",
        "en": "Hi! Say something and I will repeat it.",
    },
    "demo.you_spoke": {"tr": "({seconds:.1f} sn konuştunuz)", "en": "(you spoke for {seconds:.1f} s)"},
    "demo.repeating": {"tr": "Söylediğinizi tekrar ediyorum…", "en": "Repeating what you said…"},
    "demo.repeated": {"tr": "Söylediğinizi tekrar ettim.", "en": "I repeated it back."},
    "demo.you_wrote": {"tr": "Şunu yazdınız: {text}", "en": "You wrote: {text}"},
    "demo.chat_greeting": {
        "tr": "Merhaba! Bir şey yazın, aynen geri yazayım.",
        "en": "Hi! Write something and I will write it back.",
    },
    "demo.banner": {"tr": "DEMO: ağ yok, yankı asistanı", "en": "DEMO: no network, echo assistant"},
}


def text(key: str, lang: Lang, **values: object) -> str:
    """The string for `key` in `lang`, formatted with `values`."""
    return Texts(lang)(key, **values)


class Texts:
    """A table of strings bound to one language, so a widget asks `self.t("key")`. The app's
    table is STRINGS; the scenario reports' (`scenario/texts.py`) is a subclass with its own."""

    strings: ClassVar[Mapping[str, Mapping[Lang, str]]] = STRINGS

    def __init__(self, lang: Lang) -> None:
        self.lang: Lang = lang

    def __call__(self, key: str, **values: object) -> str:
        template = self.strings[key][self.lang]
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        return key in self.strings
