# One image for every jobledger service of compose.yaml: scheduler, worker, console, metrics.
FROM python:3.11-slim

# git for GIT sources; bubblewrap, the sandbox every job runs in; bash (SHELL jobs) and setpriv (util-linux:
# a job dies with its worker, and drops to the job user) are in the base.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/jobledger
COPY pyproject.toml README.md ./
COPY queue_core ./queue_core
COPY workers ./workers
COPY scheduler ./scheduler
RUN pip install --no-cache-dir . && rm -rf queue_core workers scheduler
COPY examples ./examples

# jobledger-job: the unprivileged user a worker running as root runs its jobs as (JOBLEDGER_JOB_USER).
RUN useradd --create-home --uid 10001 jobledger \
    && useradd --system --no-create-home --uid 10002 --shell /usr/sbin/nologin jobledger-job \
    && mkdir -p /var/lib/jobledger /workspace \
    && chown jobledger /var/lib/jobledger /workspace
USER jobledger
ENV JOBLEDGER_HOME=/var/lib/jobledger \
    JOBLEDGER_JOB_USER=jobledger-job \
    JOBLEDGER_WORKSPACE=/workspace \
    PYTHONUNBUFFERED=1
WORKDIR /workspace
EXPOSE 8080 9464
CMD ["jobledger", "--help"]
