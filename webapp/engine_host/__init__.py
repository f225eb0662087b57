"""The engine host: one owner per live cluster, its command log, clock and state versions.

- runtime.py: the engine cluster and the clients the host owns; deterministic, no Django.
- host.py: the asyncio owner of one live cluster (commands, clock, publishing).
- registry.py: the hosts of this process, started on demand under an ownership lease.
- leases.py: ownership leases (in-process, or Redis in scaled mode).
- store.py: the database side (clusters, command log).
- render.py: state version -> HTML fragments.
- client.py: how consumers and views reach a cluster's host through the channel layer.
"""
