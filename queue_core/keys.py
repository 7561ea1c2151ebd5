"""Every Redis key jobledger uses, built from named templates under one prefix."""

from __future__ import annotations

__all__ = ["Keys"]

PREFIX = "jobledger"


class Keys:
    """Key templates; ``namespace`` separates scratch read models from the live ones."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.log = f"{prefix}:log"
        self.dispatch_group = "dispatchers"
        # The notifiers' consumer group on the log (``scheduler/notifier.py``): they react to it apart.
        self.notify_group = "notifiers"
        self.dispatcher_leader = f"{prefix}:dispatcher:leader"
        self.epoch = f"{prefix}:epoch"
        # Set first and cleared last by an import, a restore or a rebuild: while it is there nothing is appended
        # (the append script checks it). Its holder renews the lease beside it; a dead holder's lapses.
        self.maintenance = f"{prefix}:maintenance"
        self.maintenance_lease = f"{prefix}:maintenance:lease"
        # Secret values: a hash outside the log that replay never reads; the log only names them.
        self.secrets = f"{prefix}:secrets"
        # A hash: where the log was trimmed (``before``) and the archive holding what was dropped.
        self.trim = f"{prefix}:trim"
        # A hash: the envelopes of trimmed log entries whose aggregates are still held here, by position.
        self.kept = f"{prefix}:kept"
        # A hash: the cold tier's folder and its manifest, a field per batch of Parquet files (``cold.py``).
        self.cold = f"{prefix}:cold"
        self.cold_merge_lock = f"{prefix}:cold:merge-lock"
        # A set: the aggregates compaction moved to the cold tier (their events are read from there).
        self.compacted = f"{prefix}:compacted"
        # rq-scheduler's registry of schedule wake-ups (a sorted set by next tick), a derived copy of the
        # schedules projection; under jobledger's prefix so the retry mover never moves a wake-up to a queue.
        self.timer_scheduled = f"{prefix}:timer:scheduled_jobs"
        self.timer_lock = f"{prefix}:timer:lock"
        self.timer_instances = f"{prefix}:timer:instance:"
        # Held by the one process rebuilding the live read models after an upgrade; the others wait.
        self.rebuild_lock = f"{prefix}:rebuild-lock"
        # A SCAN pattern matching every key jobledger holds in the store.
        self.everything = f"{prefix}:*"
        # Patterns of the keys one worker writes besides RQ's (for its ACL user): aggregates, leases, run logs.
        self.aggregates = f"{prefix}:at:*"
        # Held while the store's layout is brought up to this code's (``eventlog/layout.py``); and its layout.
        self.layout_lock = f"{prefix}:layout-lock"
        self.layout = f"{prefix}:layout"
        self.leases = f"{prefix}:lease:*"
        self.run_logs = f"{prefix}:runlog:*"
        # RQ's own keys (queues, jobs, registries, workers) and its workers' command channels: RQ builds them.
        self.rq_everything = "rq:*"
        self.rq_worker_channels = "rq:pubsub:*"
        # The field of an RQ job's hash where the dispatcher notes the attempt's priority, so that an attempt
        # going onto a queue finds its place among those already waiting there (``scheduler/priority_queue.py``).
        self.rq_job_priority_field = "jobledger_priority"
        self.rq_job_prefix = "rq:job:"

    def rq_workers_of(self, cluster: str) -> str:
        """RQ's registry of the workers listening on a cluster's queue (a set of their keys; RQ writes it)."""
        return f"rq:workers:{cluster}"

    def resource_blob(self, checksum: str) -> str:
        """The content of one resource version, by its sha256 (outside the log; the log holds the checksum)."""
        return f"{self.prefix}:resource-blob:{checksum}"

    def aggregate(self, aggregate_id: str) -> str:
        """The list of the log positions an aggregate's events sit at, oldest first: its length is its version."""
        return f"{self.prefix}:at:{aggregate_id}"

    def legacy_aggregate_stream(self, aggregate_id: str) -> str:
        """Where stores written before the position lists kept a copy of each aggregate's events (a stream)."""
        return f"{self.prefix}:agg:{aggregate_id}"

    def read_model(self, namespace: str, model: str) -> str:
        """The hash holding one read model's documents, by entity id."""
        return f"{self.prefix}:{namespace}:rm:{model}"

    def index(self, namespace: str, model: str, index: str) -> str:
        """A sorted set indexing one read model (score: the position the entity was created at)."""
        return f"{self.index_prefix(namespace)}{model}:{index}"

    def checkpoint(self, namespace: str) -> str:
        """The log position up to which the read models of ``namespace`` are folded."""
        return f"{self.prefix}:{namespace}:checkpoint"

    def folded_by(self, namespace: str) -> str:
        """The digest of the fold code that built the read models of ``namespace`` (see ``FOLD_VERSION``)."""
        return f"{self.prefix}:{namespace}:folded-by"

    def index_prefix(self, namespace: str) -> str:
        """What every index key of a read-model namespace starts with (``index`` adds ``MODEL:INDEX``)."""
        return f"{self.prefix}:{namespace}:ix:"

    def namespace_prefix(self, namespace: str) -> str:
        """What every key of a read-model namespace starts with."""
        return f"{self.prefix}:{namespace}:"

    def namespace_pattern(self, namespace: str) -> str:
        """A SCAN pattern matching every key of a read-model namespace."""
        return f"{self.namespace_prefix(namespace)}*"

    def lease(self, run_id: str, attempt: int) -> str:
        """The lease a worker keeps alive while it runs an attempt."""
        return f"{self.prefix}:lease:{run_id}:{attempt}"

    def deliveries(self, run_id: str, attempt: int) -> str:
        """How many times RQ handed a worker this attempt (a counter with a TTL, beside its lease)."""
        return f"{self.prefix}:lease:{run_id}:{attempt}:deliveries"

    def run_log(self, run_id: str) -> str:
        """The stream of a run's output lines (not events: it is not replayed)."""
        return f"{self.prefix}:runlog:{run_id}"
