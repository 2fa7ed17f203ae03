"""``import seawall`` stays cheap, and nothing a user sees changes for it.

What ``import seawall`` does not import (each child is a fresh interpreter), and what still
happens once the application imports those libraries: seawall's series in prometheus-client's
default registry, its instruments on OpenTelemetry's global meter provider, the version.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import pytest

import seawall
import seawall.metrics
from seawall import _on_import
from seawall.metrics import _multiprocess, _prometheus

HANG = 60.0

#: Costly to import, and needed only by some programs: never imported by ``import seawall``.
DEFERRED = (
    "prometheus_client",
    "opentelemetry",
    "opentelemetry.metrics",
    "importlib.metadata",
    "tenacity",
    "asyncio",
    "logging",
)


def python(*pieces: str, env_extra: dict[str, str] | None = None) -> str:
    """Run the script made of ``pieces`` (each dedented) in a fresh interpreter (warnings are
    errors there too), outside multiprocess mode unless ``env_extra`` sets it; its output."""
    script = "\n".join(textwrap.dedent(piece) for piece in pieces)
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env.update(env_extra or {})
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_seawall_imports_none_of_the_costly_modules() -> None:
    out = python(
        f"""
        import sys
        before = set(sys.modules)
        import seawall
        print(sorted(set({DEFERRED!r}) & (set(sys.modules) - before)))
        print(sorted(set({DEFERRED!r}) & before))
        """
    )
    imported, already = out.splitlines()
    assert imported == "[]", f"import seawall imported {imported}"
    assert already == "[]", f"the interpreter imported {already} at start: the test proves nothing"


def test_sync_calls_through_every_policy_import_neither_asyncio_nor_the_exporters() -> None:
    out = python(
        """
        import sys
        import seawall
        from seawall import Bulkhead, CircuitBreaker, Policy, Retry, Timeout

        policy = Policy(
            "sync",
            retry=Retry(on=ValueError, attempts=3, wait=0),
            breaker=True,
            attempt_timeout=1.0,
            bulkhead=2,
        )
        failures = iter([ValueError()])

        def flaky():
            for exc in failures:
                raise exc
            return "ok"

        assert policy.call(flaky) == "ok"
        for policy in (CircuitBreaker(name="b"), Timeout(1.0), Bulkhead(1)):
            try:
                policy.call(lambda: 1 / 0)
            except ZeroDivisionError:
                pass
        import seawall.testing
        loaded = {"asyncio", "prometheus_client", "opentelemetry", "importlib.metadata"}
        print(sorted(loaded & set(sys.modules)))
        """
    )
    assert out.split() == ["[]"]


def test_the_version_is_the_distributions() -> None:
    out = python(
        """
        import seawall
        print(seawall.__version__)
        from seawall import __version__
        print(__version__, "__version__" in dir(seawall))
        """
    )
    expected = importlib.metadata.version("seawall")
    assert out.split() == [expected, expected, "True"]
    assert seawall.__version__ == expected


def test_unknown_attributes_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        seawall.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="no_such_name"):
        seawall.metrics.no_such_name  # type: ignore[attr-defined]  # noqa: B018


PROMETHEUS_SCRAPE = """
    from prometheus_client import REGISTRY, generate_latest
    breaker.call(lambda: "ok")
    series = 'seawall_circuit_breaker_calls_total{outcome="success",policy="scraped"}'
    print([line.split()[-1] for line in generate_latest().decode().splitlines()
           if line.startswith(series + " ")])
    print(float(REGISTRY.get_sample_value(
        "seawall_circuit_breaker_calls_total", {"policy": "scraped", "outcome": "success"}
    )))
"""


@pytest.mark.parametrize(
    "first",
    [
        "import seawall",  # then the application imports prometheus_client
        "import prometheus_client; import seawall",
        "import seawall; import seawall.metrics._prometheus",
        "import seawall.metrics._multiprocess; import seawall",
        "import seawall; import opentelemetry.metrics",
    ],
)
def test_the_default_registry_shows_seawalls_series(first: str) -> None:
    out = python(
        f"""
        {first}
        import seawall
        breaker = seawall.CircuitBreaker(name="scraped")
        """,
        PROMETHEUS_SCRAPE,
    )
    assert out.split() == ["['1.0']", "1.0"]


def test_a_policy_made_before_prometheus_client_is_imported_is_scraped() -> None:
    out = python(
        """
        import sys
        import seawall
        breaker = seawall.CircuitBreaker(name="scraped")
        breaker.call(lambda: "ok")
        assert "prometheus_client" not in sys.modules
        """,
        PROMETHEUS_SCRAPE,
    )
    assert out.split() == ["['2.0']", "2.0"]


def test_configure_before_prometheus_client_is_imported_wins_over_the_default() -> None:
    out = python(
        """
        import sys
        import seawall
        from seawall.metrics import configure
        configure(prometheus=False)
        assert "prometheus_client" not in sys.modules  # nothing to switch off
        breaker = seawall.CircuitBreaker(name="scraped")
        from prometheus_client import CollectorRegistry, REGISTRY, generate_latest
        breaker.call(lambda: "ok")
        print("seawall" in generate_latest().decode())
        mine = CollectorRegistry()
        configure(prometheus=mine)
        print("seawall" in generate_latest().decode(), "seawall" in generate_latest(mine).decode())
        """
    )
    assert out.split() == ["False", "False", "True"]


OTEL_SDK = """
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    def install():
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        return reader

    def calls(reader):
        data = reader.get_metrics_data()
        if data is None:
            return []
        return [
            (scope.scope.name, point.value)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "seawall.circuit_breaker.calls"
            for point in metric.data.data_points
            if point.attributes.get("outcome") == "success"
        ]
"""


@pytest.mark.parametrize(
    "script",
    [
        # seawall first, then the SDK (the usual order): OTel imported after seawall.
        ("import seawall", OTEL_SDK, "reader = install()"),
        # the SDK installed before seawall is imported
        (OTEL_SDK, "reader = install()", "import seawall"),
        # seawall's OTel module imported (it imports the API) before anything else
        ("import seawall.metrics._otel", OTEL_SDK, "reader = install()", "import seawall"),
    ],
    ids=["seawall-first", "sdk-first", "private-module-first"],
)
def test_opentelemetry_gets_seawalls_instruments(script: tuple[str, ...]) -> None:
    out = python(
        *script,
        """
        breaker = seawall.CircuitBreaker(name="otel")
        breaker.call(lambda: "ok")
        print(calls(reader))
        """,
    )
    assert out.strip() == "[('seawall', 1)]"


def test_configure_otel_off_before_opentelemetry_is_imported_keeps_it_off() -> None:
    out = python(
        "import seawall, seawall.metrics",
        "seawall.metrics.configure(otel=False)",
        OTEL_SDK,
        """
        reader = install()
        seawall.CircuitBreaker(name="otel").call(lambda: "ok")
        print(calls(reader))
        """,
    )
    assert out.strip() == "[]"


def test_the_multiprocess_mirror_starts_at_import_without_prometheus_client(
    tmp_path: Path,
) -> None:
    out = python(
        "import seawall, sys\nprint(sys.modules['seawall.metrics._multiprocess'].enabled())",
        env_extra={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
    )
    assert out.split() == ["True"]


def test_the_lazy_names_are_the_modules_own() -> None:
    assert seawall.metrics.flush is _multiprocess.flush
    assert seawall.metrics.SeawallCollector is _prometheus.SeawallCollector
    assert {"flush", "SeawallCollector", "configure"} <= set(dir(seawall.metrics))


def test_the_watched_modules_keep_their_own_loaders() -> None:
    out = python(
        """
        import sys
        import seawall
        import prometheus_client, opentelemetry.metrics, tenacity
        for name in ("prometheus_client", "opentelemetry.metrics", "tenacity"):
            module = sys.modules[name]
            print(type(module.__loader__).__module__, type(module.__spec__.loader).__module__)
        print(any(type(f).__module__.startswith("seawall") for f in sys.meta_path))
        """
    )
    lines = out.splitlines()
    assert not any("seawall" in line for line in lines[:-1]), lines
    assert lines[-1] == "False"  # nothing is awaited any more: the finder is gone


def test_an_after_import_function_that_fails_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    name = "seawall_test_watched_module"
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    ran: list[int] = []

    def fails() -> None:
        raise RuntimeError("boom")

    def records() -> None:
        ran.append(sys.modules[name].VALUE)

    _on_import.after_import(name, fails)
    _on_import.after_import(name, records)
    assert _on_import.awaited(name)
    with caplog.at_level(logging.WARNING, logger="seawall"):
        module = __import__(name)
    assert module.VALUE == 1
    assert ran == [1]
    assert not _on_import.awaited(name)
    assert any("boom" in str(r.exc_info) for r in caplog.records)
    _on_import.after_import(name, records)  # imported: runs at once
    assert ran == [1, 1]


def test_retry_annotations_still_resolve() -> None:
    seawall.Retry(on=ValueError)
    hints = typing.get_type_hints(seawall.Retry.__init__)
    assert {"on", "wait", "stop"} <= set(hints)


@pytest.fixture
def watched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typing.Iterator[str]:
    """The name of a module, not imported yet, in a directory on ``sys.path``."""
    name = f"seawall_test_watched_{tmp_path.name.replace('-', '_')}"
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    with _on_import._lock:  # leave nothing waiting for it
        _on_import._waiting.pop(name, None)
        if not _on_import._waiting and _on_import._finder in sys.meta_path:
            sys.meta_path.remove(_on_import._finder)


def test_a_module_that_fails_to_import_is_watched_until_it_imports(
    watched: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{watched}.py"
    path.write_text("raise ImportError('not yet')\n")
    ran: list[str] = []
    _on_import.after_import(watched, lambda: ran.append("ran"))
    with pytest.raises(ImportError, match="not yet"):
        __import__(watched)
    assert ran == []
    assert _on_import.awaited(watched)
    path.write_text("VALUE = 2\n")
    importlib.invalidate_caches()
    assert __import__(watched).VALUE == 2
    assert ran == ["ran"]


def test_the_watching_loader_is_the_modules_own_to_everyone_else(
    watched: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{watched}.py"
    path.write_text("VALUE = 3\n")
    _on_import.after_import(watched, lambda: None)
    spec = importlib.util.find_spec(watched)
    assert spec is not None
    assert spec.loader is not None
    assert spec.loader.get_filename(watched) == str(path)  # type: ignore[attr-defined]
    assert not spec.loader.is_package(watched)  # type: ignore[attr-defined]
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.VALUE == 3
    assert module.__loader__ is module.__spec__.loader
    assert type(module.__loader__).__module__ != _on_import.__name__
    assert not _on_import.awaited(watched)


def test_a_module_no_finder_finds_is_left_to_the_import_system(watched: str) -> None:
    _on_import.after_import(watched, lambda: None)
    with pytest.raises(ModuleNotFoundError):
        __import__(watched)
    assert _on_import.awaited(watched)


def test_the_import_watcher_never_changes_the_finder_list_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread's import walks the list ``sys.meta_path`` names while it searches: a
    finder inserted or removed in place would shift it under that walk and make it skip a
    finder (an import of an existing module failing). The watcher replaces the list."""
    import importlib

    from seawall import _on_import

    (tmp_path / "seawall_watched_module.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    # Nothing else awaited, the watcher out: this import puts it in and takes it out.
    monkeypatch.setattr(_on_import, "_waiting", {})
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if f is not _on_import._finder])
    walking = sys.meta_path  # the list an import in another thread would be walking
    seen = list(walking)
    ran: list[str] = []
    try:
        _on_import.after_import("seawall_watched_module", lambda: ran.append("ran"))
        assert sys.meta_path is not walking  # the watcher went in: into a new list
        assert walking == seen
        during = sys.meta_path
        entries = list(during)
        importlib.import_module("seawall_watched_module")
        assert ran == ["ran"]
        assert during == entries  # and out: again a new list
    finally:
        sys.modules.pop("seawall_watched_module", None)
