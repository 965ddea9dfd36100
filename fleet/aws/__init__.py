"""Talking to AWS: the hub's credentials and each account's (refreshable, bound per call), TLS and endpoints, the
hub check, the account loop, the calls layer (politeness limits, retries, outages, the stop flag), the write-once
rule, Organizations' listing, and the edge's TLS check.

May import: the pure top modules of ``fleet`` and ``fleet.events``. Never ``migration``, ``state``, ``records``, ``cli``
or the sandbox: it knows nothing of rows' outcomes, state files or reports.
"""
