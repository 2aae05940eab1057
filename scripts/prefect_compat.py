#!/usr/bin/env python
"""Run Prefect 1.4.1's own test modules against flowrun through a `prefect` import alias.

    python scripts/prefect_compat.py /path/to/prefect-1.4.1-checkout [--modules core/test_edge.py]

Give it a checkout of PrefectHQ/prefect at tag 1.4.1 (its `tests/` folder; the PyPI sdist
has none). Nothing is fetched and no Prefect code is copied into this repository: the
script writes a scratch folder with
- an import alias (a meta-path finder: `prefect.X` *is* the module `flowrun.X`; names of
  out-of-scope Prefect parts such as `prefect.client` or `prefect.storage` resolve to
  stand-ins whose use fails the test),
- a minimal conftest with Prefect's executor fixtures (local, sync, mthread, mproc, ...),
- the selected test modules, copied unchanged,
then runs pytest per module with this interpreter and prints passed/failed per module.
Prefect's test dependencies (pendulum, testfixtures, freezegun, flaky, responses, toml)
must be importable; `--deps DIR` adds a folder of them to the path. `--report DIR`
re-counts JUnit reports left by an earlier run instead of running anything.

Tests of pure internals and of out-of-scope features are not counted (EXCLUDED below,
listed in docs/prefect-compat.md); the last column gives passed / counted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

MODULES = [
    "core/test_flow.py",
    "core/test_task.py",
    "core/test_task_map.py",
    "core/test_edge.py",
    "core/test_parameter.py",
    "core/test_task_operators.py",
    "engine/test_flow_runner.py",
    "engine/test_task_runner.py",
    "engine/test_state.py",
    "engine/test_signals.py",
    "engine/test_cache_validators.py",
    "executors/test_executors.py",
    "test_triggers.py",
    "test_context.py",
]

ALIAS = """
import importlib, importlib.abc, importlib.util, sys

OUT_OF_SCOPE = {
    "client", "run_configs", "configuration", "utilities.configuration", "storage",
    "serialization", "serialization.state", "serialization.task", "serialization.flow",
    "tasks.secrets", "utilities.serialization", "backend", "agent", "artifacts",
    "environments", "engine.cloud",
}


class OutOfScope:
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise RuntimeError("out of scope for flowrun (Cloud/server/config/storage/run-config)")

    def __call__(self, *args, **kwargs):
        raise RuntimeError("out of scope for flowrun (Cloud/server/config/storage/run-config)")


class StubModule(type(sys)):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (OutOfScope,), {})


class _Stub(importlib.abc.Loader):
    def create_module(self, spec):
        module = StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class _Alias(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.saved = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.saved


class PrefectAlias(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "prefect" and not fullname.startswith("prefect."):
            return None
        real = "flowrun" + fullname[len("prefect"):]
        try:
            found = importlib.util.find_spec(real)
        except ModuleNotFoundError:
            found = None
        if found is None:
            if fullname[len("prefect."):] in OUT_OF_SCOPE:
                return importlib.util.spec_from_loader(fullname, _Stub(), is_package=True)
            return None
        is_pkg = found.submodule_search_locations is not None
        return importlib.util.spec_from_loader(fullname, _Alias(real), is_package=is_pkg)


def install():
    if not any(isinstance(f, PrefectAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, PrefectAlias())
"""

CONFTEST = """
import importlib
import pytest
from distributed import Client
import prefect_alias
import prefect
from prefect.executors import DaskExecutor, LocalDaskExecutor, LocalExecutor

for name in ("storage", "run_configs", "client", "serialization", "backend", "agent",
             "configuration"):
    if not hasattr(prefect, name):
        setattr(prefect, name, importlib.import_module(f"prefect.{name}"))
for name in ("config", "Client"):
    if not hasattr(prefect, name):
        setattr(prefect, name, prefect_alias.StubModule(name))

_pytest_warns = pytest.warns


def _warns(expected_warning=Warning, *args, **kwargs):
    # pytest 8 dropped `pytest.warns(None)` (record, check nothing); Prefect's tests use it.
    if expected_warning is None and not args and not kwargs:
        from _pytest.recwarn import WarningsRecorder
        return WarningsRecorder(_ispytest=True)
    return _pytest_warns(expected_warning, *args, **kwargs)


pytest.warns = _warns


@pytest.fixture(scope="session")
def mthread():
    with Client(processes=False, scheduler_port=0, dashboard_address=":0",
                n_workers=1, threads_per_worker=2) as client:
        yield DaskExecutor(client.scheduler.address)


@pytest.fixture(scope="session")
def mproc():
    with Client(processes=True, scheduler_port=0, dashboard_address=":0",
                n_workers=2, threads_per_worker=1) as client:
        yield DaskExecutor(client.scheduler.address)


@pytest.fixture()
def local():
    yield LocalExecutor()


@pytest.fixture()
def sync():
    yield LocalDaskExecutor(scheduler="sync")


@pytest.fixture()
def mproc_local():
    yield LocalDaskExecutor(scheduler="processes")


@pytest.fixture()
def threaded_local():
    yield LocalDaskExecutor(scheduler="threads")


@pytest.fixture()
def _switch(request):
    return request.getfixturevalue


@pytest.fixture()
def executor(request, _switch):
    return _switch(request.param)
"""


# Cases deselected per module (pytest -k), with why: they hang in this harness.
DESELECT = {"core/test_task_map.py": "not mproc"}  # a cluster of worker processes per test

# Tests not counted, with why (matched against "Class::test_name" of each module's tests).
STEP_CLASSES = (
    "TestInitializeRun|TestCheckUpstreamFinished|TestCheckUpstreamSkipped|TestCheckTaskTrigger"
    "|TestCheckTaskReady|TestGetTaskInputs|TestCheckTaskCached|TestSetTaskRunning"
    "|TestRunTaskStep|TestCheckRetryStep|TestCacheResultStep|TestTargetExistsStep"
    "|TestCheckScheduledStep|TestCheckTaskReadyToMapStep|TestCheckFlowPendingOrRunning"
    "|TestSetFlowToRunning|TestRunFlowStep"
)
EXCLUDED = [
    (r"^(" + STEP_CLASSES + r")::", "internals: calls one runner pipeline step directly"),
    (r"(?i)serializ|schema|SerializedHash", "out of scope: Cloud/server serialization"),
    (r"(?i)register|storage|run_config|LocalRun|UniversalRun|TestSaveLoad", "out of scope"),
    (r"(?i)cloud|client|secret|heartbeat|diagnostic|backend", "out of scope: Cloud/server"),
    (r"(?i)config", "out of scope: Prefect's global configuration (flowrun has none)"),
    (r"(?i)visuali[sz]e|graphviz", "out of scope: graphviz rendering"),
    (r"(?i)load_result|load_cached_results|TestResultInterface", "internals: _result wrappers"),
    (r"^TestCache::", "internals: the keys of Prefect's private Flow._cache memo dict"),
    (r"(?i)agent", "out of scope: agents"),
]


def prepare(checkout: Path, modules: list[str], scratch: Path) -> None:
    (scratch / "alias").mkdir(parents=True)
    (scratch / "alias" / "prefect_alias.py").write_text(ALIAS)
    # Installed in every interpreter started with this path (Dask worker processes too).
    (scratch / "alias" / "sitecustomize.py").write_text(
        "import prefect_alias\nprefect_alias.install()\n"
    )
    tests = scratch / "tests"
    for module in modules:
        target = tests / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(checkout / "tests" / module, target)
    for folder in {tests, *(p.parent for p in tests.rglob("test_*.py"))}:
        (folder / "__init__.py").touch()
    (tests / "conftest.py").write_text(CONFTEST)


def excluded(case: ET.Element) -> str | None:
    """Why a test is not counted, or None when it counts."""
    # The test's own name, without its parameter ids (they name states such as ClientFailed).
    test = case.get("name", "").split("[", 1)[0]
    name = case.get("classname", "").rsplit(".", 1)[-1] + "::" + test
    if not name.split("::")[0].startswith("Test"):
        name = name.split("::", 1)[1]
    return next((why for pattern, why in EXCLUDED if re.search(pattern, name)), None)


def count(report: Path) -> tuple[int, int, int, int, int]:
    """(passed, failed, skipped, in-scope passed, in-scope counted) from a JUnit report."""
    passed = failed = skipped = scope_passed = scope_total = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        if case.find("skipped") is not None:
            outcome = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        passed += outcome == "passed"
        failed += outcome == "failed"
        skipped += outcome == "skipped"
        if outcome != "skipped" and excluded(case) is None:
            scope_total += 1
            scope_passed += outcome == "passed"
    return passed, failed, skipped, scope_passed, scope_total


def run(
    scratch: Path, module: str, deps: str | None, timeout: int
) -> tuple[int, int, int, int, int]:
    report = scratch / (module.replace("/", "_") + ".xml")
    paths = [str(scratch / "alias"), str(scratch)] + ([deps] if deps else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--timeout",
        "30",
        f"--junitxml={report}",
        f"tests/{module}",
    ]
    if module in DESELECT:
        command += ["-k", DESELECT[module]]
    try:
        subprocess.run(
            command, check=False, cwd=scratch, env=env, timeout=timeout, capture_output=True
        )
    except subprocess.TimeoutExpired:
        print(f"{module}: stopped after {timeout}s", file=sys.stderr)
    if not report.exists():
        return 0, 0, 0, 0, 0
    return count(report)


def recount(folder: Path) -> None:
    print("| report | passed | failed | skipped | in scope: passed / counted |")
    print("|---|---:|---:|---:|---:|")
    for report in sorted(folder.glob("*.xml")):
        row = count(report)
        print(f"| {report.stem} | {row[0]} | {row[1]} | {row[2]} | {row[3]} / {row[4]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path, help="PrefectHQ/prefect at tag 1.4.1")
    parser.add_argument("--modules", nargs="*", default=MODULES)
    parser.add_argument("--deps", help="a folder holding Prefect's test dependencies")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per module")
    parser.add_argument("--report", type=Path, help="re-count the JUnit XML files in DIR")
    args = parser.parse_args()
    if args.report is not None:
        recount(args.report)
        return
    if not (args.checkout / "tests" / "core").is_dir():
        parser.error(f"{args.checkout} has no tests/core: give a git checkout of tag 1.4.1")
    with tempfile.TemporaryDirectory(prefix="prefect-compat-") as tmp:
        scratch = Path(tmp)
        prepare(args.checkout, args.modules, scratch)
        print("| module | passed | failed | skipped | in scope: passed / counted |")
        print("|---|---:|---:|---:|---:|")
        totals = [0, 0, 0, 0, 0]
        for module in args.modules:
            row = run(scratch, module, args.deps, args.timeout)
            totals = [a + b for a, b in zip(totals, row, strict=True)]
            print(
                f"| {module} | {row[0]} | {row[1]} | {row[2]} | {row[3]} / {row[4]} |", flush=True
            )
        share = 100 * totals[3] / max(totals[4], 1)
        print(
            f"| total | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} / {totals[4]} "
            f"({share:.0f} %) |"
        )


if __name__ == "__main__":
    main()
