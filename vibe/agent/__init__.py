"""The agent: a loop that turns a prompt into a stream of events, calling the model and tools."""
