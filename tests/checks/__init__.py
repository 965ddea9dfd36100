"""The repository's own checks: layering and walls, references, the public surface, lint and types, packaging,
the locks and the IAM documents. No sandbox."""
