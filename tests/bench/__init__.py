"""Benchmarks of wespoke-tui against a bare-SDK baseline: `python -m tests.bench` writes BENCHMARKS.md.

Not part of the test suite (CI does not run it): figures from real runs on the local stack
(LiveKit server, local Wespoke API, echo assistant) and the PulseAudio rig.
"""
