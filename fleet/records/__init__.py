"""What people and other tools read: the per-domain report (one writer, one reader), the change record (model,
Markdown, HTML), the plan file and its record, rollback manifests, and a past run's report from the history.

May import: ``state`` and the pure top modules. Never ``aws``, ``migration`` or ``cli``: a record is data.
"""
