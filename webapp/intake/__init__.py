"""Intake: bytes or a URL in, a checked photo out. ``photos`` (the entry: a file or a URL becomes a
``NormalizedImage`` or a refusal that says why), ``imaging`` (content-based validation and
re-encoding), ``quality`` (the retake gate), ``url_fetch`` and ``addresses`` (the SSRF-safe fetch),
``quota`` (the upload allowance). No models: nothing here is stored."""
