"""The words of the scenario reports people read (the text report, the GitHub step summary), in
Turkish and English, kept as i18n.py keeps the app's (its `Texts`, on this table): a key, both
languages, the same placeholders; a missing key is a bug the tests catch. JSON and JUnit reports
are for programs: their keys stay English and are not here. Failure messages come from the
checks, in English.
"""

from __future__ import annotations

from wespoke_tui.errors import Lang
from wespoke_tui.i18n import Texts

__all__ = ["REPORT_STRINGS", "Lang", "ReportTexts"]

REPORT_STRINGS: dict[str, dict[Lang, str]] = {
    "pass": {"en": "PASS", "tr": "GEÇTİ"},
    "fail": {"en": "FAIL", "tr": "KALDI"},
    "none": {"en": "—", "tr": "—"},
    "ms": {"en": "{value:.0f} ms", "tr": "{value:.0f} ms"},
    "seconds": {"en": "{value:.1f} s", "tr": "{value:.1f} sn"},
    "run": {"en": 'Scenario "{name}", run {run}: {verdict} (call {call}, {seconds})',
            "tr": '"{name}" senaryosu, {run}. çalıştırma: {verdict} (arama {call}, {seconds})'},
    "call_failed": {"en": "the call failed: {error}", "tr": "arama başarısız oldu: {error}"},
    "turn": {"en": "turn {number}: {what}", "tr": "{number}. tur: {what}"},
    "turn_line": {"en": "{title}: {verdict}  answer heard after {response}, text after {transcript}",
                  "tr": "{title}: {verdict}  yanıt {response} sonra duyuldu, metni {transcript} sonra geldi"},
    "assistant": {"en": "assistant: {said}", "tr": "asistan: {said}"},
    "tools": {"en": "tools: {tools}", "tr": "araçlar: {tools}"},
    "heard": {"en": 'the assistant heard: "{heard}" (word error rate {wer})',
              "tr": 'asistanın duyduğu: "{heard}" (kelime hata oranı {wer})'},
    "heard_nothing": {"en": "the assistant sent no transcript of the caller",
                      "tr": "asistan arayanın sözlerinin dökümünü göndermedi"},
    "stopped": {"en": "the assistant stopped {ms} after the caller began to speak{reported}",
                "tr": "asistan, arayan konuşmaya başladıktan {ms} sonra sustu{reported}"},
    "not_stopped": {"en": "the assistant did not stop{reported}", "tr": "asistan susmadı{reported}"},
    "reported": {"en": " (it reported the barge-in)", "tr": " (sözünün kesildiğini bildirdi)"},
    "audio": {"en": "audio: {finding}", "tr": "ses: {finding}"},
    "recording": {"en": "recording: {path}", "tr": "kayıt: {path}"},
    "totals": {"en": "{passed} of {runs} runs passed; {turns_passed} of {turns} turns passed",
               "tr": "{runs} çalıştırmanın {passed} tanesi geçti; {turns} turun {turns_passed} tanesi geçti"},
    "summary": {"en": 'Scenario "{name}": {passed} of {runs} runs passed ({rate})',
                "tr": '"{name}" senaryosu: {runs} çalıştırmanın {passed} tanesi geçti ({rate})'},
    "latency": {"en": "response times of {count} answers: p50 {p50}, p90 {p90}, p95 {p95}",
                "tr": "{count} yanıtın süreleri: p50 {p50}, p90 {p90}, p95 {p95}"},
    "no_latency": {"en": "no answer heard to time", "tr": "süresi ölçülecek yanıt duyulmadı"},
    "mean_wer": {"en": "mean word error rate: {wer}", "tr": "ortalama kelime hata oranı: {wer}"},
    "turn_summary": {"en": "{title}: passed {passed} of {runs} runs ({rate}); p50 {p50}, p90 {p90}, p95 {p95}",
                     "tr": "{title}: {runs} çalıştırmanın {passed} tanesinde geçti ({rate}); "
                           "p50 {p50}, p90 {p90}, p95 {p95}"},
    "turn_wer": {"en": "mean word error rate {wer}", "tr": "ortalama kelime hata oranı {wer}"},
    "audio_count": {"en": "audio findings: {findings}", "tr": "ses bulguları: {findings}"},
    "flaky": {"en": "FLAKY: passed in some runs and failed in others",
              "tr": "KARARSIZ: bazı çalıştırmalarda geçti, bazılarında kaldı"},
    "flaky_short": {"en": "FLAKY", "tr": "KARARSIZ"},
    "flaky_list": {"en": "flaky turns: {turns}", "tr": "kararsız turlar: {turns}"},
    "gate": {"en": "gate {gate} {op} {limit}: {value}, {verdict}", "tr": "eşik {gate} {op} {limit}: {value}, {verdict}"},
    "gate_met": {"en": "met", "tr": "karşılandı"},
    "gate_missed": {"en": "MISSED", "tr": "KAÇIRILDI"},
    "gate_audio": {"en": "audio checks that fail a turn: {checks} ({count} found)",
                   "tr": "turu kaldıran ses denetimleri: {checks} ({count} bulgu)"},
    "gate_audio_found": {"en": "the turns they are found in fail", "tr": "bulundukları turlar kalır"},
    "slower": {"en": "slower than the baseline: {title}: p50 {now}, was {before} (+{grew})",
               "tr": "temel ölçümden yavaş: {title}: p50 {now}, önceden {before} (+{grew})"},
    "baseline_none": {"en": "the baseline {path} has none of these turns to compare",
                      "tr": "temel ölçüm {path} bu turlardan hiçbirini içermiyor, karşılaştırılamadı"},
    "outcome": {"en": "Result: {outcome} (exit status {code})", "tr": "Sonuç: {outcome} (çıkış kodu {code})"},
    "outcome.passed": {"en": "passed", "tr": "geçti"},
    "outcome.failed": {"en": "failed: an expectation, a gate or the baseline was missed",
                       "tr": "kaldı: bir beklenti, bir eşik veya temel ölçüm tutmadı"},
    "outcome.infrastructure": {"en": "infrastructure failure: a call failed for a reason outside the assistant's "
                                     "answers, so the results cannot be trusted",
                               "tr": "altyapı hatası: bir arama asistanın yanıtları dışında bir nedenle başarısız "
                                     "oldu, sonuçlara güvenilemez"},
    "outcome.bad_file": {"en": "bad scenario file or usage: no call was made",
                         "tr": "hatalı senaryo dosyası veya kullanım: arama yapılmadı"},
    "outcome.interrupted": {"en": "interrupted", "tr": "yarıda kesildi"},
    # The GitHub step summary (Markdown).
    "md.title": {"en": "Scenario {name}: {outcome}", "tr": "Senaryo {name}: {outcome}"},
    "md.turn": {"en": "Turn", "tr": "Tur"},
    "md.pass_rate": {"en": "Pass rate", "tr": "Geçme oranı"},
    "md.wer": {"en": "WER", "tr": "Kelime hata oranı"},
    "md.failures": {"en": "Failures", "tr": "Hatalar"},
    "md.all_turns": {"en": "all turns", "tr": "tüm turlar"},
    "md.gate": {"en": "Gate", "tr": "Eşik"},
    "md.limit": {"en": "Limit", "tr": "Sınır"},
    "md.value": {"en": "Value", "tr": "Değer"},
    "md.verdict": {"en": "Verdict", "tr": "Karar"},
    "md.in_run": {"en": "run {runs}", "tr": "{runs}. çalıştırma"},
    "md.in_runs": {"en": "runs {runs}", "tr": "{runs}. çalıştırmalar"},
    "md.more": {"en": "and {count} more", "tr": "ve {count} tane daha"},
}


class ReportTexts(Texts):
    """The reports' strings bound to one language: `t("key", …)`."""

    strings = REPORT_STRINGS

    def ms(self, value: float | None) -> str:
        return self("none") if value is None else self("ms", value=value)

    def rate(self, value: float | None) -> str:
        return self("none") if value is None else f"{value:.0%}" if self.lang == "en" else f"%{value * 100:.0f}"

    def ratio(self, value: float | None) -> str:
        return self("none") if value is None else f"{value:.2f}"
