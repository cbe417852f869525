"""The AWS CLI (awscli v1 from PyPI, `aws kms ...`) against kmsim, a short session as a user types it.

    python aws_cli.py session

Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET, KMSIM_REGION.
Each command is the venv's own `aws` executable, given credentials the way a user does in CI (environment
variables) and pointed at kmsim with `--endpoint-url`:

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1 \\
        aws kms encrypt --endpoint-url http://127.0.0.1:PORT --key-id ... --plaintext fileb://...

What went over the wire is recorded by cli_tap/sitecustomize.py (on PYTHONPATH) into a file this script reads
after each command; each command is one call in the report. The code the CLI raised is the one it printed:
`An error occurred (<Code>) when calling the <Operation> operation: ...`.
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

import aws_scenario
from aws_scenario import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ENDPOINT_URL, REGION, CheckFailed

HERE = os.path.dirname(os.path.abspath(__file__))
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
RAISED = re.compile(r"An error occurred \(([^)]+)\) when calling the (\w+) operation")

tap = aws_scenario.Wiretap()  # not installed here: the CLI runs in its own process; see run()
workdir = tempfile.mkdtemp(prefix="kmsim-aws-cli-")
wire_log = os.path.join(workdir, "wire.jsonl")
report = aws_scenario.Report("awscli (aws kms, --endpoint-url)", sys.argv[1] if len(sys.argv) > 1 else "", tap,
                             aws_scenario.describe_client_error, aws_scenario.request_id_of)
check, equal = report.check, report.equal


def environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=ACCESS_KEY_SECRET,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.path.join(workdir, "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(workdir, "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        KMSIM_WIRE_LOG=wire_log,
        PYTHONPATH=os.path.join(HERE, "cli_tap"),
    )
    return env


def read_wire():
    if not os.path.exists(wire_log):
        return []
    with open(wire_log, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def aws(*args, expect_ok=True):
    """Runs `aws <args> --endpoint-url URL --output json`; logs one call per HTTP exchange it made."""
    command = [AWS, *args, "--endpoint-url", ENDPOINT_URL, "--output", "json"]
    report.doing = "running aws " + " ".join(args[:2])
    seen = len(read_wire())
    finished = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    exchanges = read_wire()[seen:]
    raised = RAISED.search(finished.stderr or "")
    for exchange in exchanges:
        entry = aws_scenario.call_from_wire(exchange)
        if raised and not entry["ok"]:
            entry["code"] = raised.group(1)
        entry["exit_code"] = finished.returncode
        report.doc["calls"].append(entry)
    outcome = {"exit_code": finished.returncode, "stderr": (finished.stderr or "")[-800:],
               "stdout": (finished.stdout or "")[:800], "exchanges": len(exchanges)}
    if expect_ok:
        check("`aws %s` exits 0" % " ".join(args[:2]), finished.returncode == 0, **outcome)
        try:
            return json.loads(finished.stdout) if finished.stdout.strip() else {}
        except ValueError:
            raise CheckFailed("`aws %s` prints JSON" % " ".join(args[:2]), outcome)
    return finished, raised, outcome


def refused(check_name, code, *args):
    finished, raised, outcome = aws(*args, expect_ok=False)
    check(check_name, finished.returncode != 0 and bool(raised) and raised.group(1) == code, expected=code, **outcome)
    return finished


def session():
    state = {}

    @report.section("the installed `aws` is the pinned awscli")
    def _():
        finished = subprocess.run([AWS, "--version"], env=environment(), capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        version = (finished.stdout + finished.stderr).strip()
        check("`aws --version` names aws-cli/1.", version.startswith("aws-cli/1."), version=version)
        report.fact("aws --version", version)

    @report.section("aws kms create-key and describe-key answer the key's metadata")
    def _():
        made = aws("kms", "create-key", "--description", "made by the AWS CLI")
        meta = made.get("KeyMetadata") or {}
        check("create-key prints KeyMetadata with KeyId and an arn:aws:kms ARN",
              bool(meta.get("KeyId")) and (meta.get("Arn") or "").startswith("arn:aws:kms:%s:" % REGION) and
              meta["Arn"].endswith(":key/" + meta["KeyId"]), printed=made)
        equal("its KeyState is Enabled", meta.get("KeyState"), "Enabled")
        state.update(key=meta["KeyId"], arn=meta["Arn"])
        described = aws("kms", "describe-key", "--key-id", meta["Arn"]).get("KeyMetadata") or {}
        equal("describe-key by ARN prints the same KeyId", described.get("KeyId"), meta["KeyId"])
        equal("describe-key prints the Description", described.get("Description"), "made by the AWS CLI")
        wire = report.doc["calls"][-1]["wire"]
        check("the CLI signed with AWS4-HMAC-SHA256 for %s/kms" % REGION,
              wire["signature"] == "AWS4-HMAC-SHA256" and wire["credential"].endswith("/%s/kms/aws4_request" % REGION),
              wire=wire)

    @report.section("aws kms encrypt and decrypt round-trip a file, with an encryption context")
    def _():
        if "key" not in state:
            raise CheckFailed("needs what an earlier section made", {"missing": ["key"]})
        plaintext = os.path.join(workdir, "plaintext.bin")
        data = b"the CLI's secret \x00\xff bytes"
        with open(plaintext, "wb") as out:
            out.write(data)
        sealed = aws("kms", "encrypt", "--key-id", state["key"], "--plaintext", "fileb://" + plaintext,
                     "--encryption-context", "app=cli")
        equal("encrypt prints the key ARN as KeyId", sealed.get("KeyId"), state["arn"])
        blob = os.path.join(workdir, "ciphertext.bin")
        with open(blob, "wb") as out:
            out.write(base64.b64decode(sealed["CiphertextBlob"]))
        opened = aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + blob, "--encryption-context", "app=cli")
        equal("decrypt prints the plaintext (base64)", base64.b64decode(opened.get("Plaintext") or ""), data)
        equal("decrypt prints the key ARN as KeyId", opened.get("KeyId"), state["arn"])
        state["blob"] = blob

    @report.section("the CLI reports AWS's exceptions: NotFoundException, DisabledException")
    def _():
        refused("describe-key of an unknown alias fails with NotFoundException", "NotFoundException",
                "kms", "describe-key", "--key-id", "alias/kmsim-cli-none-" + uuid.uuid4().hex[:8])
        if "key" not in state:
            raise CheckFailed("needs what an earlier section made", {"missing": ["key"]})
        aws("kms", "disable-key", "--key-id", state["key"])
        refused("encrypt under the disabled key fails with DisabledException", "DisabledException",
                "kms", "encrypt", "--key-id", state["key"], "--plaintext", "fileb://" + os.path.join(workdir,
                                                                                                    "plaintext.bin"))
        aws("kms", "enable-key", "--key-id", state["key"])
        listed = aws("kms", "list-keys")
        check("list-keys (which the CLI pages itself) lists the key",
              state["key"] in [k.get("KeyId") for k in listed.get("Keys", [])], printed=listed)


if __name__ == "__main__":
    aws_scenario.main(report, {"session": session})
