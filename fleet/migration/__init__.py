"""The job: manifest -> hub check -> lock -> state -> engine (supervised) -> report. The pipeline, the engine that
schedules accounts and rows, one row's work (describe, certificate checks, the write, settling, the edge), stuck
domains, the allow-list, and what a run ends with.

May import: ``aws``, ``state``, ``records``, ``fleet.events`` and the pure top modules. Never ``cli`` or the sandbox.
"""
