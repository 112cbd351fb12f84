"""Writes for cases, one module per action: ``uploads`` (a photo becomes a case), ``jobs`` (its
classification job and status transitions), ``predictions`` (recording answers), ``reviews`` and
``deletion``. Callers import from the module that does what they need."""
