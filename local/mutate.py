"""`make mutate`: mutation testing of the platform's core and of each workflow's rules, intake and
processor, with mutmut. A mutant is one small change to the code (a flipped comparison, a constant
off by one, a negated condition, a dropped argument, None returned); the unit and integration
tests should fail on it. A survivor that changes behaviour is a missing test.

mutmut names mutants after their file path and only understands packages at the top of the tree,
so the run happens in a workspace (.mutate/) holding the layer's package at the top, the tests and
what they read (local/, functions/, events/, template.yaml). It is slow (minutes), so it is not
part of `make test`.

    python -m local.mutate [--max-children 2] [--only GROUP ...]
    python -m local.mutate --report [--only GROUP ...]   # score the last runs again, without running

Prints the score per module and every surviving mutant as a diff, writes .local/mutation.json,
and exits non-zero if a module scores under the bar. Mutants that no test can tell apart from the
original (equivalent mutants) are listed in EQUIVALENT below, each with its reason.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from local.template import ROOT

PACKAGE = ROOT / "layers" / "common" / "cxone_relay"
WORKSPACE = ROOT / ".mutate"
REPORT = ROOT / ".local" / "mutation.json"
BAR = 0.90


@dataclass(frozen=True)
class Group:
    """Modules mutated together, and the tests that exercise them (package-relative modules,
    repo-relative tests). A group's run only runs its tests, so a mutant another suite would kill
    may survive here: the scores are, if anything, conservative."""

    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


INBOUND_TESTS = ("tests/integration/test_inbound_sms.py", "tests/integration/test_inbound_hardening.py")
GROUPS = [
    Group(
        "transport",
        ("platform/transport.py",),
        (
            "tests/unit/test_transport.py",
            "tests/unit/test_ticketing.py",
            "tests/integration/test_cxone_client.py",
        ),
    ),
    Group("tokens", ("platform/cxone/tokens.py",), ("tests/integration/test_tokens.py",)),
    Group(
        "consent",
        ("platform/data/consent.py",),
        ("tests/integration/test_data_access.py", "tests/integration/test_inbound_sms.py"),
    ),
    Group(
        "inbound-rules",
        (
            "workflows/inbound_sms/keywords.py",
            "workflows/inbound_sms/moderation.py",
            "workflows/inbound_sms/routing.py",
        ),
        ("tests/unit/test_inbound_rules.py", "tests/integration/test_inbound_sms.py"),
    ),
    Group("inbound-intake", ("workflows/inbound_sms/intake.py",), INBOUND_TESTS),
    Group(
        "inbound-processor",
        ("workflows/inbound_sms/processor.py", "workflows/inbound_sms/keyword_actions.py"),
        (*INBOUND_TESTS, "tests/integration/test_dashboard.py"),
    ),
    Group(
        "outbound-rules",
        (
            "workflows/outbound_sms/segments.py",
            "workflows/outbound_sms/quiet_hours.py",
            "workflows/outbound_sms/signatures.py",
            "platform/data/messages.py",
        ),
        (
            "tests/unit/test_segments.py",
            "tests/unit/test_quiet_hours.py",
            "tests/unit/test_signatures.py",
            "tests/integration/test_delivery_status.py",
        ),
    ),
    Group(
        "outbound-intake",
        ("workflows/outbound_sms/intake.py",),
        (
            "tests/integration/test_outbound_sms.py",
            "tests/integration/test_consent_and_outbound.py",
            "tests/unit/test_webhook_urls.py",
        ),
    ),
    Group(
        "outbound-processor",
        (
            "workflows/outbound_sms/processor.py",
            "workflows/outbound_sms/release.py",
            "workflows/outbound_sms/status.py",
        ),
        ("tests/integration/test_outbound_sms.py", "tests/integration/test_delivery_status.py"),
    ),
    Group(
        "dtmf-rules",
        ("workflows/dtmf/rules.py", "workflows/dtmf/intake.py"),
        # The intake's audit and queueing are exercised through the API handler in test_dtmf.py.
        (
            "tests/unit/test_dtmf_rules.py",
            "tests/integration/test_dtmf_validation.py",
            "tests/integration/test_dtmf.py",
        ),
    ),
    Group(
        "dtmf-processor",
        ("workflows/dtmf/processor.py", "workflows/dtmf/webhook.py"),
        (
            "tests/integration/test_dtmf.py",
            "tests/integration/test_dtmf_processor.py",
            "tests/integration/test_dtmf_webhook.py",
        ),
    ),
    Group(
        "consent-rules",
        ("workflows/consent/rules.py",),
        ("tests/unit/test_consent_rules.py", "tests/integration/test_opt_out_sync.py"),
    ),
    Group("consent-intake", ("workflows/consent/intake.py",), ("tests/integration/test_consent_api.py",)),
    Group(
        "consent-processor", ("workflows/consent/processor.py",), ("tests/integration/test_opt_out_sync.py",)
    ),
    Group(
        "inbox-rules",
        ("workflows/social_inbox/rules.py", "workflows/social_inbox/window.py"),
        ("tests/unit/test_social_inbox_rules.py", "tests/unit/test_social_inbox_window.py"),
    ),
    Group(
        "inbox-processor",
        (
            "workflows/social_inbox/puller.py",
            "workflows/social_inbox/paging.py",
            "workflows/social_inbox/tickets.py",
        ),
        ("tests/integration/test_social_inbox.py", "tests/unit/test_social_inbox_tickets.py"),
    ),
]
TARGETS = [module for group in GROUPS for module in group.modules]

# (module, the line as mutated) -> why no test can tell it from the original.
HEADERS_ARE_CASE_INSENSITIVE = (
    "requests' response headers are case-insensitive: any spelling finds Retry-After"
)
CHUNK_SIZE_ONLY = (
    "read1's size bounds one read, not what is read: the body and the deadline checks between"
    " reads are the same whatever it is"
)
ANY_DUMP_MODE = (
    "the model holds only strings, numbers, booleans and lists and dicts of them: any dump mode"
    " gives the same (pydantic takes an unknown mode for python)"
)
READ_AS_A_CONDITION = "only read as a condition, where None is False"
NAIVE_LOCAL_TIME = (
    "without a zone it is the machine's local time, which each reader (iso(), quiet hours) turns"
    " back into the same instant with astimezone(UTC), fold included: a container on New York time"
    " shows no difference"
)
EQUIVALENT: dict[tuple[str, str], str] = {
    (
        "platform/transport.py",
        "while chunk := response.raw.read1(None, decode_content=True):",
    ): CHUNK_SIZE_ONLY,
    (
        "platform/transport.py",
        "while chunk := response.raw.read1(decode_content=True):",
    ): CHUNK_SIZE_ONLY,
    (
        "platform/transport.py",
        "while chunk := response.raw.read1(16385, decode_content=True):",
    ): CHUNK_SIZE_ONLY,
    (
        "platform/transport.py",
        "for attempt in range(1, policy.max_attempts + 2):",
    ): "the loop also breaks when attempt == max_attempts, so its range's end is never reached",
    (
        "platform/transport.py",
        "adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, )",
    ): "requests' HTTPAdapter defaults to max_retries=0; the explicit 0 says urllib3 must not retry",
    (
        "platform/transport.py",
        'parse_retry_after(response.headers.get("retry-after"), self._now)',
    ): HEADERS_ARE_CASE_INSENSITIVE,
    (
        "platform/transport.py",
        'parse_retry_after(response.headers.get("RETRY-AFTER"), self._now)',
    ): HEADERS_ARE_CASE_INSENSITIVE,
    (
        "platform/cxone/tokens.py",
        "return shared, True",
    ): "the lease flag is only read when no token came back; with a token the caller returns it",
    **dict.fromkeys(
        [
            (
                "platform/cxone/tokens.py",
                'if exc.response.get("Error", None).get("Code") != "ParameterNotFound":',
            ),
            (
                "platform/cxone/tokens.py",
                'if exc.response.get("Error", ).get("Code") != "ParameterNotFound":',
            ),
        ],
        "botocore's ClientError always carries an Error entry: the default is never used",
    ),
    **dict.fromkeys(
        [
            ("platform/data/messages.py", 'condition="attribute_exists(pk) and status_rank < :rank",'),
            ("platform/data/messages.py", 'condition="attribute_exists(pk) and status_rank = :pending",'),
        ],
        "DynamoDB condition keywords are case-insensitive: AND and and are the same expression",
    ),
    (
        "workflows/outbound_sms/signatures.py",
        'timestamp, given = _parse(header or "XXXX")',
    ): "only reached with a header: a request without one is refused before it is parsed",
    (
        "workflows/outbound_sms/quiet_hours.py",
        "if not zones or (window.end is not None and window.end < window.start):",
    ): "a window whose end is its start holds no instant: the search finds no send time either way",
    (
        "workflows/outbound_sms/quiet_hours.py",
        "if (opening := _local_start(window, zone, now, days)) >= now",
    ): "an opening at exactly now was already found open, or fails the inside-every-zone check",
    (
        "workflows/dtmf/webhook.py",
        "if self._webhook is None and not pending:",
    ): "a payload is only queued when there is a webhook: with none, nothing is pending either way",
    (
        "workflows/outbound_sms/intake.py",
        'numbers, sender = [], "XXXX"',
    ): "only set once a field problem is recorded: the request is refused before either is read",
    ("workflows/outbound_sms/intake.py", "return 202, render(result, numbers, dry_run=None)"): (
        READ_AS_A_CONDITION
    ),
    **dict.fromkeys(
        [
            ("workflows/outbound_sms/intake.py", "now = datetime.fromtimestamp(self._clock(), None)"),
            ("workflows/outbound_sms/intake.py", "now = datetime.fromtimestamp(self._clock(), )"),
            ("workflows/outbound_sms/processor.py", "now = datetime.fromtimestamp(self._clock(), None)"),
            ("workflows/outbound_sms/processor.py", "now = datetime.fromtimestamp(self._clock(), )"),
            ("workflows/outbound_sms/processor.py", "at = iso(datetime.fromtimestamp(self._clock(), None))"),
            ("workflows/outbound_sms/processor.py", "at = iso(datetime.fromtimestamp(self._clock(), ))"),
            ("platform/data/messages.py", "return datetime.fromtimestamp(self._clock(), None)"),
            ("platform/data/messages.py", "return datetime.fromtimestamp(self._clock(), )"),
        ],
        NAIVE_LOCAL_TIME,
    ),
    ("workflows/outbound_sms/segments.py", "parts = [_Part(header=None)]"): READ_AS_A_CONDITION,
    ("workflows/outbound_sms/segments.py", "parts[+1].add(moved, moved_size)"): (
        "graphemes move only as the second part is made (the first is the only part without a"
        " header), when parts[1] is parts[-1]"
    ),
    **dict.fromkeys(
        [
            (
                "workflows/outbound_sms/status.py",
                'headers={HEADER: sign(secret, body, int(self._clock())), "content-type": '
                '"application/json"},',
            ),
            (
                "workflows/outbound_sms/status.py",
                'headers={HEADER: sign(secret, body, int(self._clock())), "CONTENT-TYPE": '
                '"application/json"},',
            ),
        ],
        "HTTP header names are case-insensitive: requests sends one Content-Type however it is spelled",
    ),
    (
        "workflows/consent/intake.py",
        "return moment.replace(microsecond=moment.microsecond // 1000 * 1001)",
    ): "a millisecond times 1001 stays in that millisecond (ms * 1001 // 1000 == ms for ms < 1000),"
    " and the ledger and every text keep milliseconds only",
    **dict.fromkeys(
        [
            ("platform/cxone/tokens.py", "held = None"),
            ("platform/cxone/tokens.py", "held = self._memory.get(None)"),
            ("platform/cxone/tokens.py", "if held is None and self._fresh(held):"),
            ("platform/cxone/tokens.py", "if held is not None and self._fresh(None):"),
        ],
        "the look at memory before the lock only spares a caller the lock: the same look under"
        " the lock returns the same token",
    ),
    (
        "platform/data/consent.py",
        'condition="attribute_not_exists(pk) or updated_at <= :when",',
    ): "DynamoDB condition keywords are case-insensitive: OR and or are the same expression",
    (
        "workflows/social_inbox/puller.py",
        'run_id = str(getattr(context, "aws_request_id", None) or uuid.uuid4())',
    ): "a missing request id falls back to a new one whether the default is empty or None",
    **dict.fromkeys(
        [
            ("workflows/social_inbox/puller.py", "return self.run(run_id, budget).model_dump(mode=None)"),
            (
                "workflows/social_inbox/puller.py",
                'return self.run(run_id, budget).model_dump(mode="XXjsonXX")',
            ),
            ("workflows/social_inbox/puller.py", 'return self.run(run_id, budget).model_dump(mode="JSON")'),
        ],
        ANY_DUMP_MODE,
    ),
    **dict.fromkeys(
        [
            ("workflows/social_inbox/puller.py", 'token: str | None = ""'),
            ("workflows/social_inbox/paging.py", 'token: str | None = ""'),
        ],
        "the CXone client sends a scroll token only when it is non-empty: an empty one starts the"
        " listing like None",
    ),
    **dict.fromkeys(
        [
            ("workflows/social_inbox/puller.py", 'return _PageResult(None, False, "ticketing unavailable")'),
            ("workflows/social_inbox/puller.py", 'return _PageResult(False, None, "ticketing unavailable")'),
        ],
        READ_AS_A_CONDITION,
    ),
    **dict.fromkeys(
        [
            (
                "workflows/social_inbox/puller.py",
                "return {ticket.external_id: outcome for ticket, outcome in zip(tickets, outcomes,"
                " strict=None)}",
            ),
            (
                "workflows/social_inbox/puller.py",
                "return {ticket.external_id: outcome for ticket, outcome in zip(tickets, outcomes, )}",
            ),
        ],
        "zip's strict defaults to False, and None is False: the same zip",
    ),
    **dict.fromkeys(
        [
            ("workflows/outbound_sms/intake.py", "body=request.model_dump(mode=None),"),
            ("workflows/outbound_sms/intake.py", 'body=request.model_dump(mode="XXjsonXX"),'),
            ("workflows/outbound_sms/intake.py", 'body=request.model_dump(mode="JSON"),'),
            (
                "workflows/outbound_sms/intake.py",
                "return answer.model_dump(mode=None, by_alias=True, exclude_none=True)",
            ),
            (
                "workflows/outbound_sms/intake.py",
                "return answer.model_dump(by_alias=True, exclude_none=True)",
            ),
            (
                "workflows/outbound_sms/intake.py",
                'return answer.model_dump(mode="XXjsonXX", by_alias=True, exclude_none=True)',
            ),
            (
                "workflows/outbound_sms/intake.py",
                'return answer.model_dump(mode="JSON", by_alias=True, exclude_none=True)',
            ),
        ],
        ANY_DUMP_MODE,
    ),
    **dict.fromkeys(
        [
            (
                "workflows/outbound_sms/intake.py",
                'key=f"{client or \'XXanonymousXX\'}:{idempotency_key}" if idempotency_key else "",',
            ),
            (
                "workflows/outbound_sms/intake.py",
                'key=f"{client or \'ANONYMOUS\'}:{idempotency_key}" if idempotency_key else "",',
            ),
        ],
        "the name for requests without an API key only has to differ from API Gateway's key ids"
        " (generated alphanumerics): any constant scopes them alike",
    ),
    (
        "workflows/consent/processor.py",
        "applied_now = None",
    ): READ_AS_A_CONDITION,
    (
        "workflows/social_inbox/puller.py",
        "return {conversation.id: TicketOutcome(None) for conversation, _ in classified}",
    ): "with no ticketing system the outcome is only checked for FAILED, and the conversation is"
    " audited as classified before its result is read",
    (
        "workflows/social_inbox/paging.py",
        "filters = MessageQuery(tuple(contact_ids), ).filters()",
    ): "MessageQuery's direction defaults to inbound; naming it only says so where it is read",
}

# Tests that cannot run in the workspace: it starts fresh interpreters on the repo's own layout.
DESELECT = ["tests/integration/test_import_cost.py"]

COMPAT_PLUGIN = '''"""mutmut 3.7 reads item._nodeid, which pytest 9 dropped; the newer mutmut
needs a click that aws-sam-cli does not allow. Written by local/mutate.py into its workspace."""


def pytest_collection_modifyitems(items):
    for item in items:
        if not hasattr(item, "_nodeid"):
            item._nodeid = item.nodeid
'''


@dataclass
class ModuleScore:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    untested: int = 0

    @property
    def score(self) -> float:
        counted = self.total - self.equivalent
        return self.killed / counted if counted else 1.0

    @property
    def survived(self) -> int:
        return self.total - self.killed - self.equivalent


def prepare_workspace(workspace: Path, group: Group) -> None:
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE, workspace / "cxone_relay", ignore=ignore)
    for name in ("tests", "local", "functions", "events"):
        shutil.copytree(ROOT / name, workspace / name, ignore=ignore)
    shutil.copy2(ROOT / "template.yaml", workspace / "template.yaml")
    (workspace / "mutmut_compat.py").write_text(COMPAT_PLUGIN)
    write_config(workspace, group)


def write_config(workspace: Path, group: Group) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    # The package sits at the top of the workspace, not under layers/common.
    pyproject = pyproject.replace('pythonpath = ["layers/common", "."]', 'pythonpath = ["."]')
    deselect = ", ".join(f'"--deselect", "{path}"' for path in DESELECT)
    pyproject += f"""
[tool.mutmut]
source_paths = ["cxone_relay"]
only_mutate = {json.dumps([f"cxone_relay/{module}" for module in group.modules])}
also_copy = ["local", "functions", "events", "template.yaml", "mutmut_compat.py"]
pytest_add_cli_args = ["-p", "mutmut_compat", "-p", "no:randomly", "-q", {deselect}]
pytest_add_cli_args_test_selection = {json.dumps(list(group.tests))}
# A mutant that waits forever (a retry loop that never ends) is caught as a timeout. mutmut's
# default limit, 15 times the clean run, spends many minutes on each; 3 times (and 5 s) still
# leaves a mutant that only runs as long as the clean tests well inside it.
timeout_multiplier = 3.0
timeout_constant = 5.0
"""
    (workspace / "pyproject.toml").write_text(pyproject)


def refresh_tests(workspace: Path, group: Group) -> None:
    """Put the repo's current tests (and what they read) and the mutmut settings into a group's
    workspace; the mutated package stays as it was, so the mutants keep their names."""
    write_config(workspace, group)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tests", "local", "functions", "events"):
        shutil.copytree(ROOT / name, workspace / name, ignore=ignore, dirs_exist_ok=True)
    shutil.copy2(ROOT / "template.yaml", workspace / "template.yaml")


def not_killed(workspace: Path) -> list[str]:
    output = mutmut(workspace, "results", "--all", "true")
    return [
        name
        for name, status in (line.strip().rsplit(": ", 1) for line in output.splitlines() if ": " in line)
        if status not in ("killed", "timeout")
    ]


def mutmut(workspace: Path, *args: str) -> str:
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    return subprocess.run(command, cwd=workspace, capture_output=True, text=True, check=False).stdout


def module_of(mutant: str) -> str:
    """cxone_relay.platform.transport.xǁTimeBudgetǁusable_seconds__mutmut_3 -> platform/transport.py"""
    dotted = mutant.split(".x_", maxsplit=1)[0].split(".xǁ", maxsplit=1)[0]
    return dotted.removeprefix("cxone_relay.").replace(".", "/") + ".py"


def mutated_line(diff: str) -> str:
    added = [
        line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    return added[0] if added else ""


def score(workspace: Path, scores: dict[str, ModuleScore], survivors: list[dict[str, str]]) -> None:
    """Add a group's results: killed (or timed out) counts as caught; an equivalent mutant is set
    aside with its reason; anything else is a survivor, kept with its diff."""
    output = mutmut(workspace, "results", "--all", "true")
    for name, status in (line.strip().rsplit(": ", 1) for line in output.splitlines() if ": " in line):
        module = module_of(name)
        entry = scores.setdefault(module, ModuleScore(module))
        entry.total += 1
        if status in ("killed", "timeout"):
            entry.killed += 1
            continue
        diff = mutmut(workspace, "show", name)
        if EQUIVALENT.get((module, mutated_line(diff))):
            entry.equivalent += 1
            continue
        if status == "no tests":
            entry.untested += 1
        survivors.append({"mutant": name, "module": module, "status": status, "diff": diff})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.mutate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel")
    parser.add_argument("--only", nargs="*", help="names of groups to run (default: all)")
    parser.add_argument(
        "--report",
        action="store_true",
        help="score the groups' last runs (their workspaces in .mutate/) without running them again",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="run only the mutants a group's last run left alive, against the current tests",
    )
    args = parser.parse_args(argv)
    groups = [group for group in GROUPS if not args.only or group.name in args.only]
    scores = {module: ModuleScore(module) for group in groups for module in group.modules}
    survivors: list[dict[str, str]] = []
    for group in groups:
        workspace = WORKSPACE / group.name
        if args.report:
            if (workspace / "mutants").is_dir():
                score(workspace, scores, survivors)
            else:
                print(f"{group.name}: never run (python -m local.mutate --only {group.name})")
            continue
        again: list[str] = []
        if args.again and (workspace / "mutants").is_dir():
            refresh_tests(workspace, group)
            again = not_killed(workspace)
            print(f"{group.name}: {len(again)} mutants left alive last time, run again", flush=True)
        else:
            prepare_workspace(workspace, group)
            print(f"mutating {group.name}: {', '.join(group.modules)} (this takes minutes)", flush=True)
        with (workspace / "mutmut.log").open("a" if again else "w") as log:
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("mutmut")),
                    "run",
                    "--max-children",
                    str(args.max_children),
                    *again,
                ],
                cwd=workspace,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        score(workspace, scores, survivors)
    for survivor in survivors:
        print(f"\n--- survived: {survivor['mutant']} ({survivor['status']})")
        print("\n".join(line for line in survivor["diff"].splitlines() if re.match(r"^[-+@]", line)))
    print(f"\n{'module':<44} {'mutants':>7} {'killed':>7} {'equiv':>6} {'left':>5} {'score':>7}")
    failing = []
    for module, entry in sorted(scores.items()):
        print(
            f"{module:<44} {entry.total:>7} {entry.killed:>7} {entry.equivalent:>6}"
            f" {entry.survived:>5} {entry.score:>7.1%}"
        )
        if entry.score < BAR:
            failing.append(module)
    by_module: dict[str, list[str]] = defaultdict(list)
    for survivor in survivors:
        by_module[survivor["module"]].append(survivor["mutant"])
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "bar": BAR,
                "modules": {
                    module: {
                        "mutants": entry.total,
                        "killed": entry.killed,
                        "equivalent": entry.equivalent,
                        "score": round(entry.score, 4),
                    }
                    for module, entry in sorted(scores.items())
                },
                "survivors": dict(by_module),
                "equivalent": {f"{module}: {line}": reason for (module, line), reason in EQUIVALENT.items()},
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    if failing:
        print(f"\nunder {BAR:.0%}: {', '.join(failing)}")
        return 1
    print(f"\nevery module at or above {BAR:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
