"""boto3 (botocore) against kmsim's AWS KMS JSON 1.1 front end, used as a user would.

    python boto3_sdk.py lifecycle|resources|crypto|sign|mac|rotation|multiregion|policies|grants|signatures|cloudtrail

Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET, KMSIM_REGION
(default us-east-1), and for `cloudtrail` KMSIM_USER_NAME (the RAM user that owns the AccessKey). The clients are made
the one way a user points boto3 at another endpoint:

    boto3.session.Session(aws_access_key_id=..., aws_secret_access_key=..., region_name='us-east-1')
        .client('kms', endpoint_url='http://127.0.0.1:PORT')

Each section is one statement about kmsim, each check one fact it rests on; the expected exceptions are AWS's
(see /work/notes/aws-wire.md for where each comes from). Signatures and public keys are checked with pyca
`cryptography`, HMACs with Python's `hmac` on imported key material: never with kmsim.
"""

import base64
import hashlib
import hmac
import json
import re
import sys
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import boto3
import botocore
import botocore.auth
from botocore import xform_name
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import aws_scenario
from aws_scenario import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ENDPOINT_URL, REGION, CheckFailed

tap = aws_scenario.Wiretap()
tap.install()

report = aws_scenario.Report(
    "boto3 %s (botocore %s), SigV4" % (boto3.__version__, botocore.__version__),
    sys.argv[1] if len(sys.argv) > 1 else "",
    tap,
    aws_scenario.describe_client_error,
    aws_scenario.request_id_of,
)
check, equal = report.check, report.equal

ACCOUNT_ID = re.compile(r"^\d{12}$")
KEY_ARN = re.compile(r"^arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/(?P<id>[A-Za-z0-9-]+)$")
DAY = timedelta(days=1)


def session(access_key_id=ACCESS_KEY_ID, secret=ACCESS_KEY_SECRET, region=REGION):
    return boto3.session.Session(aws_access_key_id=access_key_id, aws_secret_access_key=secret, region_name=region)


def client(service="kms", **kwargs):
    return session(**kwargs).client(service, endpoint_url=ENDPOINT_URL)


kms = client()


def k(operation, on=None, **params):
    """One KMS call, as a user writes it: `k("Encrypt", KeyId=..., Plaintext=...)`."""
    target = on or kms
    return report.call(operation, lambda: getattr(target, xform_name(operation))(**params))


def refused(check_name, operation, code, on=None, status=400, **params):
    """A KMS call that must raise AWS's `code` (or one of a tuple of codes) with HTTP `status`."""
    target = on or kms
    return report.refused(check_name, operation, lambda: getattr(target, xform_name(operation))(**params), code,
                          status)


def needs(state, *names):
    missing = [n for n in names if n not in state]
    if missing:
        raise CheckFailed("needs what an earlier section made", {"missing": missing})


def key_arn_parts(arn):
    match = KEY_ARN.match(arn or "")
    return match.groupdict() if match else None


def new_key(description, **params):
    return k("CreateKey", Description=description, **params)["KeyMetadata"]


def names_arn(error, arn):
    """AWS's state exceptions name the key by its ARN (`<key ARN> is disabled.`)."""
    return arn in (error.get("message") or "")


def sha256(data):
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------------------
# lifecycle: AWS's key states and the exceptions each state gives
# ---------------------------------------------------------------------------


def lifecycle():
    state = {}
    plaintext = b"lifecycle plaintext"

    @report.section("CreateKey answers AWS's KeyMetadata, with the key ARN, and DescribeKey shows the same")
    def _():
        meta = new_key("lifecycle", KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")
        check("KeyMetadata.KeyId is set", bool(meta.get("KeyId")), key_metadata=meta)
        state["key"], state["arn"] = meta["KeyId"], meta.get("Arn")
        parts = key_arn_parts(meta.get("Arn"))
        check("KeyMetadata.Arn is arn:aws:kms:<region>:<12-digit account>:key/<KeyId>",
              bool(parts) and parts["id"] == meta["KeyId"], arn=meta.get("Arn"))
        equal("the ARN's region is the signing region", parts["region"], REGION)
        check("KeyMetadata.AWSAccountId is the ARN's 12-digit account", meta.get("AWSAccountId") == parts["account"]
              and bool(ACCOUNT_ID.match(meta.get("AWSAccountId") or "")), key_metadata=meta)
        report.fact("account", parts["account"])
        equal("KeyMetadata.KeyState is Enabled", meta.get("KeyState"), "Enabled")
        equal("KeyMetadata.Enabled is true", meta.get("Enabled"), True)
        equal("KeyMetadata.KeySpec is SYMMETRIC_DEFAULT", meta.get("KeySpec"), "SYMMETRIC_DEFAULT")
        equal("KeyMetadata.KeyUsage is ENCRYPT_DECRYPT", meta.get("KeyUsage"), "ENCRYPT_DECRYPT")
        equal("KeyMetadata.Origin is AWS_KMS", meta.get("Origin"), "AWS_KMS")
        equal("KeyMetadata.KeyManager is CUSTOMER", meta.get("KeyManager"), "CUSTOMER")
        equal("KeyMetadata.Description is the one given", meta.get("Description"), "lifecycle")
        equal("KeyMetadata.MultiRegion is false", meta.get("MultiRegion"), False)
        check("KeyMetadata.EncryptionAlgorithms lists SYMMETRIC_DEFAULT",
              "SYMMETRIC_DEFAULT" in (meta.get("EncryptionAlgorithms") or []), key_metadata=meta)
        check("KeyMetadata.CreationDate is a timestamp (epoch seconds on the wire)",
              isinstance(meta.get("CreationDate"), datetime), creation_date=meta.get("CreationDate"))
        state["created"] = meta["CreationDate"]
        for by in (meta["KeyId"], meta["Arn"]):
            described = k("DescribeKey", KeyId=by)["KeyMetadata"]
            for field in ("KeyId", "Arn", "KeyState", "KeySpec", "KeyUsage", "Origin", "CreationDate", "Description"):
                equal("DescribeKey by %s shows the same %s" % ("ARN" if by.startswith("arn:") else "KeyId", field),
                      described.get(field), meta.get(field))

    @report.section("a disabled key refuses Encrypt, Decrypt and GenerateDataKey with DisabledException")
    def _():
        needs(state, "key")
        key, arn = state["key"], state["arn"]
        state["blob"] = k("Encrypt", KeyId=key, Plaintext=plaintext)["CiphertextBlob"]
        k("DisableKey", KeyId=key)
        meta = k("DescribeKey", KeyId=key)["KeyMetadata"]
        equal("DescribeKey shows KeyState Disabled", meta.get("KeyState"), "Disabled")
        equal("DescribeKey shows Enabled false", meta.get("Enabled"), False)
        error = refused("Encrypt under a disabled key raises DisabledException (400)", "Encrypt", "DisabledException",
                        KeyId=key, Plaintext=plaintext)
        check("DisabledException's message names the key ARN", names_arn(error, arn), raised=error, arn=arn)
        refused("Decrypt of its ciphertext raises DisabledException", "Decrypt", "DisabledException",
                CiphertextBlob=state["blob"])
        refused("GenerateDataKey raises DisabledException", "GenerateDataKey", "DisabledException", KeyId=key,
                KeySpec="AES_256")
        k("DisableKey", KeyId=key)
        check("DisableKey on a disabled key is answered (no state change)", True)

    @report.section("EnableKey makes the key usable again; Decrypt needs no KeyId for a symmetric ciphertext")
    def _():
        needs(state, "key", "blob")
        k("EnableKey", KeyId=state["key"])
        equal("DescribeKey shows KeyState Enabled", k("DescribeKey", KeyId=state["key"])["KeyMetadata"]["KeyState"],
              "Enabled")
        opened = k("Decrypt", CiphertextBlob=state["blob"])
        equal("Decrypt opens what was encrypted before the key was disabled", opened.get("Plaintext"), plaintext)
        equal("Decrypt answers the key's ARN as KeyId", opened.get("KeyId"), state["arn"])

    @report.section("ScheduleKeyDeletion (7 to 30 days) makes the key PendingDeletion: KMSInvalidStateException")
    def _():
        needs(state, "key", "blob", "created")
        key, arn = state["key"], state["arn"]
        refused("a 6-day window raises ValidationException", "ScheduleKeyDeletion", "ValidationException", KeyId=key,
                PendingWindowInDays=6)
        refused("a 31-day window raises ValidationException", "ScheduleKeyDeletion", "ValidationException", KeyId=key,
                PendingWindowInDays=31)
        scheduled = k("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
        equal("ScheduleKeyDeletion answers the key ARN as KeyId", scheduled.get("KeyId"), arn)
        equal("ScheduleKeyDeletion answers KeyState PendingDeletion", scheduled.get("KeyState"), "PendingDeletion")
        equal("ScheduleKeyDeletion answers PendingWindowInDays 7", scheduled.get("PendingWindowInDays"), 7)
        deletion = scheduled.get("DeletionDate")
        check("DeletionDate is 7 days after the key was made (the clock has not moved)",
              isinstance(deletion, datetime) and 7 * DAY - timedelta(hours=1) <= deletion - state["created"]
              <= 7 * DAY + timedelta(hours=1), deletion_date=deletion, created=state["created"])
        meta = k("DescribeKey", KeyId=key)["KeyMetadata"]
        equal("DescribeKey shows KeyState PendingDeletion", meta.get("KeyState"), "PendingDeletion")
        equal("DescribeKey shows Enabled false", meta.get("Enabled"), False)
        equal("DescribeKey shows the same DeletionDate", meta.get("DeletionDate"), deletion)
        equal("DescribeKey shows PendingDeletionWindowInDays 7", meta.get("PendingDeletionWindowInDays"), 7)
        error = refused("Encrypt raises KMSInvalidStateException", "Encrypt", "KMSInvalidStateException", KeyId=key,
                        Plaintext=plaintext)
        check("KMSInvalidStateException's message names the key ARN", names_arn(error, arn), raised=error, arn=arn)
        refused("Decrypt raises KMSInvalidStateException", "Decrypt", "KMSInvalidStateException",
                CiphertextBlob=state["blob"])
        refused("EnableKey raises KMSInvalidStateException", "EnableKey", "KMSInvalidStateException", KeyId=key)
        refused("DisableKey raises KMSInvalidStateException", "DisableKey", "KMSInvalidStateException", KeyId=key)
        refused("ScheduleKeyDeletion again raises KMSInvalidStateException", "ScheduleKeyDeletion",
                "KMSInvalidStateException", KeyId=key, PendingWindowInDays=7)
        state["scheduled"] = True

    @report.section("CancelKeyDeletion leaves the key Disabled, as AWS does, until EnableKey")
    def _():
        needs(state, "key", "scheduled")
        key, arn = state["key"], state["arn"]
        equal("CancelKeyDeletion answers the key ARN as KeyId", k("CancelKeyDeletion", KeyId=key).get("KeyId"), arn)
        meta = k("DescribeKey", KeyId=key)["KeyMetadata"]
        equal("DescribeKey shows KeyState Disabled", meta.get("KeyState"), "Disabled")
        check("DescribeKey shows no DeletionDate", "DeletionDate" not in meta, key_metadata=meta)
        refused("Encrypt raises DisabledException", "Encrypt", "DisabledException", KeyId=key, Plaintext=plaintext)
        refused("CancelKeyDeletion of a key not pending deletion raises KMSInvalidStateException", "CancelKeyDeletion",
                "KMSInvalidStateException", KeyId=key)
        k("EnableKey", KeyId=key)
        equal("after EnableKey, Decrypt opens the old ciphertext", k("Decrypt", CiphertextBlob=state["blob"])["Plaintext"],
              plaintext)

    @report.section("a key with Origin EXTERNAL starts PendingImport and refuses use with KMSInvalidStateException")
    def _():
        meta = new_key("external", Origin="EXTERNAL")
        equal("KeyMetadata.KeyState is PendingImport", meta.get("KeyState"), "PendingImport")
        equal("KeyMetadata.Origin is EXTERNAL", meta.get("Origin"), "EXTERNAL")
        equal("KeyMetadata.Enabled is false", meta.get("Enabled"), False)
        refused("Encrypt raises KMSInvalidStateException", "Encrypt", "KMSInvalidStateException", KeyId=meta["KeyId"],
                Plaintext=plaintext)
        refused("EnableKey raises KMSInvalidStateException", "EnableKey", "KMSInvalidStateException",
                KeyId=meta["KeyId"])

    @report.section("a key or alias that does not exist is NotFoundException")
    def _():
        unknown = str(uuid.uuid4())
        refused("DescribeKey of an unknown key id raises NotFoundException", "DescribeKey", "NotFoundException",
                KeyId=unknown)
        refused("Encrypt under an unknown alias raises NotFoundException", "Encrypt", "NotFoundException",
                KeyId="alias/kmsim-none-" + unknown[:8], Plaintext=plaintext)
        needs(state, "arn")
        parts = key_arn_parts(state["arn"])
        refused("DisableKey of an unknown key ARN raises NotFoundException", "DisableKey", "NotFoundException",
                KeyId="arn:aws:kms:%s:%s:key/%s" % (parts["region"], parts["account"], unknown))

    @report.section("UpdateKeyDescription changes what DescribeKey shows")
    def _():
        needs(state, "key")
        k("UpdateKeyDescription", KeyId=state["key"], Description="renamed")
        equal("DescribeKey shows the new Description",
              k("DescribeKey", KeyId=state["key"])["KeyMetadata"].get("Description"), "renamed")


# ---------------------------------------------------------------------------
# resources: aliases, tags, and paging with Limit / Marker / Truncated
# ---------------------------------------------------------------------------


def page_through(operation, items_field, limit, **params):
    """Every page of a listing with `Limit`; checks each page's shape. Returns (items, pages)."""
    items, pages, marker = [], 0, None
    while True:
        request = dict(params, Limit=limit)
        if marker:
            request["Marker"] = marker
        page = k(operation, **request)
        pages += 1
        got = page.get(items_field) or []
        check("%s page %d holds at most Limit=%d entries" % (operation, pages, limit), len(got) <= limit,
              page_items=len(got))
        items.extend(got)
        if not page.get("Truncated"):
            check("%s's last page has no NextMarker" % operation, "NextMarker" not in page, page=page)
            return items, pages
        check("%s page %d is Truncated with a NextMarker" % (operation, pages), bool(page.get("NextMarker")), page=page)
        marker = page["NextMarker"]
        if pages > 50:
            raise CheckFailed("%s ends" % operation, {"pages": pages})


def resources():
    state = {}
    suffix = uuid.uuid4().hex[:8]

    @report.section("aliases: CreateAlias, use by alias name and alias ARN, ListAliases, UpdateAlias, DeleteAlias")
    def _():
        first, second = new_key("alias target 1"), new_key("alias target 2")
        state["keys"] = [first["KeyId"], second["KeyId"]]
        parts = key_arn_parts(first["Arn"])
        name = "alias/sdk-" + suffix
        alias_arn = "arn:aws:kms:%s:%s:%s" % (parts["region"], parts["account"], name)
        k("CreateAlias", AliasName=name, TargetKeyId=first["KeyId"])
        equal("DescribeKey by the alias name finds the key", k("DescribeKey", KeyId=name)["KeyMetadata"]["KeyId"],
              first["KeyId"])
        equal("Encrypt by the alias name answers the key ARN",
              k("Encrypt", KeyId=name, Plaintext=b"by alias")["KeyId"], first["Arn"])
        equal("Encrypt by the alias ARN answers the key ARN",
              k("Encrypt", KeyId=alias_arn, Plaintext=b"by alias arn")["KeyId"], first["Arn"])
        refused("CreateAlias with a name in use raises AlreadyExistsException", "CreateAlias", "AlreadyExistsException",
                AliasName=name, TargetKeyId=second["KeyId"])
        error = refused("an alias under alias/aws/ is reserved", "CreateAlias",
                        ("NotAuthorizedException", "ValidationException"), AliasName="alias/aws/sdk-" + suffix,
                        TargetKeyId=first["KeyId"])
        report.fact("alias/aws/ refused with", error.get("code"))
        listed = k("ListAliases", KeyId=first["KeyId"])
        entries = [a for a in listed.get("Aliases", []) if a.get("AliasName") == name]
        check("ListAliases with KeyId lists the alias", len(entries) == 1, aliases=listed.get("Aliases"))
        equal("the alias's AliasArn", entries[0].get("AliasArn"), alias_arn)
        equal("the alias's TargetKeyId is the key id", entries[0].get("TargetKeyId"), first["KeyId"])
        check("ListAliases with KeyId lists only that key's aliases",
              all(a.get("TargetKeyId") == first["KeyId"] for a in listed.get("Aliases", [])), aliases=listed)
        k("UpdateAlias", AliasName=name, TargetKeyId=second["KeyId"])
        equal("after UpdateAlias the alias names the other key", k("DescribeKey", KeyId=name)["KeyMetadata"]["KeyId"],
              second["KeyId"])
        k("DeleteAlias", AliasName=name)
        refused("after DeleteAlias, DescribeKey by it raises NotFoundException", "DescribeKey", "NotFoundException",
                KeyId=name)

    @report.section("tags: TagResource, ListResourceTags (paged), UntagResource")
    def _():
        needs(state, "keys")
        key = state["keys"][0]
        tags = [{"TagKey": "team", "TagValue": "payments"}, {"TagKey": "env", "TagValue": "test"},
                {"TagKey": "owner", "TagValue": "kmsim"}]
        k("TagResource", KeyId=key, Tags=tags)
        listed = k("ListResourceTags", KeyId=key)
        equal("ListResourceTags answers the tags", sorted((t["TagKey"], t["TagValue"]) for t in listed.get("Tags", [])),
              sorted((t["TagKey"], t["TagValue"]) for t in tags))
        equal("ListResourceTags is not Truncated", listed.get("Truncated"), False)
        paged, pages = page_through("ListResourceTags", "Tags", 1, KeyId=key)
        equal("paging ListResourceTags with Limit=1 gives every tag once", sorted(t["TagKey"] for t in paged),
              sorted(t["TagKey"] for t in tags))
        k("TagResource", KeyId=key, Tags=[{"TagKey": "env", "TagValue": "prod"}])
        k("UntagResource", KeyId=key, TagKeys=["owner"])
        after = {t["TagKey"]: t["TagValue"] for t in k("ListResourceTags", KeyId=key).get("Tags", [])}
        equal("TagResource overwrites a value and UntagResource removes a key", after,
              {"team": "payments", "env": "prod"})

    @report.section("ListKeys pages with Limit, Marker, Truncated and NextMarker, and boto3's paginator agrees")
    def _():
        made = [new_key("paging %d" % i)["KeyId"] for i in range(5)]
        listed, pages = page_through("ListKeys", "Keys", 2)
        ids = [entry.get("KeyId") for entry in listed]
        check("every key appears once across the pages", len(ids) == len(set(ids)) and set(made) <= set(ids),
              listed=ids, made=made)
        check("there were several pages", pages >= 3, pages=pages)
        check("each entry's KeyArn is the key's ARN",
              all((key_arn_parts(e.get("KeyArn")) or {}).get("id") == e.get("KeyId") for e in listed), listed=listed)
        mark = tap.mark()
        paginated = []
        report.doing = "paging ListKeys with boto3's paginator"
        try:
            for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}):
                paginated.extend(e["KeyId"] for e in page.get("Keys", []))
        finally:
            report.wire_calls(mark)
        equal("the paginator finds the same keys", sorted(paginated), sorted(ids))

    @report.section("ListAliases pages with Limit and Marker")
    def _():
        needs(state, "keys")
        names = ["alias/page-%s-%d" % (suffix, i) for i in range(5)]
        for name in names:
            k("CreateAlias", AliasName=name, TargetKeyId=state["keys"][0])
        listed, pages = page_through("ListAliases", "Aliases", 2)
        found = [a.get("AliasName") for a in listed]
        check("every alias appears once across the pages", len(found) == len(set(found)) and set(names) <= set(found),
              found=found)
        by_key, _pages = page_through("ListAliases", "Aliases", 2, KeyId=state["keys"][0])
        equal("ListAliases with KeyId and Limit=2 pages through that key's aliases",
              sorted(a["AliasName"] for a in by_key), sorted(names))

    @report.section("a key pending deletion refuses TagResource, UpdateKeyDescription and CreateAlias")
    def _():
        needs(state, "keys")
        key = state["keys"][1]
        k("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=30)
        refused("TagResource raises KMSInvalidStateException", "TagResource", "KMSInvalidStateException", KeyId=key,
                Tags=[{"TagKey": "late", "TagValue": "x"}])
        refused("UpdateKeyDescription raises KMSInvalidStateException", "UpdateKeyDescription",
                "KMSInvalidStateException", KeyId=key, Description="late")
        refused("CreateAlias raises KMSInvalidStateException", "CreateAlias", "KMSInvalidStateException",
                AliasName="alias/late-" + suffix, TargetKeyId=key)


# ---------------------------------------------------------------------------
# crypto: Encrypt / Decrypt / ReEncrypt / data keys / random
# ---------------------------------------------------------------------------


def crypto():
    state = {}
    context = {"app": "billing", "note": "a b/+=é"}

    @report.section("Encrypt and Decrypt (Decrypt without KeyId), with an encryption context")
    def _():
        first, second = new_key("crypto 1"), new_key("crypto 2")
        state.update(key=first["KeyId"], arn=first["Arn"], other=second["KeyId"], other_arn=second["Arn"])
        sealed = k("Encrypt", KeyId=first["KeyId"], Plaintext=b"secret payload", EncryptionContext=context)
        equal("Encrypt answers the key ARN as KeyId", sealed.get("KeyId"), first["Arn"])
        equal("Encrypt answers EncryptionAlgorithm SYMMETRIC_DEFAULT", sealed.get("EncryptionAlgorithm"),
              "SYMMETRIC_DEFAULT")
        blob = sealed.get("CiphertextBlob")
        check("CiphertextBlob is bytes, not the plaintext", isinstance(blob, bytes) and b"secret payload" not in blob,
              blob=blob)
        state["blob"] = blob
        opened = k("Decrypt", CiphertextBlob=blob, EncryptionContext=context)
        equal("Decrypt without KeyId opens it", opened.get("Plaintext"), b"secret payload")
        equal("Decrypt answers the key ARN as KeyId", opened.get("KeyId"), first["Arn"])
        equal("Decrypt answers EncryptionAlgorithm SYMMETRIC_DEFAULT", opened.get("EncryptionAlgorithm"),
              "SYMMETRIC_DEFAULT")
        equal("Decrypt with the right KeyId (its ARN) opens it",
              k("Decrypt", CiphertextBlob=blob, EncryptionContext=context, KeyId=first["Arn"]).get("Plaintext"),
              b"secret payload")

    @report.section("Decrypt refuses a wrong KeyId, a wrong context and a tampered ciphertext")
    def _():
        needs(state, "blob")
        blob = state["blob"]
        refused("Decrypt with another key's KeyId raises IncorrectKeyException", "Decrypt", "IncorrectKeyException",
                CiphertextBlob=blob, EncryptionContext=context, KeyId=state["other"])
        refused("Decrypt with a different context raises InvalidCiphertextException", "Decrypt",
                "InvalidCiphertextException", CiphertextBlob=blob, EncryptionContext={"app": "other"})
        refused("Decrypt without the context raises InvalidCiphertextException", "Decrypt",
                "InvalidCiphertextException", CiphertextBlob=blob)
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        refused("Decrypt of a tampered ciphertext raises InvalidCiphertextException", "Decrypt",
                "InvalidCiphertextException", CiphertextBlob=tampered, EncryptionContext=context)
        refused("Decrypt of bytes that are no ciphertext raises InvalidCiphertextException", "Decrypt",
                "InvalidCiphertextException", CiphertextBlob=b"not a ciphertext at all, just bytes")

    @report.section("Encrypt takes up to 4096 bytes and only from an ENCRYPT_DECRYPT key")
    def _():
        needs(state, "key")
        big = bytes(range(256)) * 16
        sealed = k("Encrypt", KeyId=state["key"], Plaintext=big)["CiphertextBlob"]
        equal("4096 bytes round-trip", k("Decrypt", CiphertextBlob=sealed)["Plaintext"], big)
        refused("4097 bytes raise ValidationException", "Encrypt", "ValidationException", KeyId=state["key"],
                Plaintext=big + b"x")
        signer = new_key("a signing key", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        refused("Encrypt with a SIGN_VERIFY key raises InvalidKeyUsageException", "Encrypt", "InvalidKeyUsageException",
                KeyId=signer["KeyId"], Plaintext=b"x")

    @report.section("ReEncrypt moves a ciphertext to another key and context")
    def _():
        needs(state, "blob", "other")
        moved = k("ReEncrypt", CiphertextBlob=state["blob"], SourceEncryptionContext=context,
                  DestinationKeyId=state["other"], DestinationEncryptionContext={"moved": "yes"})
        equal("ReEncrypt answers the source key ARN", moved.get("SourceKeyId"), state["arn"])
        equal("ReEncrypt answers the destination key ARN as KeyId", moved.get("KeyId"), state["other_arn"])
        equal("ReEncrypt answers both algorithms", (moved.get("SourceEncryptionAlgorithm"),
                                                    moved.get("DestinationEncryptionAlgorithm")),
              ("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT"))
        opened = k("Decrypt", CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"moved": "yes"})
        equal("Decrypt opens the moved ciphertext under the destination key",
              (opened.get("Plaintext"), opened.get("KeyId")), (b"secret payload", state["other_arn"]))
        refused("ReEncrypt with the wrong SourceKeyId raises IncorrectKeyException", "ReEncrypt",
                "IncorrectKeyException", CiphertextBlob=state["blob"], SourceEncryptionContext=context,
                SourceKeyId=state["other"], DestinationKeyId=state["other"])

    @report.section("GenerateDataKey and GenerateDataKeyWithoutPlaintext: data keys Decrypt opens")
    def _():
        needs(state, "key")
        for spec, size in (("AES_256", 32), ("AES_128", 16)):
            made = k("GenerateDataKey", KeyId=state["key"], KeySpec=spec, EncryptionContext=context)
            equal("GenerateDataKey %s gives %d bytes" % (spec, size), len(made.get("Plaintext") or b""), size)
            equal("GenerateDataKey answers the key ARN", made.get("KeyId"), state["arn"])
            equal("Decrypt of its CiphertextBlob is its Plaintext",
                  k("Decrypt", CiphertextBlob=made["CiphertextBlob"], EncryptionContext=context)["Plaintext"],
                  made["Plaintext"])
        made = k("GenerateDataKey", KeyId=state["key"], NumberOfBytes=64)
        equal("GenerateDataKey with NumberOfBytes=64 gives 64 bytes", len(made.get("Plaintext") or b""), 64)
        bare = k("GenerateDataKeyWithoutPlaintext", KeyId=state["key"], KeySpec="AES_256")
        check("GenerateDataKeyWithoutPlaintext answers no Plaintext", "Plaintext" not in bare, response=bare)
        equal("its CiphertextBlob decrypts to 32 bytes",
              len(k("Decrypt", CiphertextBlob=bare["CiphertextBlob"])["Plaintext"]), 32)

    @report.section("GenerateDataKeyPair(+WithoutPlaintext): key pairs cryptography loads and checks")
    def _():
        needs(state, "key")
        for spec in ("RSA_2048", "ECC_NIST_P256"):
            pair = k("GenerateDataKeyPair", KeyId=state["key"], KeyPairSpec=spec, EncryptionContext=context)
            equal("GenerateDataKeyPair %s answers its KeyPairSpec" % spec, pair.get("KeyPairSpec"), spec)
            equal("GenerateDataKeyPair %s answers the key ARN" % spec, pair.get("KeyId"), state["arn"])
            private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
            public_der = private.public_key().public_bytes(serialization.Encoding.DER,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
            equal("the %s private key (PKCS#8 DER) matches PublicKey (SPKI DER)" % spec, public_der, pair["PublicKey"])
            if spec.startswith("RSA"):
                check("the RSA pair is 2048 bits", private.key_size == 2048, bits=private.key_size)
                signature = private.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
                serialization.load_der_public_key(pair["PublicKey"]).verify(signature, b"m", padding.PKCS1v15(),
                                                                           hashes.SHA256())
            else:
                check("the EC pair is on P-256", isinstance(private.curve, ec.SECP256R1), curve=private.curve.name)
                signature = private.sign(b"m", ec.ECDSA(hashes.SHA256()))
                serialization.load_der_public_key(pair["PublicKey"]).verify(signature, b"m", ec.ECDSA(hashes.SHA256()))
            check("cryptography signs with the private key and verifies with PublicKey", True)
            opened = k("Decrypt", CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=context)
            equal("Decrypt of PrivateKeyCiphertextBlob is PrivateKeyPlaintext", opened["Plaintext"],
                  pair["PrivateKeyPlaintext"])
        bare = k("GenerateDataKeyPairWithoutPlaintext", KeyId=state["key"], KeyPairSpec="ECC_NIST_P256")
        check("GenerateDataKeyPairWithoutPlaintext answers no PrivateKeyPlaintext", "PrivateKeyPlaintext" not in bare,
              response=bare)
        private = serialization.load_der_private_key(k("Decrypt", CiphertextBlob=bare["PrivateKeyCiphertextBlob"])
                                                     ["Plaintext"], None)
        equal("its private key, once decrypted, matches its PublicKey",
              private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo), bare["PublicKey"])

    @report.section("an RSA ENCRYPT_DECRYPT key: Encrypt and Decrypt with RSAES_OAEP, and cryptography's OAEP agrees")
    def _():
        meta = new_key("rsa encryption", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
        equal("KeyMetadata.EncryptionAlgorithms lists both OAEP hashes", sorted(meta.get("EncryptionAlgorithms") or []),
              ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
        public = serialization.load_der_public_key(k("GetPublicKey", KeyId=meta["KeyId"])["PublicKey"])
        for algorithm, digest in (("RSAES_OAEP_SHA_256", hashes.SHA256()), ("RSAES_OAEP_SHA_1", hashes.SHA1())):
            sealed = k("Encrypt", KeyId=meta["KeyId"], Plaintext=b"to the RSA key", EncryptionAlgorithm=algorithm)
            equal("Encrypt answers %s" % algorithm, sealed.get("EncryptionAlgorithm"), algorithm)
            opened = k("Decrypt", KeyId=meta["KeyId"], CiphertextBlob=sealed["CiphertextBlob"],
                       EncryptionAlgorithm=algorithm)
            equal("Decrypt with %s opens it" % algorithm, opened.get("Plaintext"), b"to the RSA key")
            outside = public.encrypt(b"sealed outside", padding.OAEP(padding.MGF1(digest), digest, None))
            equal("Decrypt opens what cryptography sealed with GetPublicKey's key (%s)" % algorithm,
                  k("Decrypt", KeyId=meta["KeyId"], CiphertextBlob=outside, EncryptionAlgorithm=algorithm)["Plaintext"],
                  b"sealed outside")
        refused("Encrypt without an EncryptionAlgorithm on an RSA key raises InvalidKeyUsageException", "Encrypt",
                "InvalidKeyUsageException", KeyId=meta["KeyId"], Plaintext=b"x")

    @report.section("GenerateRandom gives 1 to 1024 random bytes")
    def _():
        one = k("GenerateRandom", NumberOfBytes=32).get("Plaintext") or b""
        two = k("GenerateRandom", NumberOfBytes=32).get("Plaintext") or b""
        equal("GenerateRandom 32 gives 32 bytes", len(one), 32)
        check("two draws differ", one != two, one=one, two=two)
        equal("GenerateRandom 1024 gives 1024 bytes", len(k("GenerateRandom", NumberOfBytes=1024)["Plaintext"]), 1024)
        refused("GenerateRandom 1025 raises ValidationException", "GenerateRandom", "ValidationException",
                NumberOfBytes=1025)


# ---------------------------------------------------------------------------
# sign: Sign / Verify / GetPublicKey, checked with cryptography
# ---------------------------------------------------------------------------

SIGNING = [
    ("RSA_2048", "RSASSA_PSS_SHA_256"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
]


def verify_outside(public_key, algorithm, signature, message):
    """cryptography's verdict on a signature of `message` (the whole message: DIGEST signs its SHA-256)."""
    if algorithm == "RSASSA_PSS_SHA_256":
        # AWS KMS's PSS salt is as long as the digest.
        public_key.verify(signature, message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    elif algorithm == "RSASSA_PKCS1_V1_5_SHA_256":
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    else:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def sign():
    keys = {}
    message = b"the message kmsim signs"

    @report.section("GetPublicKey answers each signing key's SubjectPublicKeyInfo DER")
    def _():
        for spec in sorted({spec for spec, _ in SIGNING}):
            meta = new_key("sign " + spec, KeySpec=spec, KeyUsage="SIGN_VERIFY")
            equal("CreateKey %s answers KeyUsage SIGN_VERIFY" % spec, meta.get("KeyUsage"), "SIGN_VERIFY")
            published = k("GetPublicKey", KeyId=meta["KeyId"])
            public = serialization.load_der_public_key(published["PublicKey"])
            equal("GetPublicKey %s answers KeySpec" % spec, published.get("KeySpec"), spec)
            equal("GetPublicKey %s answers KeyUsage" % spec, published.get("KeyUsage"), "SIGN_VERIFY")
            equal("GetPublicKey %s answers the key ARN" % spec, published.get("KeyId"), meta["Arn"])
            if spec.startswith("RSA"):
                check("the RSA_2048 public key has 2048 bits", isinstance(public, rsa.RSAPublicKey) and
                      public.key_size == 2048, key=repr(public))
            else:
                curve = {"ECC_NIST_P256": ec.SECP256R1, "ECC_SECG_P256K1": ec.SECP256K1}[spec]
                check("the %s public key is on its curve" % spec, isinstance(public, ec.EllipticCurvePublicKey) and
                      isinstance(public.curve, curve), key=repr(public))
            keys[spec] = (meta["KeyId"], meta["Arn"], public, published.get("SigningAlgorithms") or [])

    for spec, algorithm in SIGNING:

        @report.section("%s with %s, RAW and DIGEST: cryptography verifies, Verify agrees, a bad one is refused"
                        % (algorithm, spec))
        def _(spec=spec, algorithm=algorithm):
            needs(keys, spec)
            key, arn, public, algorithms = keys[spec]
            check("GetPublicKey lists %s" % algorithm, algorithm in algorithms, signing_algorithms=algorithms)
            for kind, payload in (("RAW", message), ("DIGEST", sha256(message))):
                signed = k("Sign", KeyId=key, Message=payload, MessageType=kind, SigningAlgorithm=algorithm)
                equal("Sign %s answers the SigningAlgorithm" % kind, signed.get("SigningAlgorithm"), algorithm)
                equal("Sign %s answers the key ARN" % kind, signed.get("KeyId"), arn)
                try:
                    verify_outside(public, algorithm, signed["Signature"], message)
                except Exception as error:
                    raise CheckFailed("cryptography verifies the %s signature with GetPublicKey's key" % kind,
                                      {"error": repr(error), "signature": signed["Signature"].hex()})
                check("cryptography verifies the %s signature with GetPublicKey's key" % kind, True)
                verified = k("Verify", KeyId=key, Message=payload, MessageType=kind, Signature=signed["Signature"],
                             SigningAlgorithm=algorithm)
                equal("Verify %s answers SignatureValid true" % kind, verified.get("SignatureValid"), True)
                refused("Verify %s of another message raises KMSInvalidSignatureException" % kind, "Verify",
                        "KMSInvalidSignatureException", KeyId=key,
                        Message=(b"another message" if kind == "RAW" else sha256(b"another message")),
                        MessageType=kind, Signature=signed["Signature"], SigningAlgorithm=algorithm)

    @report.section("signing keys and encryption keys are not interchangeable")
    def _():
        symmetric = new_key("not for signing")
        refused("Sign with an ENCRYPT_DECRYPT key raises InvalidKeyUsageException", "Sign", "InvalidKeyUsageException",
                KeyId=symmetric["KeyId"], Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
        needs(keys, "ECC_NIST_P256")
        key = keys["ECC_NIST_P256"][0]
        k("DisableKey", KeyId=key)
        refused("Sign with a disabled key raises DisabledException", "Sign", "DisabledException", KeyId=key,
                Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")


def p521():
    @report.section("ECC_NIST_P521 signs with ECDSA_SHA_512, RAW and DIGEST, and cryptography verifies")
    def _():
        meta = new_key("p521", KeySpec="ECC_NIST_P521", KeyUsage="SIGN_VERIFY")
        equal("KeyMetadata.SigningAlgorithms is [ECDSA_SHA_512]", meta.get("SigningAlgorithms"), ["ECDSA_SHA_512"])
        public = serialization.load_der_public_key(k("GetPublicKey", KeyId=meta["KeyId"])["PublicKey"])
        check("GetPublicKey's key is on P-521", isinstance(public.curve, ec.SECP521R1), curve=public.curve.name)
        message = b"signed on P-521"
        for kind, payload in (("RAW", message), ("DIGEST", hashlib.sha512(message).digest())):
            signed = k("Sign", KeyId=meta["KeyId"], Message=payload, MessageType=kind, SigningAlgorithm="ECDSA_SHA_512")
            public.verify(signed["Signature"], message, ec.ECDSA(hashes.SHA512()))
            check("cryptography verifies the %s signature" % kind, True)
            equal("Verify agrees (%s)" % kind, k("Verify", KeyId=meta["KeyId"], Message=payload, MessageType=kind,
                                                 SigningAlgorithm="ECDSA_SHA_512",
                                                 Signature=signed["Signature"]).get("SignatureValid"), True)
        refused("ECDSA_SHA_256 on a P-521 key raises InvalidKeyUsageException", "Sign", "InvalidKeyUsageException",
                KeyId=meta["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256")


def agreement():
    @report.section("DeriveSharedSecret: a KEY_AGREEMENT key's ECDH secret equals cryptography's, from either side")
    def _():
        for spec, curve in (("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()),
                            ("ECC_NIST_P521", ec.SECP521R1()), ("ECC_SECG_P256K1", ec.SECP256K1())):
            meta = new_key("agreement", KeySpec=spec, KeyUsage="KEY_AGREEMENT")
            equal("KeyMetadata.KeyAgreementAlgorithms is [ECDH] for %s" % spec, meta.get("KeyAgreementAlgorithms"),
                  ["ECDH"])
            kms_public = serialization.load_der_public_key(k("GetPublicKey", KeyId=meta["KeyId"])["PublicKey"])
            mine = ec.generate_private_key(curve)
            mine_der = mine.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
            derived = k("DeriveSharedSecret", KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=mine_der)
            equal("the %s shared secret equals cryptography's ECDH with GetPublicKey's key" % spec,
                  derived.get("SharedSecret"), mine.exchange(ec.ECDH(), kms_public))
            equal("DeriveSharedSecret answers ECDH and the key ARN", (derived.get("KeyAgreementAlgorithm"),
                  derived.get("KeyId")), ("ECDH", meta["Arn"]))
        refused("Sign with a KEY_AGREEMENT key raises InvalidKeyUsageException", "Sign", "InvalidKeyUsageException",
                KeyId=meta["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
        other = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        refused("a peer key on another curve raises ValidationException", "DeriveSharedSecret", "ValidationException",
                KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=other)
        signer = new_key("signer", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        refused("DeriveSharedSecret with a SIGN_VERIFY key raises InvalidKeyUsageException", "DeriveSharedSecret",
                "InvalidKeyUsageException", KeyId=signer["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=other)


# ---------------------------------------------------------------------------
# mac: GenerateMac / VerifyMac, checked against imported key material
# ---------------------------------------------------------------------------


def mac():
    state = {}
    message = b"the message kmsim MACs"

    @report.section("GenerateMac and VerifyMac on an HMAC_256 key")
    def _():
        meta = new_key("mac", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        equal("KeyMetadata.MacAlgorithms is [HMAC_SHA_256]", meta.get("MacAlgorithms"), ["HMAC_SHA_256"])
        state["key"] = meta["KeyId"]
        made = k("GenerateMac", KeyId=meta["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")
        equal("GenerateMac gives a 32-byte MAC", len(made.get("Mac") or b""), 32)
        equal("GenerateMac answers the MacAlgorithm and key ARN", (made.get("MacAlgorithm"), made.get("KeyId")),
              ("HMAC_SHA_256", meta["Arn"]))
        equal("GenerateMac is deterministic", k("GenerateMac", KeyId=meta["KeyId"], Message=message,
                                                MacAlgorithm="HMAC_SHA_256")["Mac"], made["Mac"])
        verified = k("VerifyMac", KeyId=meta["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256", Mac=made["Mac"])
        equal("VerifyMac answers MacValid true", verified.get("MacValid"), True)
        refused("VerifyMac of another message raises KMSInvalidMacException", "VerifyMac", "KMSInvalidMacException",
                KeyId=meta["KeyId"], Message=b"another", MacAlgorithm="HMAC_SHA_256", Mac=made["Mac"])
        refused("HMAC_SHA_512 on an HMAC_256 key raises InvalidKeyUsageException", "GenerateMac",
                "InvalidKeyUsageException", KeyId=meta["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_512")

    @report.section("an imported HMAC key's GenerateMac equals Python's hmac over the same material")
    def _():
        for spec, algorithm, digest in (("HMAC_256", "HMAC_SHA_256", hashlib.sha256),
                                        ("HMAC_224", "HMAC_SHA_224", hashlib.sha224)):
            meta = new_key("imported mac", KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC", Origin="EXTERNAL")
            equal("the EXTERNAL %s key starts PendingImport" % spec, meta.get("KeyState"), "PendingImport")
            equal("its MacAlgorithms is [%s]" % algorithm, meta.get("MacAlgorithms"), [algorithm])
            params = k("GetParametersForImport", KeyId=meta["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                       WrappingKeySpec="RSA_2048")
            check("GetParametersForImport answers PublicKey, ImportToken and ParametersValidTo",
                  bool(params.get("PublicKey")) and bool(params.get("ImportToken")) and
                  isinstance(params.get("ParametersValidTo"), datetime), response=params)
            wrapping = serialization.load_der_public_key(params["PublicKey"])
            material = digest(b"kmsim imported hmac material").digest()
            wrapped = wrapping.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
            k("ImportKeyMaterial", KeyId=meta["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
              ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
            equal("after ImportKeyMaterial the key is Enabled",
                  k("DescribeKey", KeyId=meta["KeyId"])["KeyMetadata"].get("KeyState"), "Enabled")
            made = k("GenerateMac", KeyId=meta["KeyId"], Message=message, MacAlgorithm=algorithm)
            equal("GenerateMac %s equals hmac.new(material, message, %s)" % (algorithm, digest.__name__),
                  made.get("Mac"), hmac.new(material, message, digest).digest())

    @report.section("a disabled HMAC key refuses GenerateMac with DisabledException")
    def _():
        needs(state, "key")
        k("DisableKey", KeyId=state["key"])
        refused("GenerateMac raises DisabledException", "GenerateMac", "DisabledException", KeyId=state["key"],
                Message=message, MacAlgorithm="HMAC_SHA_256")


# ---------------------------------------------------------------------------
# rotation
# ---------------------------------------------------------------------------


def rotation():
    state = {}

    @report.section("EnableKeyRotation with RotationPeriodInDays shows in GetKeyRotationStatus")
    def _():
        meta = new_key("rotation")
        state.update(key=meta["KeyId"], arn=meta["Arn"], created=meta["CreationDate"])
        status = k("GetKeyRotationStatus", KeyId=meta["KeyId"])
        equal("a new key's rotation is off", status.get("KeyRotationEnabled"), False)
        k("EnableKeyRotation", KeyId=meta["KeyId"], RotationPeriodInDays=90)
        status = k("GetKeyRotationStatus", KeyId=meta["KeyId"])
        equal("GetKeyRotationStatus answers KeyRotationEnabled true", status.get("KeyRotationEnabled"), True)
        equal("GetKeyRotationStatus answers RotationPeriodInDays 90", status.get("RotationPeriodInDays"), 90)
        nxt = status.get("NextRotationDate")
        check("NextRotationDate is 90 days after the key was made",
              isinstance(nxt, datetime) and 90 * DAY - timedelta(hours=1) <= nxt - meta["CreationDate"]
              <= 90 * DAY + timedelta(hours=1), next_rotation_date=nxt, created=meta["CreationDate"])
        state["old"] = k("Encrypt", KeyId=meta["KeyId"], Plaintext=b"before rotation")["CiphertextBlob"]

    @report.section("RotateKeyOnDemand adds a rotation ListKeyRotations pages through; old ciphertext still opens")
    def _():
        needs(state, "key", "old")
        equal("RotateKeyOnDemand answers the key ARN", k("RotateKeyOnDemand", KeyId=state["key"]).get("KeyId"),
              state["arn"])
        rotations = k("ListKeyRotations", KeyId=state["key"])
        entries = rotations.get("Rotations") or []
        check("ListKeyRotations lists one ON_DEMAND rotation with its date",
              len(entries) == 1 and entries[0].get("RotationType") == "ON_DEMAND" and
              isinstance(entries[0].get("RotationDate"), datetime), rotations=rotations)
        equal("the rotation names the key ARN", entries[0].get("KeyId"), state["arn"])
        equal("Decrypt opens the ciphertext made before the rotation",
              k("Decrypt", CiphertextBlob=state["old"])["Plaintext"], b"before rotation")
        new = k("Encrypt", KeyId=state["key"], Plaintext=b"after rotation")["CiphertextBlob"]
        equal("Decrypt opens a ciphertext made after it", k("Decrypt", CiphertextBlob=new)["Plaintext"],
              b"after rotation")
        k("RotateKeyOnDemand", KeyId=state["key"])
        listed, pages = page_through("ListKeyRotations", "Rotations", 1, KeyId=state["key"])
        equal("ListKeyRotations with Limit=1 pages through both rotations", (len(listed), pages), (2, 2))

    @report.section("DisableKeyRotation turns it off")
    def _():
        needs(state, "key")
        k("DisableKeyRotation", KeyId=state["key"])
        equal("GetKeyRotationStatus answers KeyRotationEnabled false",
              k("GetKeyRotationStatus", KeyId=state["key"]).get("KeyRotationEnabled"), False)

    @report.section("rotation is refused on keys AWS cannot rotate and in states that forbid it")
    def _():
        asymmetric = new_key("rsa", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
        refused("EnableKeyRotation on an RSA key raises UnsupportedOperationException", "EnableKeyRotation",
                "UnsupportedOperationException", KeyId=asymmetric["KeyId"])
        refused("RotateKeyOnDemand on an RSA key raises UnsupportedOperationException", "RotateKeyOnDemand",
                "UnsupportedOperationException", KeyId=asymmetric["KeyId"])
        external = new_key("external", Origin="EXTERNAL")
        refused("GetKeyRotationStatus on a PendingImport EXTERNAL key raises UnsupportedOperationException",
                "GetKeyRotationStatus", "UnsupportedOperationException", KeyId=external["KeyId"])
        disabled = new_key("disabled")
        k("DisableKey", KeyId=disabled["KeyId"])
        refused("EnableKeyRotation on a disabled key raises DisabledException", "EnableKeyRotation",
                "DisabledException", KeyId=disabled["KeyId"])
        doomed = new_key("doomed")
        k("ScheduleKeyDeletion", KeyId=doomed["KeyId"], PendingWindowInDays=7)
        refused("EnableKeyRotation on a key pending deletion raises KMSInvalidStateException", "EnableKeyRotation",
                "KMSInvalidStateException", KeyId=doomed["KeyId"])


# ---------------------------------------------------------------------------
# multiregion: a multi-Region key, its replica in another region, and their roles
# ---------------------------------------------------------------------------


def multiregion():
    state = {}
    east, west = REGION, "eu-west-1" if REGION != "eu-west-1" else "us-east-1"
    kms_west = client(region=west)

    @report.section("CreateKey with MultiRegion makes an mrk- primary key")
    def _():
        meta = new_key("multi-region", MultiRegion=True)
        state.update(key=meta["KeyId"], arn=meta["Arn"])
        check("the key id is mrk- and 32 hex digits", re.match(r"^mrk-[0-9a-f]{32}$", meta["KeyId"] or ""),
              key_id=meta["KeyId"])
        equal("DescribeKey says MultiRegion", meta.get("MultiRegion"), True)
        equal("the new key is the PRIMARY with no replicas", meta.get("MultiRegionConfiguration"), {
            "MultiRegionKeyType": "PRIMARY",
            "PrimaryKey": {"Arn": meta["Arn"], "Region": east},
            "ReplicaKeys": [],
        })

    @report.section("ReplicateKey copies it to another region: the same key id, an ARN of that region")
    def _():
        needs(state, "key")
        replicated = k("ReplicateKey", KeyId=state["arn"], ReplicaRegion=west, Description="replica",
                       Tags=[{"TagKey": "copy", "TagValue": "west"}])
        replica = replicated["ReplicaKeyMetadata"]
        state["replica_arn"] = replica["Arn"]
        equal("the replica has the primary's key id", replica["KeyId"], state["key"])
        equal("the replica's ARN names its region",
              (key_arn_parts(replica["Arn"]) or {}).get("region"), west)
        equal("the replica is a REPLICA of the primary", replica["MultiRegionConfiguration"]["MultiRegionKeyType"],
              "REPLICA")
        equal("its description and tags are its own", (replica["Description"], replicated.get("ReplicaTags")),
              ("replica", [{"TagKey": "copy", "TagValue": "west"}]))
        check("ReplicaPolicy is a key policy document", json.loads(replicated["ReplicaPolicy"]).get("Statement"))

    @report.section("a ciphertext made in one region decrypts in the other")
    def _():
        needs(state, "key", "replica_arn")
        blob = k("Encrypt", KeyId=state["key"], Plaintext=b"made in the east")["CiphertextBlob"]
        opened = k("Decrypt", on=kms_west, CiphertextBlob=blob)
        equal("the replica opens the primary's ciphertext", opened["Plaintext"], b"made in the east")
        equal("and names itself as the key", opened["KeyId"], state["replica_arn"])
        blob = k("Encrypt", on=kms_west, KeyId=state["key"], Plaintext=b"made in the west")["CiphertextBlob"]
        equal("the primary opens the replica's ciphertext", k("Decrypt", CiphertextBlob=blob)["Plaintext"],
              b"made in the west")

    @report.section("DescribeKey on either copy shows the whole set")
    def _():
        needs(state, "key", "replica_arn")
        primary = {"Arn": state["arn"], "Region": east}
        replicas = [{"Arn": state["replica_arn"], "Region": west}]
        for name, on, kind in (("primary", kms, "PRIMARY"), ("replica", kms_west, "REPLICA")):
            configuration = k("DescribeKey", on=on, KeyId=state["key"])["KeyMetadata"]["MultiRegionConfiguration"]
            equal("the %s is the %s" % (name, kind), configuration["MultiRegionKeyType"], kind)
            equal("the %s names the primary and the replica" % name,
                  (configuration["PrimaryKey"], configuration["ReplicaKeys"]), (primary, replicas))

    @report.section("a replica's state is its own")
    def _():
        needs(state, "key")
        k("DisableKey", on=kms_west, KeyId=state["key"])
        refused("Encrypt with the disabled replica raises DisabledException", "Encrypt", "DisabledException",
                on=kms_west, KeyId=state["key"], Plaintext=b"x")
        check("the primary still encrypts", k("Encrypt", KeyId=state["key"], Plaintext=b"x").get("CiphertextBlob"))
        k("EnableKey", on=kms_west, KeyId=state["key"])

    @report.section("ReplicateKey refuses a region that has the key, its own region, and a single-Region key")
    def _():
        needs(state, "key")
        refused("ReplicateKey to a region holding a replica raises AlreadyExistsException", "ReplicateKey",
                "AlreadyExistsException", KeyId=state["key"], ReplicaRegion=west)
        refused("ReplicateKey to the primary's own region raises ValidationException", "ReplicateKey",
                "ValidationException", KeyId=state["key"], ReplicaRegion=east)
        single = new_key("single-region")
        equal("a key made without MultiRegion is not multi-Region", single.get("MultiRegion"), False)
        refused("ReplicateKey of a single-Region key raises UnsupportedOperationException", "ReplicateKey",
                "UnsupportedOperationException", KeyId=single["KeyId"], ReplicaRegion=west)
        refused("a multi-Region key with Origin EXTERNAL raises UnsupportedOperationException", "CreateKey",
                "UnsupportedOperationException", MultiRegion=True, Origin="EXTERNAL")

    @report.section("UpdatePrimaryRegion swaps the roles")
    def _():
        needs(state, "key", "replica_arn")
        k("UpdatePrimaryRegion", KeyId=state["key"], PrimaryRegion=west)
        east_side = k("DescribeKey", KeyId=state["key"])["KeyMetadata"]["MultiRegionConfiguration"]
        west_side = k("DescribeKey", on=kms_west, KeyId=state["key"])["KeyMetadata"]["MultiRegionConfiguration"]
        equal("the old primary is a REPLICA, the replica the PRIMARY",
              (east_side["MultiRegionKeyType"], west_side["MultiRegionKeyType"]), ("REPLICA", "PRIMARY"))
        equal("both name the new primary", (east_side["PrimaryKey"], west_side["PrimaryKey"]),
              ({"Arn": state["replica_arn"], "Region": west},) * 2)
        refused("UpdatePrimaryRegion on what is now a replica raises UnsupportedOperationException",
                "UpdatePrimaryRegion", "UnsupportedOperationException", KeyId=state["key"], PrimaryRegion=west)
        blob = k("Encrypt", on=kms_west, KeyId=state["key"], Plaintext=b"after the swap")["CiphertextBlob"]
        equal("the copies still share their material", k("Decrypt", CiphertextBlob=blob)["Plaintext"],
              b"after the swap")

    @report.section("a rotation of the primary reaches the replica; a replica does not rotate on its own")
    def _():
        needs(state, "key")
        k("RotateKeyOnDemand", on=kms_west, KeyId=state["key"])
        blob = k("Encrypt", on=kms_west, KeyId=state["key"], Plaintext=b"new material")["CiphertextBlob"]
        equal("the replica opens what the rotated primary sealed", k("Decrypt", CiphertextBlob=blob)["Plaintext"],
              b"new material")
        refused("RotateKeyOnDemand on a replica raises UnsupportedOperationException", "RotateKeyOnDemand",
                "UnsupportedOperationException", KeyId=state["key"])


# ---------------------------------------------------------------------------
# policies
# ---------------------------------------------------------------------------


def policies():
    state = {}

    @report.section("GetKeyPolicy answers AWS's default key policy document")
    def _():
        meta = new_key("policy")
        account = key_arn_parts(meta["Arn"])["account"]
        state.update(key=meta["KeyId"], account=account)
        answered = k("GetKeyPolicy", KeyId=meta["KeyId"], PolicyName="default")
        equal("GetKeyPolicy answers PolicyName default", answered.get("PolicyName"), "default")
        document = json.loads(answered.get("Policy") or "null")
        check("the Policy is a JSON document", isinstance(document, dict), policy=answered.get("Policy"))
        equal("its Version is 2012-10-17", document.get("Version"), "2012-10-17")
        statements = document.get("Statement") or []
        root = "arn:aws:iam::%s:root" % account
        check("a statement allows the account root kms:* on *",
              any(s.get("Effect") == "Allow" and (s.get("Principal") or {}).get("AWS") == root and
                  s.get("Action") == "kms:*" and s.get("Resource") == "*" for s in statements), statements=statements)
        equal("GetKeyPolicy without PolicyName answers the same document",
              json.loads(k("GetKeyPolicy", KeyId=meta["KeyId"])["Policy"]), document)

    @report.section("PutKeyPolicy replaces the document; ListKeyPolicies lists default")
    def _():
        needs(state, "key", "account")
        custom = {"Version": "2012-10-17", "Id": "sdk-policy", "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % state["account"]},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "ReadOnly", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::%s:user/reader" % state["account"]},
             "Action": ["kms:DescribeKey", "kms:GetKeyPolicy"], "Resource": "*"}]}
        k("PutKeyPolicy", KeyId=state["key"], PolicyName="default", Policy=json.dumps(custom))
        equal("GetKeyPolicy answers the document put", json.loads(k("GetKeyPolicy", KeyId=state["key"])["Policy"]),
              custom)
        listed = k("ListKeyPolicies", KeyId=state["key"])
        equal("ListKeyPolicies answers [default], not Truncated", (listed.get("PolicyNames"), listed.get("Truncated")),
              (["default"], False))
        refused("PutKeyPolicy of a document that is not JSON raises MalformedPolicyDocumentException", "PutKeyPolicy",
                "MalformedPolicyDocumentException", KeyId=state["key"], PolicyName="default", Policy="{not json")

    @report.section("CreateKey with Policy keeps that document")
    def _():
        needs(state, "account")
        document = {"Version": "2012-10-17", "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % state["account"]},
             "Action": "kms:*", "Resource": "*"}]}
        meta = new_key("with policy", Policy=json.dumps(document))
        equal("GetKeyPolicy answers the document given at CreateKey",
              json.loads(k("GetKeyPolicy", KeyId=meta["KeyId"])["Policy"]), document)


# ---------------------------------------------------------------------------
# grants
# ---------------------------------------------------------------------------


def grants():
    state = {}

    @report.section("CreateGrant answers a GrantId and a GrantToken that Encrypt accepts")
    def _():
        meta = new_key("grants")
        account = key_arn_parts(meta["Arn"])["account"]
        grantee = "arn:aws:iam::%s:role/kmsim-grantee" % account
        retirer = "arn:aws:iam::%s:role/kmsim-retirer" % account
        state.update(key=meta["KeyId"], arn=meta["Arn"], grantee=grantee, retirer=retirer)
        made = k("CreateGrant", KeyId=meta["KeyId"], GranteePrincipal=grantee, RetiringPrincipal=retirer,
                 Operations=["Encrypt", "Decrypt", "GenerateDataKey"], Name="sdk-grant",
                 Constraints={"EncryptionContextSubset": {"app": "sdk"}})
        check("CreateGrant answers GrantId and GrantToken", bool(made.get("GrantId")) and bool(made.get("GrantToken")),
              response=made)
        state.update(grant=made["GrantId"], token=made["GrantToken"])
        sealed = k("Encrypt", KeyId=meta["KeyId"], Plaintext=b"granted", EncryptionContext={"app": "sdk"},
                   GrantTokens=[made["GrantToken"]])
        equal("Encrypt with GrantTokens is answered", sealed.get("KeyId"), meta["Arn"])

    @report.section("ListGrants and ListRetirableGrants show the grant; ListGrants pages with Limit")
    def _():
        needs(state, "grant")
        listed = k("ListGrants", KeyId=state["key"])
        found = [g for g in listed.get("Grants", []) if g.get("GrantId") == state["grant"]]
        check("ListGrants lists the grant", len(found) == 1, grants=listed)
        grant = found[0]
        equal("the grant's KeyId is the key ARN", grant.get("KeyId"), state["arn"])
        equal("the grant's Name", grant.get("Name"), "sdk-grant")
        equal("the grant's GranteePrincipal", grant.get("GranteePrincipal"), state["grantee"])
        equal("the grant's RetiringPrincipal", grant.get("RetiringPrincipal"), state["retirer"])
        equal("the grant's Operations", sorted(grant.get("Operations") or []),
              ["Decrypt", "Encrypt", "GenerateDataKey"])
        equal("the grant's Constraints", grant.get("Constraints"), {"EncryptionContextSubset": {"app": "sdk"}})
        check("the grant's CreationDate is a timestamp", isinstance(grant.get("CreationDate"), datetime), grant=grant)
        retirable = k("ListRetirableGrants", RetiringPrincipal=state["retirer"])
        check("ListRetirableGrants lists it for its RetiringPrincipal",
              state["grant"] in [g.get("GrantId") for g in retirable.get("Grants", [])], grants=retirable)
        second = k("CreateGrant", KeyId=state["key"], GranteePrincipal=state["grantee"], Operations=["Decrypt"],
                   Name="second")
        state["second"] = second["GrantId"]
        paged, pages = page_through("ListGrants", "Grants", 1, KeyId=state["key"])
        equal("ListGrants with Limit=1 pages through both grants",
              sorted(g["GrantId"] for g in paged), sorted([state["grant"], state["second"]]))

    @report.section("RetireGrant and RevokeGrant remove grants; revoking an unknown one is refused")
    def _():
        needs(state, "grant", "second")
        k("RetireGrant", KeyId=state["arn"], GrantId=state["grant"])
        k("RevokeGrant", KeyId=state["key"], GrantId=state["second"])
        left = [g.get("GrantId") for g in k("ListGrants", KeyId=state["key"]).get("Grants", [])]
        equal("ListGrants lists neither afterwards", left, [])
        error = refused("RevokeGrant of a grant that is gone raises NotFoundException", "RevokeGrant",
                        ("NotFoundException", "InvalidGrantIdException"), KeyId=state["key"], GrantId=state["second"])
        report.fact("RevokeGrant of a revoked grant raised", error.get("code"))

    @report.section("CreateGrant on a disabled key raises DisabledException")
    def _():
        meta = new_key("grant on disabled")
        k("DisableKey", KeyId=meta["KeyId"])
        account = key_arn_parts(meta["Arn"])["account"]
        refused("CreateGrant raises DisabledException", "CreateGrant", "DisabledException", KeyId=meta["KeyId"],
                GranteePrincipal="arn:aws:iam::%s:role/kmsim-grantee" % account, Operations=["Decrypt"])


# ---------------------------------------------------------------------------
# signatures: SigV4 verified under --auth required
# ---------------------------------------------------------------------------


@contextmanager
def signing_clock(offset):
    """botocore signs with a clock `offset` away from now (it reads botocore.auth.get_current_datetime)."""
    original = botocore.auth.get_current_datetime

    def skewed(remove_tzinfo=True):
        return original(remove_tzinfo) + offset

    botocore.auth.get_current_datetime = skewed
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


def signatures():
    @report.section("calls signed with the right secret are answered, in the region of the credential scope")
    def _():
        listed = k("ListKeys")
        check("ListKeys answers", isinstance(listed.get("Keys"), list), response=listed)
        wire = tap.exchanges[-1]
        equal("the SDK signed AWS4-HMAC-SHA256", wire["signature"], "AWS4-HMAC-SHA256")
        check("the credential scope is <id>/<date>/%s/kms/aws4_request" % REGION,
              wire["credential"].startswith(ACCESS_KEY_ID + "/") and
              wire["credential"].endswith("/%s/kms/aws4_request" % REGION), credential=wire["credential"])
        meta = k("CreateKey", Description="signed")["KeyMetadata"]
        blob = k("Encrypt", KeyId=meta["KeyId"], Plaintext=b"signed", EncryptionContext={"n": "a b~*'()!/+é"})
        equal("Encrypt and Decrypt with a UTF-8 context round-trip",
              k("Decrypt", CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"n": "a b~*'()!/+é"})["Plaintext"],
              b"signed")
        elsewhere = client(region="eu-west-1")
        arn = k("CreateKey", on=elsewhere, Description="eu-west-1")["KeyMetadata"]["Arn"]
        equal("a key made with an eu-west-1 scope has an eu-west-1 ARN", (key_arn_parts(arn) or {}).get("region"),
              "eu-west-1")

    @report.section("a signature made with the wrong secret is InvalidSignatureException")
    def _():
        forged = client(secret=ACCESS_KEY_SECRET + "x")
        refused("a wrong secret raises InvalidSignatureException (400)", "ListKeys", "InvalidSignatureException",
                on=forged)

    @report.section("an unknown access key id is UnrecognizedClientException")
    def _():
        stranger = "AKIAKMSIMSTRANGER" + uuid.uuid4().hex[:3].upper()
        refused("an unknown access key id raises UnrecognizedClientException (400)", "ListKeys",
                "UnrecognizedClientException", on=client(access_key_id=stranger, secret="whatever-secret"))

    @report.section("an X-Amz-Date 20 minutes off is refused")
    def _():
        for offset, name in ((timedelta(minutes=-20), "20 minutes old"), (timedelta(minutes=20), "20 minutes ahead")):
            with signing_clock(offset):
                error = refused("a request signed %s is refused with InvalidSignatureException (400)" % name,
                                "ListKeys", "InvalidSignatureException")
            check("the X-Amz-Date sent was %s" % name, abs(
                datetime.strptime(tap.exchanges[-1]["amz_date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
                - datetime.now(timezone.utc) - offset) < timedelta(minutes=2), amz_date=tap.exchanges[-1]["amz_date"])
            report.fact("signed %s raised" % name, error)


# ---------------------------------------------------------------------------
# cloudtrail: LookupEvents on the same endpoint shows who decrypted what, and how it ended
# ---------------------------------------------------------------------------


def lookup(trail, **params):
    return report.call("LookupEvents", lambda: trail.lookup_events(**params), service="cloudtrail")


def cloudtrail():
    state = {}
    user_name = aws_scenario.setting("USER_NAME")
    trail = client("cloudtrail")

    @report.section("the calls to look up: CreateKey, Encrypt, a Decrypt that works and one with the wrong KeyId")
    def _():
        meta, other = new_key("trail"), new_key("trail other")
        state.update(key=meta["KeyId"], arn=meta["Arn"])
        blob = k("Encrypt", KeyId=meta["KeyId"], Plaintext=b"looked up")["CiphertextBlob"]
        state["encrypt_request"] = report.doc["calls"][-1]["request_id"]
        opened = k("Decrypt", CiphertextBlob=blob)
        state["ok_request"] = opened["ResponseMetadata"]["RequestId"]
        state["user_agent"] = tap.exchanges[-1]["user_agent"]
        error = refused("Decrypt with the wrong KeyId raises IncorrectKeyException", "Decrypt", "IncorrectKeyException",
                        CiphertextBlob=blob, KeyId=other["KeyId"])
        state["failed_request"] = error["request_id"]

    @report.section("LookupEvents by EventName, one event a page, finds both Decrypts: by whom, with which outcome")
    def _():
        needs(state, "ok_request", "failed_request")
        events, token, pages = [], None, 0
        while True:
            params = {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}],
                      "MaxResults": 1}
            if token:
                params["NextToken"] = token
            page = lookup(trail, **params)
            pages += 1
            check("LookupEvents page %d holds at most MaxResults=1 event" % pages, len(page.get("Events", [])) <= 1,
                  page=page.get("Events"))
            events.extend(page.get("Events", []))
            token = page.get("NextToken")
            if not token or pages > 20:
                break
        check("every event found is a Decrypt from kms.amazonaws.com",
              all(e.get("EventName") == "Decrypt" and e.get("EventSource") == "kms.amazonaws.com" for e in events),
              events=events)
        by_request = {}
        for event in events:
            detail = json.loads(event.get("CloudTrailEvent") or "{}")
            by_request[detail.get("requestID")] = (event, detail)
        check("the pages hold both Decrypts, found by the request id the SDK saw (x-amzn-RequestId)",
              state["ok_request"] in by_request and state["failed_request"] in by_request,
              request_ids=sorted(by_request), expected=[state["ok_request"], state["failed_request"]])
        check("paging took a page per event", pages >= 2, pages=pages)
        state["events"] = [e for e, _ in by_request.values()]
        event, detail = by_request[state["ok_request"]]
        equal("the event's Username is the user", event.get("Username"), user_name)
        equal("the event's AccessKeyId is the one that signed", event.get("AccessKeyId"), ACCESS_KEY_ID)
        equal("the event's ReadOnly is \"true\"", event.get("ReadOnly"), "true")
        check("the event's EventTime is a timestamp", isinstance(event.get("EventTime"), datetime), event=event)
        check("the event's Resources name the key ARN",
              {"ResourceType": "AWS::KMS::Key", "ResourceName": state["arn"]} in (event.get("Resources") or []),
              resources=event.get("Resources"))
        equal("EventId is the CloudTrailEvent's eventID", event.get("EventId"), detail.get("eventID"))
        equal("CloudTrailEvent.eventName", detail.get("eventName"), "Decrypt")
        equal("CloudTrailEvent.eventSource", detail.get("eventSource"), "kms.amazonaws.com")
        equal("CloudTrailEvent.awsRegion", detail.get("awsRegion"), REGION)
        equal("CloudTrailEvent.eventType", detail.get("eventType"), "AwsApiCall")
        identity = detail.get("userIdentity") or {}
        equal("CloudTrailEvent.userIdentity.type", identity.get("type"), "IAMUser")
        equal("CloudTrailEvent.userIdentity.userName", identity.get("userName"), user_name)
        equal("CloudTrailEvent.userIdentity.accessKeyId", identity.get("accessKeyId"), ACCESS_KEY_ID)
        equal("CloudTrailEvent.userAgent is boto3's", detail.get("userAgent"), state["user_agent"])
        equal("CloudTrailEvent.sourceIPAddress", detail.get("sourceIPAddress"), "127.0.0.1")
        check("a successful Decrypt has no errorCode", "errorCode" not in detail, event=detail)
        equal("CloudTrailEvent.responseElements is null for Decrypt", detail.get("responseElements"), None)
        check("CloudTrailEvent.resources name the key ARN",
              state["arn"] in [r.get("ARN") for r in detail.get("resources") or []], resources=detail.get("resources"))
        check("no plaintext in the event", "looked up" not in event.get("CloudTrailEvent", "") and
              base64.b64encode(b"looked up").decode() not in event.get("CloudTrailEvent", ""), event=detail)
        state["ok_time"] = event.get("EventTime")
        _event, failed = by_request[state["failed_request"]]
        equal("the refused Decrypt's errorCode is IncorrectKeyException", failed.get("errorCode"),
              "IncorrectKeyException")
        check("the refused Decrypt has an errorMessage", bool(failed.get("errorMessage")), event=failed)
        mark = tap.mark()
        report.doing = "paging LookupEvents with boto3's paginator"
        seen = []
        try:
            pages = trail.get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}],
                PaginationConfig={"PageSize": 1})
            for page in pages:
                seen.extend(e["EventId"] for e in page.get("Events", []))
        finally:
            report.wire_calls(mark)
        check("boto3's paginator finds the same events", set(e["EventId"] for e in state["events"]) <= set(seen),
              seen=seen)

    @report.section("LookupEvents by Username and by AccessKeyId finds the user's calls")
    def _():
        needs(state, "encrypt_request")
        for attribute, value in (("Username", user_name), ("AccessKeyId", ACCESS_KEY_ID)):
            found = lookup(trail, LookupAttributes=[{"AttributeKey": attribute, "AttributeValue": value}],
                           MaxResults=50).get("Events", [])
            field = "Username" if attribute == "Username" else "AccessKeyId"
            check("every event found by %s has it" % attribute, bool(found) and all(e.get(field) == value
                                                                                 for e in found), events=found)
            requests = [json.loads(e.get("CloudTrailEvent") or "{}").get("requestID") for e in found]
            check("the Encrypt is among them (by %s)" % attribute, state["encrypt_request"] in requests,
                  requests=requests)

    @report.section("StartTime and EndTime bound the lookup")
    def _():
        needs(state, "ok_time", "ok_request")
        at = state["ok_time"]
        by_name = [{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}]

        def requests(**window):
            found = lookup(trail, LookupAttributes=by_name, MaxResults=50, **window).get("Events", [])
            return [json.loads(e.get("CloudTrailEvent") or "{}").get("requestID") for e in found]

        check("a window around the Decrypt finds it", state["ok_request"] in requests(
            StartTime=at - timedelta(seconds=1), EndTime=at + timedelta(seconds=1)), at=at)
        check("a window ending an hour before finds nothing of it", state["ok_request"] not in requests(
            StartTime=at - timedelta(hours=2), EndTime=at - timedelta(hours=1)), at=at)
        check("a window starting an hour after finds nothing of it", state["ok_request"] not in requests(
            StartTime=at + timedelta(hours=1), EndTime=at + timedelta(hours=2)), at=at)


# ---------------------------------------------------------------------------
# states: AWS's key-state table, every cell, through boto3's own exceptions
# ---------------------------------------------------------------------------

STATE_MATERIAL = hashlib.sha256(b"kmsim state walk material").digest()
STATE_WALK = {}


def wrapped_material(key_id):
    """What ImportKeyMaterial takes to import STATE_MATERIAL into an EXTERNAL key, wrapped as a user wraps it."""
    params = k("GetParametersForImport", KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
               WrappingKeySpec="RSA_2048")
    wrapping = serialization.load_der_public_key(params["PublicKey"])
    wrapped = wrapping.encrypt(STATE_MATERIAL, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    return {"ImportToken": params["ImportToken"], "EncryptedKeyMaterial": wrapped,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


def key_in(kind, state):
    """A fresh key of `kind` brought into `state`, with what calls on it need made while it could still make them."""
    spec = {"symmetric": {}, "external": {}, "hmac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
            "rsa-sign": {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
            "ec-agree": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"},
            "multi-region": {"MultiRegion": True}}[kind]
    external = kind == "external" or state == "PendingImport"
    key_id = new_key("state walk: %s %s" % (kind, state), Origin="EXTERNAL" if external else "AWS_KMS",
                     **spec)["KeyId"]
    made = {"key": key_id, "alias": "alias/walk-" + uuid.uuid4().hex[:12], "moved": "alias/walk-" + uuid.uuid4().hex[:12]}
    if external:
        k("ImportKeyMaterial", KeyId=key_id, **wrapped_material(key_id))
        made["import"] = wrapped_material(key_id)
    k("CreateAlias", AliasName=made["alias"], TargetKeyId=key_id)
    k("CreateAlias", AliasName=made["moved"], TargetKeyId=STATE_WALK["other"])
    made["grant"] = k("CreateGrant", KeyId=key_id, GranteePrincipal=STATE_WALK["grantee"],
                      Operations=["DescribeKey"])["GrantId"]
    if kind == "hmac":
        made["mac"] = k("GenerateMac", KeyId=key_id, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    elif kind == "rsa-sign":
        made["signature"] = k("Sign", KeyId=key_id, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    elif kind == "ec-agree":
        made["peer"] = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        made["blob"] = k("Encrypt", KeyId=key_id, Plaintext=b"p")["CiphertextBlob"]
    if kind == "multi-region" and state != "PendingDeletion":
        # A primary with a replica cannot be scheduled for deletion, so only the others have one.
        k("ReplicateKey", KeyId=key_id, ReplicaRegion=STATE_WALK["replica_region"])
    if state == "Disabled":
        k("DisableKey", KeyId=key_id)
    elif state == "PendingDeletion":
        k("ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    elif state == "PendingImport":
        k("DeleteImportedKeyMaterial", KeyId=key_id)
    return made


def state_call(operation, made):
    """The parameters of `operation` on the key `made`, as a user would pass them."""
    key = made["key"]
    by_operation = {
        "CreateAlias": {"AliasName": "alias/walk-" + uuid.uuid4().hex[:12], "TargetKeyId": key},
        "DeleteAlias": {"AliasName": made["alias"]},
        "UpdateAlias": {"AliasName": made["moved"], "TargetKeyId": key},
        "Encrypt": {"KeyId": key, "Plaintext": b"p"},
        "Decrypt": {"CiphertextBlob": made.get("blob")},
        "ReEncrypt": {"CiphertextBlob": made.get("blob"), "DestinationKeyId": STATE_WALK["other"]},
        "GenerateDataKey": {"KeyId": key, "KeySpec": "AES_256"},
        "GenerateDataKeyWithoutPlaintext": {"KeyId": key, "KeySpec": "AES_256"},
        "GenerateDataKeyPair": {"KeyId": key, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateDataKeyPairWithoutPlaintext": {"KeyId": key, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateMac": {"KeyId": key, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"},
        "VerifyMac": {"KeyId": key, "Message": b"m", "MacAlgorithm": "HMAC_SHA_256", "Mac": made.get("mac")},
        "Sign": {"KeyId": key, "Message": b"m", "SigningAlgorithm": "RSASSA_PSS_SHA_256"},
        "Verify": {"KeyId": key, "Message": b"m", "SigningAlgorithm": "RSASSA_PSS_SHA_256",
                   "Signature": made.get("signature")},
        "GetKeyPolicy": {"KeyId": key, "PolicyName": "default"},
        "PutKeyPolicy": {"KeyId": key, "PolicyName": "default", "Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % STATE_WALK["account"]},
                "Action": "kms:*", "Resource": "*"}]})},
        "ScheduleKeyDeletion": {"KeyId": key, "PendingWindowInDays": 7},
        "TagResource": {"KeyId": key, "Tags": [{"TagKey": "walk", "TagValue": "yes"}]},
        "UntagResource": {"KeyId": key, "TagKeys": ["walk"]},
        "UpdateKeyDescription": {"KeyId": key, "Description": "walked"},
        "CreateGrant": {"KeyId": key, "GranteePrincipal": STATE_WALK["grantee"], "Operations": ["DescribeKey"]},
        "RetireGrant": {"KeyId": key, "GrantId": made["grant"]},
        "RevokeGrant": {"KeyId": key, "GrantId": made["grant"]},
        "DeriveSharedSecret": {"KeyId": key, "KeyAgreementAlgorithm": "ECDH", "PublicKey": made.get("peer")},
        "GetParametersForImport": {"KeyId": key, "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                                   "WrappingKeySpec": "RSA_2048"},
        "ImportKeyMaterial": dict(made.get("import") or {}, KeyId=key),
        "ReplicateKey": {"KeyId": key, "ReplicaRegion": STATE_WALK["third_region"]},
        "UpdatePrimaryRegion": {"KeyId": key, "PrimaryRegion": STATE_WALK["replica_region"]},
    }
    # Every other operation of the table takes the key alone.
    return by_operation.get(operation, {"KeyId": key})


def states():
    table = json.loads(aws_scenario.setting("STATE_TABLE"))
    report.fact("rows", len(table))
    other = new_key("the walk's other key")
    account = key_arn_parts(other["Arn"])["account"]
    STATE_WALK.update(other=other["KeyId"], account=account, grantee="arn:aws:iam::%s:user/walker" % account)
    regions = [r for r in ("eu-west-1", "ap-southeast-2", "us-west-2") if r != REGION]
    STATE_WALK.update(replica_region=regions[0], third_region=regions[1])

    for row in table:
        operation, kind, cells = row["operation"], row["key"], row["cells"]

        @report.section("%s in each key state, as AWS's key-state table says" % operation)
        def _():
            for state, answer in cells.items():
                if answer == "N/A":
                    continue
                params = state_call(operation, key_in(kind, state))
                name = "%s on a %s %s key: %s" % (operation, state, kind, answer)
                if answer == "Ok":
                    k(operation, **params)
                    check(name, True)
                else:
                    refused(name, operation, answer, **params)


if __name__ == "__main__":
    aws_scenario.main(report, {
        "lifecycle": lifecycle,
        "resources": resources,
        "crypto": crypto,
        "sign": sign,
        "agreement": agreement,
        "p521": p521,
        "mac": mac,
        "rotation": rotation,
        "multiregion": multiregion,
        "policies": policies,
        "grants": grants,
        "signatures": signatures,
        "cloudtrail": cloudtrail,
        "states": states,
    })
