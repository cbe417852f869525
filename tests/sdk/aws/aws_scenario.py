"""What the AWS Python scenario scripts share: settings, the report, and a tap on botocore's wire.

The report is the one `tests/sdk/alibaba/scenario.py` defines (same JSON shape, same sections and checks, so the
Rust side asserts on both the same way); this module adds what AWS clients need:

* `Wiretap` wraps botocore's `URLLib3Session.send`, the one place every botocore request goes through (boto3's
  clients, the Encryption SDK's, the AWS CLI's vendored botocore), and records for each attempt the headers the
  SDK sent (User-Agent, the SigV4 Authorization, X-Amz-Target, X-Amz-Date) and how it was answered (status,
  `x-amzn-RequestId`, `__type` and `message` of an error body).
* Each call in the report carries `service` (kms or cloudtrail), the AccessKeyId of the SigV4 credential that
  signed it, and `wire.attempts`: the request ids of every attempt (a retried call is several HTTP exchanges).
* `Report.wire_calls` logs calls made inside another library (the Encryption SDK) from the wire alone.

Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET,
KMSIM_REGION (default us-east-1).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "alibaba"))

import scenario  # noqa: E402  (tests/sdk/alibaba/scenario.py: the report every SDK script prints)
from scenario import CheckFailed, jsonable, safe  # noqa: E402,F401

ENDPOINT = scenario.ENDPOINT
ENDPOINT_URL = "http://" + ENDPOINT if ENDPOINT and "://" not in ENDPOINT else ENDPOINT
ACCESS_KEY_ID = scenario.ACCESS_KEY_ID
ACCESS_KEY_SECRET = scenario.ACCESS_KEY_SECRET
REGION = scenario.setting("REGION", "us-east-1")
setting = scenario.setting

KMS_TARGET = "TrentService."
CLOUDTRAIL_TARGET = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."


def header(headers, name):
    """A header's value from botocore's or urllib3's header maps, whatever their case; "" when absent."""
    for key, value in headers.items():
        if key.lower() == name:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return ""


def error_code(raw):
    """An error body's `__type` as botocore reads it: the text after a `#`, before a `:`."""
    code = raw or ""
    if ":" in code:
        code = code.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    return code


def exchange_of(request):
    """What one botocore request carries, before it is sent."""
    authorization = header(request.headers, "authorization")
    credential = ""
    if "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0].strip()
    target = header(request.headers, "x-amz-target")
    service, action = "", target
    if target.startswith(KMS_TARGET):
        service, action = "kms", target[len(KMS_TARGET):]
    elif target.startswith(CLOUDTRAIL_TARGET):
        service, action = "cloudtrail", target[len(CLOUDTRAIL_TARGET):]
    return {
        "service": service,
        "action": action,
        "target": target,
        "user_agent": header(request.headers, "user-agent"),
        "signature": authorization.split(" ", 1)[0] if authorization else "none",
        "credential": credential,
        "access_key_id": credential.split("/", 1)[0],
        "amz_date": header(request.headers, "x-amz-date"),
        "content_type": header(request.headers, "content-type"),
        "status": 0,
        "code": "",
        "message": "",
        "request_id": "",
    }


def answer(exchange, status, headers, body):
    """Fills `exchange` with how it was answered."""
    exchange["status"] = status
    exchange["request_id"] = header(headers, "x-amzn-requestid")
    exchange["response_content_type"] = header(headers, "content-type")
    if status >= 300:
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            exchange["code"] = parsed.get("__type", "") or ""
            exchange["message"] = str(parsed.get("message", parsed.get("Message", "")) or "")[:300]
            # What an Alibaba-style body would carry instead: shown when the server does not speak AWS.
            if not exchange["code"] and parsed.get("Code"):
                exchange["not_aws"] = {"Code": parsed.get("Code"), "RequestId": parsed.get("RequestId")}


class Wiretap:
    """Wraps botocore's URLLib3Session.send; see the module docstring. `install` patches the class in place."""

    def __init__(self):
        self.exchanges = []

    def install(self, session_class=None, log_path=None):
        if session_class is None:
            from botocore.httpsession import URLLib3Session as session_class
        original = session_class.send
        tap = self

        def send(session, request):
            exchange = exchange_of(request)
            tap.exchanges.append(exchange)
            try:
                response = original(session, request)
            except Exception as error:  # a connection failure: recorded, then raised as botocore raises it
                exchange["transport_error"] = "%s: %s" % (type(error).__name__, error)
                tap.flush(log_path, exchange)
                raise
            answer(exchange, response.status_code, response.headers, response.content)
            tap.flush(log_path, exchange)
            return response

        session_class.send = send

    @staticmethod
    def flush(log_path, exchange):
        if log_path:
            with open(log_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(exchange) + "\n")

    def mark(self):
        return len(self.exchanges)

    def since(self, mark):
        return self.exchanges[mark:]


def describe_client_error(error):
    """What botocore raised, as a user's `except ClientError` sees it."""
    response = getattr(error, "response", None) or {}
    meta = response.get("ResponseMetadata", {}) or {}
    return {
        "type": type(error).__name__,
        "code": (response.get("Error", {}) or {}).get("Code"),
        "status": meta.get("HTTPStatusCode"),
        "request_id": meta.get("RequestId"),
        "message": str((response.get("Error", {}) or {}).get("Message", "") or error)[:400],
    }


def request_id_of(result):
    return ((result or {}).get("ResponseMetadata", {}) or {}).get("RequestId", "")


class Report(scenario.Report):
    """The shared report, with each call's service, signing AccessKeyId and every attempt's request id."""

    def call(self, action, function, access_key_id=None, service=None):
        if service is not None:
            self.pending_service = service
        return super().call(action, function, access_key_id)

    def log(self, entry, mark):
        exchanges = self.tap.since(mark)
        entry.setdefault("service", getattr(self, "pending_service", "kms") or "kms")
        self.pending_service = "kms"
        entry["wire"] = dict(exchanges[-1]) if exchanges else None
        entry["attempts"] = len(exchanges)
        if exchanges:
            entry["wire"]["attempts"] = [e["request_id"] for e in exchanges]
            # The AccessKeyId the request was signed with is the one the server must record.
            if exchanges[-1]["access_key_id"]:
                entry["access_key_id"] = exchanges[-1]["access_key_id"]
        self.doc["calls"].append(entry)

    def wire_calls(self, mark):
        """Logs, as calls, the exchanges since `mark` that a library made on the script's behalf."""
        for exchange in self.tap.since(mark):
            self.doc["calls"].append(call_from_wire(exchange))

    def refused(self, check, action, function, code, status, access_key_id=None, service="kms"):
        self.pending_service = service
        return super().refused(check, action, function, code, status, access_key_id)


def call_from_wire(exchange):
    ok = 200 <= exchange["status"] < 300
    return {
        "action": exchange["action"],
        "service": exchange["service"] or "kms",
        "access_key_id": exchange["access_key_id"] or ACCESS_KEY_ID,
        "ok": ok,
        "request_id": exchange["request_id"],
        "code": "" if ok else error_code(exchange["code"]) or str(exchange["status"]),
        "status": exchange["status"],
        "via": "wire",
        "wire": dict(exchange, attempts=[exchange["request_id"]]),
        "attempts": 1,
    }


main = scenario.main
