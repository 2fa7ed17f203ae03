"""The numbers policies keep, and where the metrics exporters find them.

The data flow: a policy counts on its own call path into plain numbers (``counters``:
``AtomicCounter`` for the lock-free success paths, ``Histogram`` under the policy's lock; the
call-level SLI per operation in ``calls``; an httpx transport's per-attempt series in ``http``),
and reports per event to ``observers`` (the OpenTelemetry histogram recorders, ``None`` until
an SDK is installed). ``live`` holds every live policy and transport weakly, with what the
readers need to know of each (a member of a pipeline, a transport's template). The exporters
(``seawall.metrics``) read ``live`` when scraped: each policy's ``snapshot()``, by snapshot
type, and its call-level stats; nothing here runs an exporter on a call's path.
"""
