"""ToolError on its own (stdlib only), so a search worker process can start without pydantic."""


class ToolError(Exception):
    """Bad usage (bad arguments, missing file, no match); the message goes to the model."""
