"""The tests' kit: `events` (a controller's event stream, recorded, and waiting on it), `waiting`
(`eventually`: wait on a condition instead of sleeping) and `signals` (tones, WAVs, frequency and
level). `signals` needs only numpy and the standard library, so the stack's test assistant
(tests/stack/assistant.py, a process of its own) imports it too."""
