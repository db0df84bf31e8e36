"""`wespoke-tui test SCENARIO.toml`, scripted calls: see README.md, "How the code is laid out"."""
