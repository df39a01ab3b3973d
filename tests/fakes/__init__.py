"""Test doubles at the project's boundary: the loopback fake LLM server (`tests.fakes.server`)
and the scenario format it shares with vibe.providers.scripted (`tests.fakes.script`)."""
