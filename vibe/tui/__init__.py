"""The interactive Textual TUI: a consumer of the agent's event stream (no agent logic here)."""
