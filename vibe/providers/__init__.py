"""Model providers: one streaming interface over the Mistral API, OpenAI-compatible servers
and the embedded engine. `make_provider` picks the implementation by backend name."""
