# One image for every jobledger service of compose.yaml: scheduler, worker, console, metrics.
FROM python:3.11-slim

# git for GIT sources; bash (SHELL jobs) and setpriv (util-linux: a job dies with its worker) are in the base.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/jobledger
COPY pyproject.toml README.md ./
COPY queue_core ./queue_core
COPY workers ./workers
COPY scheduler ./scheduler
RUN pip install --no-cache-dir . && rm -rf queue_core workers scheduler
COPY examples ./examples

RUN useradd --create-home --uid 10001 jobledger \
    && mkdir -p /var/lib/jobledger /workspace \
    && chown jobledger /var/lib/jobledger /workspace
USER jobledger
ENV JOBLEDGER_HOME=/var/lib/jobledger \
    JOBLEDGER_WORKSPACE=/workspace \
    PYTHONUNBUFFERED=1
WORKDIR /workspace
EXPOSE 8080 9464
CMD ["jobledger", "--help"]
