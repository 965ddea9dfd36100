"""The job: run and plan as one body with a kind (``pipeline``): the state's holds -> the AWS runtime (hub check)
-> lock -> state -> engine (supervised) -> report. The engine that schedules accounts and rows, one row's work (its
decision table, the steps: describe, certificate checks, the write, settling, the edge), stuck domains, the
allow-list, and what a run ends with.

May import: ``aws``, ``state``, ``records``, ``fleet.events`` and the pure top modules. Never ``cli`` or the sandbox.
"""
