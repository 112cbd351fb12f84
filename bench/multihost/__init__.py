"""The portal across hosts: web, inference, training and the services each on a network namespace of its
own (`python -m bench.multihost`; docs/performance.md "Across hosts")."""
