"""SQLAlchemy models, engine and queries. No FastAPI, no Celery; helpers never commit."""
