# sqlgate over Streamable HTTP. Build: docker build -t sqlgate .
# Run:  docker run -p 8000:8000 -e SQLGATE_AUTH_TOKEN=... -e DATABASE_URL=... sqlgate
# Bound to 0.0.0.0, sqlgate refuses to start without a token (SQLGATE_AUTH_TOKEN or a mounted
# SQLGATE_AUTH_TOKEN_FILE) unless SQLGATE_ALLOW_UNAUTHENTICATED=true.

# --- build: a virtual environment with sqlgate and its runtime dependencies only
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/sqlgate
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/sqlgate/bin/pip install --no-cache-dir . \
    && find /opt/sqlgate -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: the venv, a non-root user, nothing else
FROM python:3.11-slim
RUN groupadd --system --gid 10001 sqlgate \
    && useradd --system --uid 10001 --gid sqlgate --create-home --home-dir /home/sqlgate sqlgate
COPY --from=build /opt/sqlgate /opt/sqlgate
ENV PATH=/opt/sqlgate/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SQLGATE_DATA_DIR=/home/sqlgate/data \
    SQLGATE_LOG_FORMAT=json \
    SQLGATE_PORT=8000
USER 10001:10001
WORKDIR /home/sqlgate
EXPOSE 8000
# Docker's contract: 0 healthy, 1 unhealthy (2 is reserved). `sqlgate health --docker` answers 0
# for healthy and degraded (a degraded sqlgate still serves calls; the reason is in the output),
# 1 when a database is unreachable or the HTTP listener (/healthz on SQLGATE_PORT) does not answer.
# Each probe has its own time limit (SQLGATE_HEALTH_TIMEOUT_S).
HEALTHCHECK --interval=30s --timeout=15s --start-period=15s --retries=3 CMD ["sqlgate", "health", "--docker", "--no-stats"]
# SIGTERM: in-flight calls finish (SQLGATE_SHUTDOWN_TIMEOUT_S), pools close, exit 0.
STOPSIGNAL SIGTERM
CMD ["sqlgate", "serve", "--transport", "streamable-http", "--host", "0.0.0.0"]
