"""`wespoke-tui test SCENARIO.toml`: scripted multi-turn calls against the deployed assistant,
with the real audio path, each answer checked and timed at the client.

    model.py   the scenario file and its validation (line-numbered errors, before any call)
    speech.py  the caller's voice: espeak-ng for `say`, WAV files for `say_wav`
    runner.py  one call per run: the scripted microphone, the answers waited for and measured
    report.py  the text report, the JSON report and the JUnit XML
"""
