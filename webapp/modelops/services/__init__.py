"""Writes for models, datasets and training runs. Every entry point (pages, REST API, commands, the
training worker) calls these; an expected failure is a `ModelOpsError` (`common.py`) whose message says what
to do and whose `status` the views answer."""
