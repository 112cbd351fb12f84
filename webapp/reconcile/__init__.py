"""The reconciler: jobs the broker lost sent again, and rows compared with the bucket's objects
(``manage.py reconcile``). Above cases, re-runs and model operations, whose jobs it checks."""
