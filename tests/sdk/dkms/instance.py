"""What the KMS instance SDK scripts share: the report of tests/sdk/alibaba/scenario.py, with a tap that reads the
instance API's protobuf answers (the `Error` message of a refusal) instead of JSON, and the SDK's error as the
report describes it.

Settings (environment): KMSIM_ENDPOINT (host:port), KMSIM_PROTOCOL (http or https), KMSIM_CA_FILE (https: the CA
to trust), KMSIM_CLIENT_KEY_FILE and KMSIM_CLIENT_KEY_PASSWORD (the ClientKey as Alibaba's console downloads it:
`clientKey_<id>.json` and its password), KMSIM_ACCESS_KEY_ID (the ClientKey id, for the report).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "alibaba"))

import requests  # noqa: E402
import scenario  # noqa: E402
from openapi_util.protobuf import api_pb2  # noqa: E402

setting = scenario.setting


class ProtobufTap(scenario.Wiretap):
    """The shared tap, reading an instance API answer: a refusal's body is the protobuf `Error`."""

    def install(self, session_class):
        original = session_class.send
        tap = self

        def send(session, request, **kwargs):
            authorization = request.headers.get("authorization", "") or request.headers.get("Authorization", "")
            exchange = {
                "user_agent": request.headers.get("user-agent", "") or request.headers.get("User-Agent", ""),
                "signature": authorization.split(" ", 1)[0] if authorization else "none",
                "api_name": request.headers.get("x-kms-apiname", ""),
                "status": 0,
                "code": "",
                "request_id": "",
            }
            tap.exchanges.append(exchange)
            response = original(session, request, **kwargs)
            exchange["status"] = response.status_code
            exchange["request_id"] = response.headers.get("x-kms-requestid", "")
            if "protobuf" not in response.headers.get("content-type", ""):
                # The OpenAPI's JSON (the router SDK's management half).
                scenario.read_json_answer(exchange, response)
            elif response.status_code >= 400:
                error = api_pb2.Error()
                try:
                    error.ParseFromString(response.content)
                    exchange["code"] = error.ErrorCode
                    exchange["request_id"] = error.RequestId
                except Exception:  # not an Error message: the test sees an empty code
                    pass
            return response

        session_class.send = send


def describe_error(error):
    """A Tea.exceptions.TeaException as the report keeps it: code, HTTP status, request id. The instance SDK puts
    the status and request id in `data` (`httpCode`, `requestId`); the OpenAPI SDK in `statusCode` and the body."""
    data = getattr(error, "data", None) or {}
    data = data if isinstance(data, dict) else {}
    return {
        "code": getattr(error, "code", "") or "",
        "message": str(getattr(error, "message", "") or error)[:400],
        "status": data.get("httpCode") or data.get("statusCode") or getattr(error, "status_code", None) or 0,
        "request_id": data.get("requestId") or data.get("RequestId") or getattr(error, "request_id", None) or "",
    }


def request_id_of(result):
    """The RequestId the SDK read: an instance SDK response's, or an OpenAPI response body's."""
    body = getattr(result, "body", None)
    return getattr(body, "request_id", None) or getattr(result, "request_id", "") or ""


def new_report(sdk):
    tap = ProtobufTap()
    tap.install(requests.Session)
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    return scenario.Report(sdk, name, tap, describe_error, request_id_of)


def client_key():
    """The ClientKey file's id and the file's path, as the console downloads them."""
    path = setting("CLIENT_KEY_FILE")
    with open(path) as f:
        return json.load(f)["KeyId"], path
