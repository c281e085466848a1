"""The relay's use cases: scan, attest, deliver, confirm, supply watch. Celery tasks and the
embedded loop call these; state lives in the database, so any of them may run twice."""
