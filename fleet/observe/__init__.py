"""What watches a run without changing it: its facts (every domain's status and expiry, the exit code, the time),
Prometheus metrics (a textfile for node_exporter, or a Pushgateway), notifications when a person is needed, and
the read-only check (the watcher). Sinks here only read the run's events and result: a metric or a message that
cannot be delivered is logged, and the run's exit code stays what it was.

May import: ``state``, ``records``, ``aws`` (the hub identity for SNS, the plain-HTTP rule), ``migration`` (the
engine's Observer, RunResult), ``fleet.events`` and the pure top modules. Never ``cli`` or the sandbox.
"""
