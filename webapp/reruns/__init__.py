"""Re-runs: an admin classifies chosen past cases again with a chosen model version, to see how it
would have answered. Above both ``cases`` (the photos) and ``modelops`` (the versions): neither
imports it."""
