"""`vibe serve`: the embedded engine as an OpenAI-compatible HTTP server with continuous
batching. Imported only by `vibe serve` (starlette, uvicorn and torch load lazily)."""
