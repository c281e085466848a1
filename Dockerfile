# The hub's image: API, workers and CLI share it; the command picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY hub hub
COPY adapters adapters
COPY relayers relayers
COPY migrations migrations
COPY alembic.ini ./
RUN uv sync --frozen --no-dev
ENV PATH=/opt/venv/bin:$PATH
EXPOSE 8000
CMD ["islands", "api", "--host", "0.0.0.0", "--port", "8000"]
