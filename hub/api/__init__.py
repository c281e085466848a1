"""The FastAPI service. It changes state in the database; workers act on state."""
