"""What the Python scenario scripts share: their settings, their report, and a tap on the wire.

A scenario is a list of sections run in order; a section is a list of named checks. A section stops at its first
failed check (or at an exception) and the next section runs, so one report shows every broken part at once.
The script prints one JSON document on stdout (the test in tests/alibaba_sdk.rs asserts on it):

    {"sdk": "...", "scenario": "...",
     "sections": [{"name": "...", "passed": ["check", ...], "failure": null | {...}}],
     "calls": [{"action": "Encrypt", "access_key_id": "...", "ok": true, "request_id": "...",
                "code": "", "status": 200, "wire": {"status": 200, "code": "", "request_id": "...",
                                                     "user_agent": "...", "signature": "ACS3-HMAC-SHA256"}}],
     "facts": {...}}

and exits 0 when every section passed, 1 when one failed, 2 when the script itself broke.
`calls` lists every SDK call with the RequestId the SDK read from the body, so the test can find each call's
audit record; `wire` is what went over the wire for it, observed by wrapping the HTTP library's send.
"""

import json
import os
import sys
import traceback

ENDPOINT = os.environ.get("KMSIM_ENDPOINT", "")
ACCESS_KEY_ID = os.environ.get("KMSIM_ACCESS_KEY_ID", "")
ACCESS_KEY_SECRET = os.environ.get("KMSIM_ACCESS_KEY_SECRET", "")


def setting(name, default=""):
    """A scenario parameter, KMSIM_<name>."""
    return os.environ.get("KMSIM_" + name, default)


class CheckFailed(Exception):
    def __init__(self, check, observed):
        super().__init__(check)
        self.check = check
        self.observed = observed


class Wiretap:
    """Wraps requests' Session.send to see each request's headers and each answer's status and error body."""

    def __init__(self):
        self.exchanges = []

    def install(self, session_class):
        original = session_class.send
        tap = self

        def send(session, request, **kwargs):
            exchange = {
                "user_agent": request.headers.get("User-Agent", ""),
                "signature": signature_kind(request),
                "status": 0,
                "code": "",
                "request_id": "",
            }
            tap.exchanges.append(exchange)
            response = original(session, request, **kwargs)
            exchange["status"] = response.status_code
            read_json_answer(exchange, response)
            return response

        session_class.send = send

    def mark(self):
        return len(self.exchanges)

    def since(self, mark):
        return self.exchanges[mark:]


def read_json_answer(exchange, response):
    """The Code and RequestId of a JSON answer, into `exchange`."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        exchange["code"] = body.get("Code", "") or ""
        exchange["request_id"] = body.get("RequestId", "") or ""


def signature_kind(request):
    authorization = request.headers.get("Authorization", "")
    if authorization:
        return authorization.split(" ", 1)[0]
    if "Signature=" in (request.url or ""):
        method = "HMAC-SHA1" if "SignatureMethod=HMAC-SHA1" in request.url else "v1"
        return "v1 " + method
    return "none"


class Report:
    """The report of one scenario run; see the module docstring."""

    def __init__(self, sdk, scenario, tap, describe_error, request_id_of):
        self.doc = {"sdk": sdk, "scenario": scenario, "sections": [], "calls": [], "facts": {}}
        self.tap = tap
        self.describe_error = describe_error
        self.request_id_of = request_id_of
        self.section_entry = None
        self.doing = None

    # -- sections and checks --

    def section(self, name):
        """Decorator: runs the function now as the section `name`."""

        def run(body):
            entry = {"name": name, "passed": [], "failure": None}
            self.section_entry = entry
            self.doing = None
            try:
                body()
            except CheckFailed as failed:
                entry["failure"] = {"check": failed.check, "observed": failed.observed}
            except Exception as error:  # an SDK call that raised unexpectedly, or a broken response model
                entry["failure"] = {
                    "check": self.doing or "(before the first call)",
                    "error": "%s: %s" % (type(error).__name__, error),
                    "sdk_error": safe(lambda raised=error: self.describe_error(raised)),
                    "traceback": traceback.format_exc().splitlines()[-12:],
                }
            self.doc["sections"].append(entry)
            return body

        return run

    def check(self, name, condition, **observed):
        """A named check: passes when `condition` is true, else fails the section with what was observed."""
        if not condition:
            raise CheckFailed(name, jsonable(observed))
        self.section_entry["passed"].append(name)

    def equal(self, name, actual, expected):
        self.check(name, actual == expected, actual=actual, expected=expected)

    def fact(self, name, value):
        self.doc["facts"][name] = jsonable(value)

    # -- SDK calls --

    def call(self, action, function, access_key_id=None):
        """Makes one SDK call, logging it; returns what it returned, or raises what it raised."""
        self.doing = "calling " + action
        mark = self.tap.mark()
        entry = {"action": action, "access_key_id": access_key_id or ACCESS_KEY_ID}
        try:
            result = function()
        except Exception as error:
            entry.update(ok=False, **self.describe_error(error))
            self.log(entry, mark)
            raise
        entry.update(ok=True, request_id=self.request_id_of(result), code="", status=200)
        self.log(entry, mark)
        return result

    def refused(self, check, action, function, code, status, access_key_id=None):
        """A call that must be refused with `code` (or one of a tuple of codes) and HTTP `status`.

        `function` makes the bare SDK call. Returns what the SDK raised, as describe_error gives it.
        """
        codes = code if isinstance(code, tuple) else (code,)
        try:
            self.call(action, function, access_key_id)
        except Exception as error:
            seen = self.describe_error(error)
            self.check(
                check,
                seen.get("code") in codes and seen.get("status") == status and bool(seen.get("request_id")),
                expected={"code": code, "status": status, "request_id": "(any)"},
                raised=seen,
                error="%s: %s" % (type(error).__name__, error),
            )
            return seen
        raise CheckFailed(check, {"expected": {"code": code, "status": status}, "raised": "nothing: it succeeded"})

    def log(self, entry, mark):
        exchanges = self.tap.since(mark)
        # The last exchange is the one the SDK answered from (none of these SDKs retries by default).
        entry["wire"] = exchanges[-1] if exchanges else None
        entry["attempts"] = len(exchanges)
        self.doc["calls"].append(entry)

    def finish(self):
        failed = any(s["failure"] for s in self.doc["sections"])
        sys.stdout.write(json.dumps(self.doc, indent=1, sort_keys=False) + "\n")
        sys.stdout.flush()
        sys.exit(1 if failed else 0)


def safe(function):
    try:
        return function()
    except Exception as error:  # describing an error must never hide it
        return "%s: %s" % (type(error).__name__, error)


def jsonable(value):
    """`value` with anything JSON cannot hold turned into its repr."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [jsonable(v) for v in value]
        if isinstance(value, bytes):
            return value.hex()
        return repr(value)


def main(report, scenarios):
    """Runs the scenario named by argv[1]; a crash outside the sections still prints a report."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in scenarios:
        sys.stderr.write("usage: %s SCENARIO, one of: %s\n" % (sys.argv[0], ", ".join(sorted(scenarios))))
        sys.exit(2)
    try:
        scenarios[name]()
    except Exception:
        report.doc["sections"].append(
            {"name": "(script)", "passed": [], "failure": {"check": "the script ran", "error": traceback.format_exc()}}
        )
        sys.stdout.write(json.dumps(report.doc, indent=1) + "\n")
        sys.exit(2)
    report.finish()
