"""docs/reliability.md: the figures of ../shared/reliability.md, from runs made by this one command.

    make reliability                         # tests, every fault scenario and the load run (~40 min)
    .venv/bin/python -m bench.reliability    # the tests' figures; faults and load from their last runs

It runs the test modules that count crafted inputs, SSRF payloads, access-control cells, audited
reads and API contract cases (schemathesis with API_CONTRACT_EXAMPLES examples per operation, drawn
afresh), reads their JUnit report, and adds the fault scenarios (docs/benchmarks/faults.json, from
`python -m bench.faults`) and the load run (docs/benchmarks/load.json, from `python -m
bench.mixed_load`), each with its own date and command. With --faults and --load it runs those too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "reliability.md"
FIGURES = ROOT / "docs" / "benchmarks" / "reliability.json"
FAULTS = ROOT / "docs" / "benchmarks" / "faults.json"
LOAD = ROOT / "docs" / "benchmarks" / "load.json"
JUNIT = ROOT / "var" / "reliability" / "junit.xml"

MODULES = [
    "tests/webapp/test_imaging.py",
    "tests/webapp/test_crafted_uploads.py",
    "tests/webapp/test_url_fetch.py",
    "tests/webapp/test_access_matrix.py",
    "tests/webapp/test_access_control.py",
    "tests/webapp/test_audit.py",
    "tests/webapp/test_login_throttle.py",
    "tests/webapp/test_upload_quota.py",
    "tests/webapp/test_outages.py",
    "tests/webapp/test_api_contract.py",
]
# Tests whose cases are crafted or mutated inputs, each of which must be refused or made safe.
CRAFTED = (
    "test_crafted_input_is_rejected_with_a_plain_message",
    "test_fuzzed_file_is_normalized_or_rejected",
    "test_crafted_file_through_the_form",
    "test_crafted_file_through_the_api",
    "test_hostile_file_names_never_reach_the_storage_key",
    "test_decompression_bomb_is_refused_before_decoding",
    "test_truncated_png_is_rejected",
    "test_polyglot_jpeg_html_is_stored_without_any_html",
)


@dataclass
class Case:
    module: str
    name: str
    outcome: str  # passed, failed, error, skipped
    properties: dict[str, int] = field(default_factory=dict)


def run_tests(examples: int) -> int:
    JUNIT.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "API_CONTRACT_EXAMPLES": str(examples)}
    command = [sys.executable, "-m", "pytest", *MODULES, "-q", "-p", "no:cacheprovider",
               f"--junitxml={JUNIT}", "-o", "junit_family=xunit1"]  # fmt: skip
    print("running:", " ".join(command[2:]), flush=True)
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def read_junit(path: Path) -> list[Case]:
    cases = []
    for element in ET.parse(path).iter("testcase"):  # noqa: S314  (our own pytest report)
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            if element.find(kind) is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
        properties = {
            p.get("name"): int(p.get("value"))
            for p in element.iter("property")
            if (p.get("value") or "").isdigit()
        }
        module = (element.get("classname") or "").rsplit(".", 1)[-1]
        cases.append(Case(module, element.get("name", ""), outcome, properties))
    return cases


def _base(name: str) -> str:
    return name.split("[", 1)[0]


def suite_figures(cases: list[Case], examples: int) -> dict:
    crafted = [c for c in cases if _base(c.name) in CRAFTED]
    access = [
        c for c in cases if "access_cells" in c.properties or c.module == "test_access_control"
    ]
    contract = [c for c in cases if c.module == "test_api_contract"]

    def total(key: str) -> int:
        return sum(c.properties.get(key, 0) for c in cases)

    outcomes = Counter(c.outcome for c in cases)
    return {
        "tests": dict(outcomes),
        "crafted_inputs": {
            "tried": len(crafted),
            "rejected_or_made_safe": sum(c.outcome == "passed" for c in crafted),
            "crashed_or_wrong": sum(c.outcome in ("failed", "error") for c in crafted),
        },
        "ssrf": {
            "payloads_tried": total("ssrf_tried"),
            "blocked": total("ssrf_blocked"),
            "listener_hits": total("ssrf_listener_hits"),
        },
        "access_control": {
            "cells_tested": total("access_cells"),
            "other_checks": sum("access_cells" not in c.properties for c in access),
            "unexpected_allows": sum(c.outcome in ("failed", "error") for c in access),
        },
        "audit": {
            "patient_data_requests": total("patient_data_requests"),
            "audit_rows": total("audit_rows"),
        },
        "api_contract": {
            "operations": len(contract),
            "examples_per_operation": examples,
            "failing_operations": sum(c.outcome in ("failed", "error") for c in contract),
        },
    }


def _fault_table(faults: dict) -> list[str]:
    rows = [
        "| scenario | submitted | completed | failed with a reason | lost | duplicated | "
        "most deliveries | 5xx | drained after | mismatches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in faults.values():
        drained = r.get("fault_over_to_drained_s")
        rows.append(
            f"| {r['scenario']}: {r['what']} | {r['submitted']} | {r['completed']} | "
            f"{r['failed_with_reason']} | {r['lost']} | {r['duplicated']} | "
            f"{r['most_deliveries_of_one_job']} | {r['server_errors_500']} | "
            f"{'-' if drained is None else f'{drained:.0f} s'} | "
            f"{r['mismatched_rows_and_objects']} |"
        )
    return rows


def _fault_notes(faults: dict) -> list[str]:
    skip = {"scenario", "what", "submitted", "accepted", "completed", "failed_with_reason",
            "lost", "duplicated", "most_deliveries_of_one_job", "server_errors_500",
            "fault_over_to_drained_s", "mismatched_rows_and_objects", "refused",
            "jobs_delivered_more_than_once", "date", "machine", "command"}  # fmt: skip
    lines = []
    for r in faults.values():
        facts = ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in r.items() if k not in skip and k != "answers"
        )
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("answers", {}).items()))
        lines.append(
            f"- **{r['scenario']}** (`{r['command']}`, {r['date']}, {r['machine']}): {facts}; "
            f"answers to the uploads' tries: {answers}; jobs delivered more than once "
            f"{r['jobs_delivered_more_than_once']}."
        )
    return lines


def _input_lines(t: dict) -> list[str]:
    """Bad input, SSRF, access control, audit and the API contract."""
    return [
        "## Bad input, SSRF, access control, audit, API contract",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| crafted inputs tried (bombs, truncated, polyglots, lying types, hostile names, "
        f"fuzzed JPEG/PNG/WebP) | {t['crafted_inputs']['tried']} |",
        f"| … refused with a 4xx and a reason, or made safe | "
        f"{t['crafted_inputs']['rejected_or_made_safe']} |",
        f"| … crashed or answered wrongly | {t['crafted_inputs']['crashed_or_wrong']} |",
        f"| SSRF payloads tried | {t['ssrf']['payloads_tried']} |",
        f"| … blocked | {t['ssrf']['blocked']} |",
        f"| … hits on the loopback listeners | {t['ssrf']['listener_hits']} |",
        f"| access-control cells tested (route x caller: 5 users and anonymous; push channel "
        f"per caller) | {t['access_control']['cells_tested']} |",
        f"| other access-control checks (lists, searches, fields a client cannot set) | "
        f"{t['access_control']['other_checks']} |",
        f"| unexpected allows (failed access tests) | {t['access_control']['unexpected_allows']} |",
        f"| patient-data requests in the matrix (answered or refused) | "
        f"{t['audit']['patient_data_requests']} |",
        f"| … audit rows they wrote | {t['audit']['audit_rows']} |",
        f"| API operations checked by schemathesis (all checks), "
        f"{t['api_contract']['examples_per_operation']} examples each | "
        f"{t['api_contract']['operations']} |",
        f"| … operations with a server error or a contract failure | "
        f"{t['api_contract']['failing_operations']} |",
        "",
    ]


def _load_lines(load: dict | None) -> list[str]:
    """The mixed-load run's figures."""
    if not load:
        return ["No load run yet: `python -m bench.mixed_load`."]
    memory = ", ".join(f"{k} {v:.0f}" for k, v in load["memory_rss_mb"].items())
    return [
        f"`{load['command']}`, {load['date']}, {load['machine']}; model: {load['model']}; "
        f"{load['patients']} simulated patients for {load['seconds']:.0f} s, each uploading, "
        "waiting for the pushed result, opening the results page and reading the API, while "
        "a clinic imports a backlog of photos through the API.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| patients' uploads per second (each waiting for its result) | "
        f"{load['uploads_per_second']} |",
        f"| a clinic's import meanwhile: photos, accepted per second | "
        f"{load['backlog_uploads']}, {load['backlog_accepted_per_second']} |",
        f"| all uploads classified per second, until the last finished | "
        f"{load.get('all_uploads_per_second', '-')} |",
        f"| uploads of the import not finished | {load['backlog_not_finished']} |",
        f"| time to accept, p50 / p95 | {load['accept_p50_ms']} / {load['accept_p95_ms']} ms |",
        f"| time to pushed result, p50 / p95 | {load['result_p50_ms']} / "
        f"{load['result_p95_ms']} ms |",
        f"| uploads without a pushed result | {load['no_result_pushed']} |",
        f"| 5xx answers | {load['server_errors_5xx']} |",
        f"| deepest inference queue | {load['deepest_inference_queue']} |",
        "",
        "Answers: " + ", ".join(f"{k}: {v}" for k, v in load["answers"].items()) + ".",
        "",
        f"Memory at the end (RSS, MB): {memory}.",
    ]


def markdown(figures: dict, faults: dict, load: dict | None, run: dict) -> str:
    t = figures
    lines = [
        "# Reliability and security figures",
        "",
        "Generated by `python -m bench.reliability` (the command below); do not edit by hand. "
        "Each case of ../shared/reliability.md is a test in the suite or a script with its own "
        "command, against the real services (PostgreSQL, Valkey/Redis, SeaweedFS, Celery "
        "worker processes, gunicorn and uvicorn).",
        "",
        f"Tests: `{run['command']}`, {run['date']}, {run['machine']}: "
        + ", ".join(f"{n} {k}" for k, n in sorted(t["tests"].items()))
        + ".",
        "",
        *_input_lines(t),
        "## Faults: a stream of uploads, a fault while it runs",
        "",
        "Each scenario starts a fresh portal (`bench.portal`), streams uploads through the API "
        "with an idempotency key each (a client retries refused tries with the same key), strikes, "
        "then waits until every accepted upload has finished. Lost: accepted, never finished. "
        "Duplicated: two cases for one key, or two predictions for one case. Most deliveries: "
        "the most claims of one job that never ended (a worker died holding it) plus one. "
        "Mismatches: `manage.py reconcile --check-objects` at the end.",
        "",
        *(_fault_table(faults) if faults else ["No fault run yet: `python -m bench.faults`."]),
        "",
        *_fault_notes(faults),
        "",
        "## Load",
        "",
    ]
    lines += _load_lines(load)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reliability", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--faults", action="store_true", help="run every fault scenario first")
    parser.add_argument("--load", action="store_true", help="run the load script first")
    parser.add_argument(
        "--examples", type=int, default=200, help="schemathesis examples per operation"
    )
    args = parser.parse_args(argv)
    failed = run_tests(args.examples) != 0
    cases = read_junit(JUNIT)
    if args.faults:
        failed |= subprocess.run([sys.executable, "-m", "bench.faults"], cwd=ROOT).returncode != 0
    if args.load:
        failed |= (
            subprocess.run([sys.executable, "-m", "bench.mixed_load"], cwd=ROOT).returncode != 0
        )
    figures = suite_figures(cases, args.examples)
    faults = json.loads(FAULTS.read_text())["scenarios"] if FAULTS.is_file() else {}
    load = json.loads(LOAD.read_text()) if LOAD.is_file() else None
    run = {
        "command": "python -m bench.reliability "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    FIGURES.write_text(json.dumps({"run": run, **figures}, indent=2) + "\n")
    REPORT.write_text(markdown(figures, faults, load, run))
    print(f"wrote {REPORT.relative_to(ROOT)} and {FIGURES.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
