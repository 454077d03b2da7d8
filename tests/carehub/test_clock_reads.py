"""Every read of the current time in carehub's domain code goes through `carehub.core.clock`.

A time read elsewhere (`timezone.now()`, `datetime.now()`, `date.today()`, `time.time()`,
`timezone.localtime()` without a value, a model field defaulting to `timezone.now`) would ignore
a replayed clock: the demo's histories and anything run "as of" another moment would mix two
times. Durations measured with `time.monotonic()` / `perf_counter()` are not time reads.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CAREHUB = ROOT / "carehub"

# Outside the domain: the process supervisor of `make demo` / `make test`.
NOT_DOMAIN = ("devstack",)
ALLOWED: dict[str, str] = {
    "carehub/core/clock.py": "the one clock",
    # Celery's broker compares an ETA with the wall clock: the guard must too.
    "carehub/messaging/publish_guard.py": "compares a broker ETA with the broker's wall clock",
}
WALL_CLOCK_CALLS = {
    ("timezone", "now"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}
NO_ARGUMENT_CALLS = {("timezone", "localtime"), ("timezone", "localdate")}


def _name(node: ast.expr) -> tuple[str, str] | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
        return node.value.attr, node.attr  # django.utils.timezone.now, datetime.datetime.now
    return None


def wall_clock_reads(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in WALL_CLOCK_CALLS or (
                name in NO_ARGUMENT_CALLS and not node.args and not node.keywords
            ):
                found.append(f"{filename}:{node.lineno} calls {'.'.join(name)}()")
            for keyword in node.keywords:
                if keyword.arg == "default" and _name(keyword.value) == ("timezone", "now"):
                    found.append(f"{filename}:{node.lineno} defaults to timezone.now")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "django.utils.timezone"
            and any(alias.name in ("now", "localtime", "localdate") for alias in node.names)
        ):
            found.append(f"{filename}:{node.lineno} imports the wall clock by name")
    return found


def test_domain_code_reads_the_time_only_through_the_clock() -> None:
    offenders = []
    for path in sorted(CAREHUB.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        parts = path.relative_to(CAREHUB).parts
        if parts[0] in NOT_DOMAIN or "migrations" in parts or relative in ALLOWED:
            continue
        offenders += wall_clock_reads(path.read_text(encoding="utf-8"), relative)
    assert offenders == [], "read the time with carehub.core.clock.now()"


def test_the_check_finds_each_kind_of_wall_clock_read() -> None:
    source = (
        "from django.utils import timezone\n"
        "from django.utils.timezone import now\n"
        "import datetime, time\n"
        "a = timezone.now()\n"
        "b = datetime.datetime.now(datetime.UTC)\n"
        "c = datetime.date.today()\n"
        "d = time.time()\n"
        "e = timezone.localtime()\n"
        "f = models.DateTimeField(default=timezone.now)\n"
        "ok = timezone.localtime(value)\n"
        "ok2 = time.monotonic()\n"
    )
    found = wall_clock_reads(source, "x.py")
    assert found == [
        "x.py:2 imports the wall clock by name",
        "x.py:4 calls timezone.now()",
        "x.py:5 calls datetime.now()",
        "x.py:6 calls date.today()",
        "x.py:7 calls time.time()",
        "x.py:8 calls timezone.localtime()",
        "x.py:9 defaults to timezone.now",
    ]
