"""Loaded by Python at start-up when this folder is on PYTHONPATH (aws_cli.py puts it there for the `aws` it runs).

When KMSIM_WIRE_LOG names a file, it wraps the HTTP send of the botocore the AWS CLI uses (awscli 1.46 vendors its
own, imported as `botocore` once `awscli` is) and appends one JSON line per HTTP exchange to that file: the headers
the CLI sent and how it was answered (see tests/sdk/aws/aws_scenario.py). The CLI itself runs unchanged.
"""

import os
import sys

if os.environ.get("KMSIM_WIRE_LOG"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import awscli  # noqa: F401  (makes `import botocore` the CLI's own botocore)
    import botocore.httpsession

    import aws_scenario

    aws_scenario.Wiretap().install(botocore.httpsession.URLLib3Session, os.environ["KMSIM_WIRE_LOG"])
