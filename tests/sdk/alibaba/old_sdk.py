"""Alibaba Cloud's old Python SDK for KMS (aliyun-python-sdk-kms on aliyun-python-sdk-core) against kmsim.

    python old_sdk.py lifecycle|crypto|resources|secrets|signatures

Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET.
This SDK signs every call with v1 HMAC-SHA1 and returns the raw JSON body, so these checks read Alibaba's
PascalCase fields as the server wrote them. A user points it at another endpoint per request:

    client = AcsClient(ak, secret, 'cn-hangzhou')
    req = EncryptRequest(); req.set_endpoint('127.0.0.1:PORT'); req.set_protocol_type('http')
    req.set_KeyId(...); body = json.loads(client.do_action_with_exception(req))

EncryptionContext is the JSON string the user writes (here `json.dumps`, with its spaces).
"""

import base64
import contextlib
import importlib
import json
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.utils import parameter_helper
from aliyunsdkcore.vendored import requests as vendored_requests

import independent
import scenario
from scenario import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ENDPOINT

ALIBABA_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
STALE_CODES = ("InvalidTimeStamp.Expired", "IllegalTimestamp", "RequestTimeTooSkewed")

tap = scenario.Wiretap()
tap.install(vendored_requests.Session)


def describe_error(error):
    """What the SDK raised, as a user's `except` sees it."""
    if isinstance(error, ServerException):
        return {
            "type": "ServerException",
            "code": error.get_error_code(),
            "status": error.get_http_status(),
            "request_id": error.get_request_id(),
            "message": (error.get_error_msg() or "")[:400],
        }
    if isinstance(error, ClientException):
        return {"type": "ClientException", "code": error.get_error_code(), "status": None, "request_id": None,
                "message": (error.get_error_msg() or "")[:400]}
    return {"type": type(error).__name__, "code": None, "status": None, "request_id": None, "message": str(error)[:400]}


def request_id_of(body):
    return body.get("RequestId")


report = scenario.Report(
    "aliyun-python-sdk-kms 2.16.5 on aliyun-python-sdk-core 2.16.1, signed v1 HMAC-SHA1",
    sys.argv[1] if len(sys.argv) > 1 else "",
    tap,
    describe_error,
    request_id_of,
)
call, check, equal = report.call, report.check, report.equal

client = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "cn-hangzhou")


def make(action, **params):
    """`<Action>Request()` pointed at kmsim, with each parameter set through its own `set_<Name>`."""
    module = importlib.import_module("aliyunsdkkms.request.v20160120.%sRequest" % action)
    request = getattr(module, action + "Request")()
    request.set_endpoint(ENDPOINT)
    request.set_protocol_type("http")
    for name, value in params.items():
        getattr(request, "set_" + name)(value)
    return request


def do(action, on=None, access_key_id=None, **params):
    """One call; the parsed JSON body."""
    request = make(action, **params)
    return call(action, lambda: json.loads((on or client).do_action_with_exception(request)), access_key_id)


def refused(check_name, action, code, status, on=None, access_key_id=None, **params):
    request = make(action, **params)
    return report.refused(check_name, action, lambda: (on or client).do_action_with_exception(request), code, status,
                          access_key_id)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def context_json(context):
    return json.dumps(context)  # with spaces after ':' and ',' as json.dumps writes it


def needs(state, *names):
    missing = [n for n in names if n not in state]
    if missing:
        raise scenario.CheckFailed("needs what an earlier section made", {"missing": missing})


def create_key(description, **params):
    body = do("CreateKey", Description=description, **params)
    check("CreateKey answers KeyMetadata.KeyId", bool(body.get("KeyMetadata", {}).get("KeyId")), body=body)
    return body["KeyMetadata"]


def describe_key(key_id):
    return do("DescribeKey", KeyId=key_id)["KeyMetadata"]


# ---------------------------------------------------------------------------


def lifecycle():
    state = {}

    @report.section("CreateKey answers KeyMetadata, and DescribeKey shows the same")
    def _():
        meta = create_key("lifecycle", KeySpec="Aliyun_AES_256", KeyUsage="ENCRYPT/DECRYPT")
        state["key"] = meta["KeyId"]
        equal("KeyMetadata.KeyState is Enabled", meta.get("KeyState"), "Enabled")
        equal("KeyMetadata.KeySpec and KeyUsage are the ones asked for", (meta.get("KeySpec"), meta.get("KeyUsage")),
              ("Aliyun_AES_256", "ENCRYPT/DECRYPT"))
        check("KeyMetadata.CreationDate is in Alibaba's format", bool(ALIBABA_DATE.match(meta.get("CreationDate", ""))),
              key_metadata=meta)
        described = describe_key(meta["KeyId"])
        for field in ("KeyId", "Arn", "KeyState", "KeySpec", "KeyUsage", "Description", "CreationDate", "Origin"):
            equal("DescribeKey shows the same KeyMetadata." + field, described.get(field), meta.get(field))

    @report.section("a disabled key refuses Encrypt with Rejected.Disabled and HTTP 409; EnableKey restores it")
    def _():
        needs(state, "key")
        key = state["key"]
        blob = do("Encrypt", KeyId=key, Plaintext=b64(b"old sdk"))["CiphertextBlob"]
        do("DisableKey", KeyId=key)
        equal("DescribeKey shows KeyState Disabled", describe_key(key).get("KeyState"), "Disabled")
        refused("Encrypt under a disabled key raises ServerException Rejected.Disabled with status 409", "Encrypt",
                "Rejected.Disabled", 409, KeyId=key, Plaintext=b64(b"old sdk"))
        do("EnableKey", KeyId=key)
        equal("after EnableKey, Decrypt opens the old ciphertext", do("Decrypt", CiphertextBlob=blob).get("Plaintext"),
              b64(b"old sdk"))

    @report.section("ScheduleKeyDeletion makes the key PendingDeletion until CancelKeyDeletion")
    def _():
        needs(state, "key")
        key = state["key"]
        do("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
        meta = describe_key(key)
        equal("DescribeKey shows KeyState PendingDeletion", meta.get("KeyState"), "PendingDeletion")
        check("KeyMetadata.DeleteDate is in Alibaba's format", bool(ALIBABA_DATE.match(meta.get("DeleteDate", ""))),
              key_metadata=meta)
        refused("Encrypt under a key pending deletion raises Rejected.PendingDeletion with status 409", "Encrypt",
                "Rejected.PendingDeletion", 409, KeyId=key, Plaintext=b64(b"x"))
        do("CancelKeyDeletion", KeyId=key)
        equal("after CancelKeyDeletion the key is Enabled", describe_key(key).get("KeyState"), "Enabled")

    @report.section("UpdateKeyDescription changes what DescribeKey shows")
    def _():
        needs(state, "key")
        do("UpdateKeyDescription", KeyId=state["key"], Description="described by the old SDK")
        equal("DescribeKey shows the new Description", describe_key(state["key"]).get("Description"),
              "described by the old SDK")

    @report.section("ListKeys pages with PageNumber, PageSize, TotalCount and Keys.Key[]")
    def _():
        needs(state, "key")
        made = {state["key"]} | {create_key("page %d" % i)["KeyId"] for i in range(2)}
        seen = []
        for page, expected in [(1, 2), (2, 1)]:
            body = do("ListKeys", PageNumber=page, PageSize=2)
            equal("page %d: TotalCount, PageNumber and PageSize" % page,
                  (body.get("TotalCount"), body.get("PageNumber"), body.get("PageSize")), (3, page, 2))
            keys = body.get("Keys", {}).get("Key", [])
            equal("page %d holds Keys.Key[] of %d" % (page, expected), len(keys), expected)
            seen += [k.get("KeyId") for k in keys]
        equal("the pages hold each key once", sorted(seen), sorted(made))

    @report.section("an unknown key is refused with Forbidden.KeyNotFound and HTTP 404")
    def _():
        refused("DescribeKey of an unknown KeyId raises Forbidden.KeyNotFound with status 404", "DescribeKey",
                "Forbidden.KeyNotFound", 404, KeyId=str(uuid.uuid4()))


# ---------------------------------------------------------------------------

MESSAGE = b"the message the old SDK has signed"


def crypto():
    state = {}
    plaintext = b"old sdk plaintext"
    context = {"app": "billing", "tenant": "42"}

    @report.section("Encrypt and Decrypt round-trip with EncryptionContext given as a JSON string with spaces")
    def _():
        key = create_key("crypto")["KeyId"]
        state["key"] = key
        body = do("Encrypt", KeyId=key, Plaintext=b64(plaintext), EncryptionContext=context_json(context))
        equal("Encrypt answers the KeyId", body.get("KeyId"), key)
        # The same context in another key order and spacing is the same context.
        reordered = '{"tenant":"42","app":"billing"}'
        opened = do("Decrypt", CiphertextBlob=body["CiphertextBlob"], EncryptionContext=reordered)
        equal("Decrypt under the same context, written differently, gives back the plaintext", opened.get("Plaintext"),
              b64(plaintext))
        equal("Decrypt names the key and its version", (opened.get("KeyId"), opened.get("KeyVersionId")),
              (key, body.get("KeyVersionId")))
        state["blob"] = body["CiphertextBlob"]

    @report.section("ReEncrypt moves a ciphertext to another key")
    def _():
        needs(state, "key", "blob")
        other = create_key("crypto, destination")["KeyId"]
        body = do("ReEncrypt", CiphertextBlob=state["blob"], DestinationKeyId=other,
                  SourceEncryptionContext=context_json(context))
        equal("ReEncrypt names the destination key", body.get("KeyId"), other)
        equal("the new ciphertext opens with no context", do("Decrypt", CiphertextBlob=body["CiphertextBlob"])
              .get("Plaintext"), b64(plaintext))

    @report.section("GenerateDataKey, GenerateDataKeyWithoutPlaintext and ExportDataKey")
    def _():
        needs(state, "key")
        made = do("GenerateDataKey", KeyId=state["key"], NumberOfBytes=32, EncryptionContext=context_json(context))
        equal("GenerateDataKey gives 32 bytes", len(base64.b64decode(made.get("Plaintext", ""))), 32)
        equal("Decrypt opens its CiphertextBlob to the same data key",
              do("Decrypt", CiphertextBlob=made["CiphertextBlob"], EncryptionContext=context_json(context))
              .get("Plaintext"), made["Plaintext"])
        bare = do("GenerateDataKeyWithoutPlaintext", KeyId=state["key"], KeySpec="AES_128")
        check("GenerateDataKeyWithoutPlaintext answers no Plaintext", "Plaintext" not in bare, body=bare)
        equal("and its CiphertextBlob opens to 16 bytes",
              len(base64.b64decode(do("Decrypt", CiphertextBlob=bare["CiphertextBlob"]).get("Plaintext", ""))), 16)
        pair = independent.WrappingKeyPair()
        exported = do("ExportDataKey", CiphertextBlob=made["CiphertextBlob"], EncryptionContext=context_json(context),
                      PublicKeyBlob=pair.public_der_b64, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                      WrappingKeySpec="RSA_2048")
        equal("the private key made here opens ExportedDataKey to the data key",
              b64(pair.unwrap(exported["ExportedDataKey"])), made["Plaintext"])

    for spec, algorithm in [("RSA_2048", "RSA_PSS_SHA_256"), ("EC_P256", "ECDSA_SHA_256")]:

        @report.section("AsymmetricSign with %s signs so that cryptography verifies it" % algorithm)
        def _(spec=spec, algorithm=algorithm):
            key = create_key("signer", KeySpec=spec, KeyUsage="SIGN/VERIFY")["KeyId"]
            public = do("GetPublicKey", KeyId=key)
            digest = independent.sha256_digest(MESSAGE)
            signed = do("AsymmetricSign", KeyId=key, KeyVersionId=public["KeyVersionId"], Algorithm=algorithm,
                        Digest=digest)
            check("cryptography verifies the signature with GetPublicKey's PublicKey",
                  independent.verifies(public["PublicKey"], algorithm, MESSAGE, signed.get("Value", "")),
                  value=signed.get("Value"))
            verified = do("AsymmetricVerify", KeyId=key, KeyVersionId=public["KeyVersionId"], Algorithm=algorithm,
                          Digest=digest, Value=signed["Value"])
            check("AsymmetricVerify answers Value true, a JSON boolean", verified.get("Value") is True, body=verified)

    @report.section("AsymmetricDecrypt opens what cryptography encrypted with RSAES_OAEP_SHA_256")
    def _():
        key = create_key("decrypter", KeySpec="RSA_2048", KeyUsage="ENCRYPT/DECRYPT")["KeyId"]
        public = do("GetPublicKey", KeyId=key)
        sealed = independent.oaep_encrypt(public["PublicKey"], plaintext)
        opened = do("AsymmetricDecrypt", KeyId=key, KeyVersionId=public["KeyVersionId"], Algorithm="RSAES_OAEP_SHA_256",
                    CiphertextBlob=sealed)
        equal("AsymmetricDecrypt gives back the plaintext", opened.get("Plaintext"), b64(plaintext))
        again = do("AsymmetricEncrypt", KeyId=key, KeyVersionId=public["KeyVersionId"], Algorithm="RSAES_OAEP_SHA_256",
                   Plaintext=b64(plaintext))
        equal("AsymmetricEncrypt's ciphertext opens with AsymmetricDecrypt",
              do("AsymmetricDecrypt", KeyId=key, KeyVersionId=public["KeyVersionId"], Algorithm="RSAES_OAEP_SHA_256",
                 CiphertextBlob=again["CiphertextBlob"]).get("Plaintext"), b64(plaintext))

    @report.section("GetRandomPassword answers a password of the asked length")
    def _():
        password = do("GetRandomPassword", PasswordLength="20", ExcludeCharacters="xyz").get("RandomPassword", "")
        check("the password is 20 characters without x, y or z", len(password) == 20 and not set(password) & set("xyz"),
              length=len(password))


# ---------------------------------------------------------------------------


def resources():
    state = {}

    @report.section("aliases: CreateAlias, alias/<name> as KeyId, ListAliasesByKeyId, UpdateAlias, DeleteAlias")
    def _():
        key = create_key("aliased")["KeyId"]
        other = create_key("aliased, other")["KeyId"]
        state["key"] = key
        do("CreateAlias", AliasName="alias/old-sdk", KeyId=key)
        equal("Encrypt with alias/old-sdk uses the key", do("Encrypt", KeyId="alias/old-sdk", Plaintext=b64(b"x"))
              .get("KeyId"), key)
        body = do("ListAliasesByKeyId", KeyId=key)
        aliases = body.get("Aliases", {}).get("Alias", [])
        equal("ListAliasesByKeyId lists it in Aliases.Alias[]", [a.get("AliasName") for a in aliases], ["alias/old-sdk"])
        body = do("ListAliases", PageNumber=1, PageSize=10)
        equal("ListAliases: TotalCount is 1", body.get("TotalCount"), 1)
        do("UpdateAlias", AliasName="alias/old-sdk", KeyId=other)
        equal("after UpdateAlias the alias names the other key", describe_key("alias/old-sdk").get("KeyId"), other)
        do("DeleteAlias", AliasName="alias/old-sdk")
        refused("a deleted alias raises Forbidden.AliasNotFound with status 404", "DescribeKey",
                "Forbidden.AliasNotFound", 404, KeyId="alias/old-sdk")

    @report.section("tags: TagResource, ListResourceTags, UntagResource")
    def _():
        needs(state, "key")
        key = state["key"]
        do("TagResource", KeyId=key, Tags='[{"TagKey":"team","TagValue":"payments"},{"TagKey":"env","TagValue":"test"}]')
        tags = do("ListResourceTags", KeyId=key).get("Tags", {}).get("Tag", [])
        equal("ListResourceTags shows Tags.Tag[] with both", sorted((t.get("TagKey"), t.get("TagValue")) for t in tags),
              [("env", "test"), ("team", "payments")])
        do("UntagResource", KeyId=key, TagKeys='["env"]')
        tags = do("ListResourceTags", KeyId=key).get("Tags", {}).get("Tag", [])
        equal("UntagResource removed one", [t.get("TagKey") for t in tags], ["team"])

    @report.section("versions: CreateKeyVersion, ListKeyVersions, DescribeKeyVersion")
    def _():
        needs(state, "key")
        key = state["key"]
        made = do("CreateKeyVersion", KeyId=key).get("KeyVersion", {})
        check("CreateKeyVersion answers KeyVersion.KeyVersionId", bool(made.get("KeyVersionId")), body=made)
        body = do("ListKeyVersions", KeyId=key, PageNumber=1, PageSize=10)
        versions = body.get("KeyVersions", {}).get("KeyVersion", [])
        equal("ListKeyVersions: TotalCount is 2", body.get("TotalCount"), 2)
        check("KeyVersions.KeyVersion[] holds the new version", made.get("KeyVersionId") in
              [v.get("KeyVersionId") for v in versions], versions=versions)
        described = do("DescribeKeyVersion", KeyId=key, KeyVersionId=made["KeyVersionId"]).get("KeyVersion", {})
        equal("DescribeKeyVersion describes it", described, made)


# ---------------------------------------------------------------------------


def secrets():
    state = {}
    name = "old-sdk/password"

    @report.section("CreateSecret (SecretData in the query, as this SDK sends it) and GetSecretValue")
    def _():
        key = create_key("secrets")["KeyId"]
        made = do("CreateSecret", SecretName=name, SecretData="first value", VersionId="v1", EncryptionKeyId=key)
        equal("CreateSecret answers SecretName and VersionId", (made.get("SecretName"), made.get("VersionId")),
              (name, "v1"))
        value = do("GetSecretValue", SecretName=name)
        equal("GetSecretValue gives SecretData and VersionId", (value.get("SecretData"), value.get("VersionId")),
              ("first value", "v1"))
        equal("VersionStages.VersionStage[] is [ACSCurrent]", value.get("VersionStages", {}).get("VersionStage"),
              ["ACSCurrent"])
        state["made"] = True

    @report.section("PutSecretValue, UpdateSecretVersionStage, ListSecretVersionIds, DescribeSecret, ListSecrets")
    def _():
        needs(state, "made")
        do("PutSecretValue", SecretName=name, VersionId="v2", SecretData="second value")
        equal("the new version is ACSCurrent", do("GetSecretValue", SecretName=name).get("SecretData"), "second value")
        body = do("ListSecretVersionIds", SecretName=name)
        listed = body.get("VersionIds", {}).get("VersionId", [])
        equal("ListSecretVersionIds lists both with their stages",
              sorted((v.get("VersionId"), v.get("VersionStages", {}).get("VersionStage")) for v in listed),
              [("v1", ["ACSPrevious"]), ("v2", ["ACSCurrent"])])
        do("UpdateSecretVersionStage", SecretName=name, VersionStage="ACSCurrent", RemoveFromVersion="v2",
           MoveToVersion="v1")
        equal("UpdateSecretVersionStage moved ACSCurrent back", do("GetSecretValue", SecretName=name).get("SecretData"),
              "first value")
        described = do("DescribeSecret", SecretName=name)
        equal("DescribeSecret names the secret", described.get("SecretName"), name)
        body = do("ListSecrets", PageNumber=1, PageSize=10)
        equal("ListSecrets lists it in SecretList.Secret[] with TotalCount 1",
              (body.get("TotalCount"), [s.get("SecretName") for s in body.get("SecretList", {}).get("Secret", [])]),
              (1, [name]))

    @report.section("DeleteSecret and RestoreSecret")
    def _():
        needs(state, "made")
        deleted = do("DeleteSecret", SecretName=name, RecoveryWindowInDays="7")
        check("DeleteSecret answers PlannedDeleteTime in Alibaba's format",
              bool(ALIBABA_DATE.match(deleted.get("PlannedDeleteTime", ""))), body=deleted)
        refused("GetSecretValue in the recovery window raises Rejected.ResourceInDeleteWindow with status 409",
                "GetSecretValue", "Rejected.ResourceInDeleteWindow", 409, SecretName=name)
        do("RestoreSecret", SecretName=name)
        equal("after RestoreSecret the value is back", do("GetSecretValue", SecretName=name).get("SecretData"),
              "first value")


# ---------------------------------------------------------------------------


@contextlib.contextmanager
def patched(name, replacement):
    """Replaces aliyunsdkcore's own parameter_helper.<name> (Timestamp, SignatureNonce)."""
    original = getattr(parameter_helper, name)
    setattr(parameter_helper, name, replacement)
    try:
        yield
    finally:
        setattr(parameter_helper, name, original)


def signatures():
    @report.section("calls signed with the right secret are answered")
    def _():
        key = create_key("signed")["KeyId"]
        equal("the SDK signed v1 HMAC-SHA1", tap.exchanges[-1]["signature"], "v1 HMAC-SHA1")
        context = context_json({"note": "a b~*'()!/+é", "n": "1"})
        blob = do("Encrypt", KeyId=key, Plaintext=b64(b"signed"), EncryptionContext=context)["CiphertextBlob"]
        equal("Decrypt opens it", do("Decrypt", CiphertextBlob=blob, EncryptionContext=context).get("Plaintext"),
              b64(b"signed"))

    @report.section("a wrong secret: the server says SignatureDoesNotMatch, which this SDK raises as InvalidAccessKeySecret")
    def _():
        forged = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET + "x", "cn-hangzhou")
        # aliyunsdkcore rewrites a 400 SignatureDoesNotMatch to InvalidAccessKeySecret when the message quotes
        # the string it signed (client.py _get_server_exception): so the server quoted the right one.
        refused("the SDK raises InvalidAccessKeySecret with status 400", "ListKeys", "InvalidAccessKeySecret", 400,
                on=forged)
        equal("the server's own code was SignatureDoesNotMatch", tap.exchanges[-1]["code"], "SignatureDoesNotMatch")

    @report.section("an unknown AccessKeyId is refused with InvalidAccessKeyId.NotFound and HTTP 404")
    def _():
        stranger = "LTAIkmsimStranger" + uuid.uuid4().hex[:8]
        refused("an unknown AccessKeyId raises InvalidAccessKeyId.NotFound with status 404", "ListKeys",
                "InvalidAccessKeyId.NotFound", 404, on=AcsClient(stranger, "whatever", "cn-hangzhou"),
                access_key_id=stranger)

    @report.section("a Timestamp 20 minutes old is refused with HTTP 400")
    def _():
        stale = (datetime.now(timezone.utc) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with patched("get_iso_8061_date", lambda: stale):
            error = refused("a Timestamp 20 minutes old is refused with status 400", "ListKeys", STALE_CODES, 400)
        report.fact("stale timestamp code", error.get("code"))

    @report.section("a replayed SignatureNonce is refused with SignatureNonceUsed and HTTP 400")
    def _():
        nonce = uuid.uuid4().hex
        with patched("get_uuid", lambda: nonce):
            check("the first call with the nonce is answered", bool(do("ListKeys").get("RequestId")))
            refused("the second call with the same nonce raises SignatureNonceUsed with status 400", "ListKeys",
                    "SignatureNonceUsed", 400)


if __name__ == "__main__":
    scenario.main(report, {
        "lifecycle": lifecycle,
        "crypto": crypto,
        "resources": resources,
        "secrets": secrets,
        "signatures": signatures,
    })
