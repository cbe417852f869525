"""Alibaba Cloud's current Python SDK for KMS (alibabacloud-kms20160120) against kmsim, used as a user would.

    python new_sdk.py lifecycle|crypto|resources|secrets|instances|access|signatures

Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET, and
KMSIM_SIGNATURE_ALGORITHM: empty for the SDK's default (ACS3-HMAC-SHA256), `v2` (v1 HMAC-SHA1 with Action in
the query) or `ACS3-HMAC-SM3`. The client is made the one way a user points this SDK at another endpoint:

    Client(Config(endpoint='127.0.0.1:PORT', protocol='http', access_key_id=..., access_key_secret=...))

Each section below is one statement about kmsim, each check one fact it rests on; scenario.py reports them.
"""

import base64
import contextlib
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone

import requests
from alibabacloud_kms20160120 import models as kms
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils

import independent
import scenario
from scenario import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ENDPOINT

ALGORITHM = scenario.setting("SIGNATURE_ALGORITHM")
SIGNED_WITH = {"": "ACS3-HMAC-SHA256", "v2": "v1 HMAC-SHA1", "ACS3-HMAC-SM3": "ACS3-HMAC-SM3"}[ALGORITHM]

# Alibaba's date format (KeyMetadata.CreationDate, CreateTime, PlannedDeleteTime, ...): UTC, to the second.
ALIBABA_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# What Alibaba's gateway answers for a request signed outside its 15-minute window.
STALE_CODES = ("InvalidTimeStamp.Expired", "IllegalTimestamp", "RequestTimeTooSkewed")

tap = scenario.Wiretap()
tap.install(requests.Session)


def describe_error(error):
    """What the SDK raised, as a user's `except` sees it: code, HTTP status, request id, and the error body."""
    return {
        "type": type(error).__name__,
        "code": getattr(error, "code", None),
        "status": getattr(error, "status_code", None),
        "request_id": getattr(error, "request_id", None),
        "message": str(getattr(error, "message", None) or error)[:400],
        "data": getattr(error, "data", None),
    }


def request_id_of(response):
    return response.body.request_id


report = scenario.Report(
    "alibabacloud-kms20160120 3.3.1, signed " + SIGNED_WITH,
    sys.argv[1] if len(sys.argv) > 1 else "",
    tap,
    describe_error,
    request_id_of,
)
call, check, equal, refused = report.call, report.check, report.equal, report.refused


def new_client(access_key_id=ACCESS_KEY_ID, secret=ACCESS_KEY_SECRET):
    # KMSIM_PROTOCOL=https with KMSIM_CA=<a PEM file> points the SDK at a TLS server, as docs/alibaba.md says.
    config = Config(access_key_id=access_key_id, access_key_secret=secret, endpoint=ENDPOINT,
                    protocol=scenario.setting("PROTOCOL", "http"), ca=scenario.setting("CA") or None)
    if ALGORITHM:
        config.signature_algorithm = ALGORITHM
    return Client(config)


client = new_client()


def b64(data):
    return base64.b64encode(data).decode("ascii")


def needs(state, *names):
    missing = [n for n in names if n not in state]
    if missing:
        raise scenario.CheckFailed("needs what an earlier section made", {"missing": missing})


# -- small wrappers: one SDK call each, as a user writes it --


def create_key(description, **fields):
    request = kms.CreateKeyRequest(description=description, **fields)
    return call("CreateKey", lambda: client.create_key(request)).body.key_metadata


def describe_key(key_id):
    return call("DescribeKey", lambda: client.describe_key(kms.DescribeKeyRequest(key_id=key_id))).body.key_metadata


def encrypt(key_id, plaintext, context=None):
    request = kms.EncryptRequest(key_id=key_id, plaintext=b64(plaintext), encryption_context=context)
    return call("Encrypt", lambda: client.encrypt(request)).body


def decrypt(blob, context=None):
    request = kms.DecryptRequest(ciphertext_blob=blob, encryption_context=context)
    return call("Decrypt", lambda: client.decrypt(request)).body


def get_public_key(key_id):
    return call("GetPublicKey", lambda: client.get_public_key(kms.GetPublicKeyRequest(key_id=key_id))).body


def get_secret_value(name, **fields):
    request = kms.GetSecretValueRequest(secret_name=name, **fields)
    return call("GetSecretValue", lambda: client.get_secret_value(request)).body


KEY_METADATA_FIELDS = {
    "Arn": "arn",
    "KeyId": "key_id",
    "KeyState": "key_state",
    "KeySpec": "key_spec",
    "KeyUsage": "key_usage",
    "Description": "description",
    "CreationDate": "creation_date",
    "Origin": "origin",
    "ProtectionLevel": "protection_level",
    "PrimaryKeyVersion": "primary_key_version",
}


# ---------------------------------------------------------------------------
# lifecycle: a key's states and the errors each state gives
# ---------------------------------------------------------------------------


def lifecycle():
    state = {}
    plaintext = b"lifecycle plaintext"

    @report.section("CreateKey answers the new key's KeyMetadata, and DescribeKey shows the same")
    def _():
        meta = create_key("lifecycle", key_spec="Aliyun_AES_256", key_usage="ENCRYPT/DECRYPT")
        check("CreateKey answers KeyMetadata.KeyId", bool(meta and meta.key_id), key_metadata=meta and meta.to_map())
        state["key"] = meta.key_id
        equal("KeyMetadata.KeyState is Enabled", meta.key_state, "Enabled")
        equal("KeyMetadata.KeySpec is the one asked for", meta.key_spec, "Aliyun_AES_256")
        equal("KeyMetadata.KeyUsage is the one asked for", meta.key_usage, "ENCRYPT/DECRYPT")
        equal("KeyMetadata.Description is the one given", meta.description, "lifecycle")
        equal("KeyMetadata.Origin is Aliyun_KMS", meta.origin, "Aliyun_KMS")
        equal("KeyMetadata.ProtectionLevel is SOFTWARE", meta.protection_level, "SOFTWARE")
        check(
            "KeyMetadata.Arn is acs:kms:<region>:<account>:key/<KeyId>",
            bool(meta.arn) and meta.arn.startswith("acs:kms:") and meta.arn.endswith(":key/" + meta.key_id),
            arn=meta.arn,
        )
        check("KeyMetadata.CreationDate is in Alibaba's format", bool(ALIBABA_DATE.match(meta.creation_date or "")),
              creation_date=meta.creation_date)
        check("KeyMetadata.PrimaryKeyVersion is set", bool(meta.primary_key_version), key_metadata=meta.to_map())
        described = describe_key(meta.key_id)
        for wire, attribute in KEY_METADATA_FIELDS.items():
            equal("DescribeKey shows the same KeyMetadata." + wire, getattr(described, attribute), getattr(meta, attribute))

    @report.section("a disabled key refuses Encrypt and Decrypt with Rejected.Disabled and HTTP 409")
    def _():
        needs(state, "key")
        key = state["key"]
        state["blob"] = encrypt(key, plaintext).ciphertext_blob
        call("DisableKey", lambda: client.disable_key(kms.DisableKeyRequest(key_id=key)))
        equal("DescribeKey shows KeyState Disabled", describe_key(key).key_state, "Disabled")
        error = refused("Encrypt under a disabled key raises Rejected.Disabled with status 409", "Encrypt",
                        lambda: client.encrypt(kms.EncryptRequest(key_id=key, plaintext=b64(plaintext))),
                        "Rejected.Disabled", 409)
        body = error.get("data") or {}
        check("the error body has RequestId, HostId, Code, Message and Recommend",
              {"RequestId", "HostId", "Code", "Message", "Recommend"} <= set(body), body=body)
        equal("the error body's RequestId is the one the SDK raised", body.get("RequestId"), error.get("request_id"))
        refused("Decrypt under a disabled key raises Rejected.Disabled with status 409", "Decrypt",
                lambda: client.decrypt(kms.DecryptRequest(ciphertext_blob=state["blob"])), "Rejected.Disabled", 409)

    @report.section("EnableKey makes the key usable again")
    def _():
        needs(state, "key", "blob")
        key = state["key"]
        call("EnableKey", lambda: client.enable_key(kms.EnableKeyRequest(key_id=key)))
        equal("DescribeKey shows KeyState Enabled", describe_key(key).key_state, "Enabled")
        equal("Decrypt opens what was encrypted before the key was disabled", decrypt(state["blob"]).plaintext,
              b64(plaintext))

    @report.section("ScheduleKeyDeletion makes the key PendingDeletion, refused with 409, until CancelKeyDeletion")
    def _():
        needs(state, "key")
        key = state["key"]
        request = kms.ScheduleKeyDeletionRequest(key_id=key, pending_window_in_days=7)
        call("ScheduleKeyDeletion", lambda: client.schedule_key_deletion(request))
        meta = describe_key(key)
        equal("DescribeKey shows KeyState PendingDeletion", meta.key_state, "PendingDeletion")
        check("KeyMetadata.DeleteDate is set, in Alibaba's format", bool(ALIBABA_DATE.match(meta.delete_date or "")),
              delete_date=meta.delete_date)
        refused("Encrypt under a key pending deletion raises Rejected.PendingDeletion with status 409", "Encrypt",
                lambda: client.encrypt(kms.EncryptRequest(key_id=key, plaintext=b64(plaintext))),
                "Rejected.PendingDeletion", 409)
        call("CancelKeyDeletion", lambda: client.cancel_key_deletion(kms.CancelKeyDeletionRequest(key_id=key)))
        meta = describe_key(key)
        equal("after CancelKeyDeletion the key is Enabled", meta.key_state, "Enabled")
        check("after CancelKeyDeletion KeyMetadata.DeleteDate is empty", not meta.delete_date, delete_date=meta.delete_date)
        equal("the key encrypts again", encrypt(key, plaintext).key_id, key)

    @report.section("UpdateKeyDescription changes what DescribeKey shows")
    def _():
        needs(state, "key")
        key = state["key"]
        request = kms.UpdateKeyDescriptionRequest(key_id=key, description="lifecycle, described again")
        call("UpdateKeyDescription", lambda: client.update_key_description(request))
        equal("DescribeKey shows the new Description", describe_key(key).description, "lifecycle, described again")

    @report.section("ListKeys pages through every key with PageNumber, PageSize and TotalCount")
    def _():
        needs(state, "key")
        made = {state["key"]} | {create_key("page %d" % i).key_id for i in range(4)}
        seen = []
        for page in (1, 2, 3, 4):
            request = kms.ListKeysRequest(page_number=page, page_size=2)
            body = call("ListKeys", lambda: client.list_keys(request)).body
            equal("page %d: TotalCount counts all 5 keys" % page, body.total_count, 5)
            equal("page %d: PageNumber is the one asked for" % page, body.page_number, page)
            equal("page %d: PageSize is the one asked for" % page, body.page_size, 2)
            keys = body.keys.key if body.keys else []
            equal("page %d holds Keys.Key[] of %d" % (page, [2, 2, 1, 0][page - 1]), len(keys), [2, 2, 1, 0][page - 1])
            for k in keys:
                check("page %d: each Keys.Key has KeyArn ending key/<KeyId>" % page,
                      bool(k.key_arn) and k.key_arn.endswith(":key/" + (k.key_id or "?")), key=k.to_map())
            seen += [k.key_id for k in keys]
        equal("the pages hold each key once", sorted(seen), sorted(made))

    @report.section("a key that does not exist is refused with Forbidden.KeyNotFound and HTTP 404")
    def _():
        missing = str(uuid.uuid4())
        refused("DescribeKey of an unknown KeyId raises Forbidden.KeyNotFound with status 404", "DescribeKey",
                lambda: client.describe_key(kms.DescribeKeyRequest(key_id=missing)), "Forbidden.KeyNotFound", 404)


# ---------------------------------------------------------------------------
# crypto: every cryptographic operation, checked outside kmsim where it can be
# ---------------------------------------------------------------------------

MESSAGE = b"the message kmsim signs"


def crypto():
    state = {}
    secret_bytes = b"a plaintext of 32 bytes, exactly"
    context = {"app": "billing", "tenant": "42"}

    @report.section("Encrypt and Decrypt round-trip under an EncryptionContext, which Decrypt must be given again")
    def _():
        key = create_key("crypto").key_id
        state["key"] = key
        body = encrypt(key, secret_bytes, context)
        equal("Encrypt answers the KeyId", body.key_id, key)
        check("Encrypt answers a KeyVersionId", bool(body.key_version_id), body=body.to_map())
        check("CiphertextBlob is base64", bool(body.ciphertext_blob) and len(base64.b64decode(body.ciphertext_blob)) > 32,
              body=body.to_map())
        state["blob"] = body.ciphertext_blob
        opened = decrypt(body.ciphertext_blob, context)
        equal("Decrypt gives back the plaintext", opened.plaintext, b64(secret_bytes))
        equal("Decrypt names the key", opened.key_id, key)
        equal("Decrypt names the key version Encrypt used", opened.key_version_id, body.key_version_id)
        refused("Decrypt under another EncryptionContext raises InvalidParameter with status 400", "Decrypt",
                lambda: client.decrypt(kms.DecryptRequest(ciphertext_blob=body.ciphertext_blob,
                                                          encryption_context={"app": "billing", "tenant": "43"})),
                "InvalidParameter", 400)

    @report.section("ReEncrypt moves a ciphertext to another key and EncryptionContext")
    def _():
        needs(state, "key", "blob")
        other = create_key("crypto, destination").key_id
        request = kms.ReEncryptRequest(ciphertext_blob=state["blob"], destination_key_id=other,
                                       source_encryption_context=context,
                                       destination_encryption_context={"app": "archive"})
        body = call("ReEncrypt", lambda: client.re_encrypt(request)).body
        equal("ReEncrypt names the destination key", body.key_id, other)
        opened = decrypt(body.ciphertext_blob, {"app": "archive"})
        equal("the new ciphertext opens under the destination context", opened.plaintext, b64(secret_bytes))
        equal("and names the destination key", opened.key_id, other)

    @report.section("GenerateDataKey gives a data key and its ciphertext, which Decrypt opens")
    def _():
        needs(state, "key")
        request = kms.GenerateDataKeyRequest(key_id=state["key"], number_of_bytes=32, encryption_context=context)
        body = call("GenerateDataKey", lambda: client.generate_data_key(request)).body
        plain = base64.b64decode(body.plaintext or "")
        equal("NumberOfBytes 32 gives a 32-byte Plaintext", len(plain), 32)
        equal("GenerateDataKey names the key", body.key_id, state["key"])
        equal("Decrypt of CiphertextBlob gives the same data key", decrypt(body.ciphertext_blob, context).plaintext,
              body.plaintext)
        request = kms.GenerateDataKeyRequest(key_id=state["key"], key_spec="AES_128")
        body = call("GenerateDataKey", lambda: client.generate_data_key(request)).body
        equal("KeySpec AES_128 gives a 16-byte Plaintext", len(base64.b64decode(body.plaintext or "")), 16)

    @report.section("GenerateDataKeyWithoutPlaintext gives only the ciphertext, which Decrypt opens")
    def _():
        needs(state, "key")
        request = kms.GenerateDataKeyWithoutPlaintextRequest(key_id=state["key"], encryption_context=context)
        body = call("GenerateDataKeyWithoutPlaintext",
                    lambda: client.generate_data_key_without_plaintext(request)).body
        check("the answer has a CiphertextBlob and no Plaintext", bool(body.ciphertext_blob), body=body.to_map())
        opened = decrypt(body.ciphertext_blob, context)
        equal("Decrypt opens it to a 32-byte data key (the default AES_256)", len(base64.b64decode(opened.plaintext)), 32)

    @report.section("ExportDataKey and GenerateAndExportDataKey wrap the data key for a public key made here")
    def _():
        needs(state, "key")
        pair = independent.WrappingKeyPair()
        wrapping = dict(public_key_blob=pair.public_der_b64, wrapping_algorithm="RSAES_OAEP_SHA_256",
                        wrapping_key_spec="RSA_2048")
        request = kms.GenerateDataKeyRequest(key_id=state["key"], number_of_bytes=32)
        made = call("GenerateDataKey", lambda: client.generate_data_key(request)).body
        request = kms.ExportDataKeyRequest(ciphertext_blob=made.ciphertext_blob, **wrapping)
        exported = call("ExportDataKey", lambda: client.export_data_key(request)).body
        equal("the private key made here opens ExportedDataKey to the data key",
              b64(pair.unwrap(exported.exported_data_key)), made.plaintext)
        equal("ExportDataKey names the key", exported.key_id, state["key"])
        request = kms.GenerateAndExportDataKeyRequest(key_id=state["key"], number_of_bytes=32, **wrapping)
        both = call("GenerateAndExportDataKey", lambda: client.generate_and_export_data_key(request)).body
        equal("GenerateAndExportDataKey: the private key made here opens ExportedDataKey to what Decrypt gives",
              b64(pair.unwrap(both.exported_data_key)), decrypt(both.ciphertext_blob).plaintext)

    signers = [("RSA_2048", "RSA_PSS_SHA_256"), ("RSA_2048", "RSA_PKCS1_SHA_256"), ("EC_P256", "ECDSA_SHA_256")]
    for spec, algorithm in signers:

        @report.section("AsymmetricSign with %s on an %s key signs so that cryptography verifies it" % (algorithm, spec))
        def _(spec=spec, algorithm=algorithm):
            if spec not in state:
                state[spec] = create_key("signer", key_spec=spec, key_usage="SIGN/VERIFY").key_id
            key = state[spec]
            public = get_public_key(key)
            if spec == "RSA_2048":
                equal("GetPublicKey answers a 2048-bit RSA key in PEM", independent.rsa_bits(public.public_key), 2048)
            else:
                equal("GetPublicKey answers a P-256 key in PEM", independent.ec_curve(public.public_key), "secp256r1")
            check("GetPublicKey answers the KeyVersionId", bool(public.key_version_id), body=public.to_map())
            digest = independent.sha256_digest(MESSAGE)
            request = kms.AsymmetricSignRequest(key_id=key, key_version_id=public.key_version_id, algorithm=algorithm,
                                                digest=digest)
            signed = call("AsymmetricSign", lambda: client.asymmetric_sign(request)).body
            equal("AsymmetricSign names the key version", signed.key_version_id, public.key_version_id)
            check("cryptography verifies the signature with GetPublicKey's key",
                  independent.verifies(public.public_key, algorithm, MESSAGE, signed.value), value=signed.value)
            check("cryptography rejects it for another message",
                  not independent.verifies(public.public_key, algorithm, MESSAGE + b"!", signed.value))
            for label, tried, expected in [("the signed digest", digest, True),
                                           ("another digest", independent.sha256_digest(MESSAGE + b"!"), False)]:
                request = kms.AsymmetricVerifyRequest(key_id=key, key_version_id=public.key_version_id,
                                                      algorithm=algorithm, digest=tried, value=signed.value)
                verified = call("AsymmetricVerify", lambda: client.asymmetric_verify(request)).body
                equal("AsymmetricVerify says %s for %s" % (expected, label), verified.value, expected)

    @report.section("AsymmetricDecrypt opens what cryptography encrypted with RSAES_OAEP_SHA_256 under GetPublicKey's key")
    def _():
        key = create_key("decrypter", key_spec="RSA_2048", key_usage="ENCRYPT/DECRYPT").key_id
        state["rsa-encrypt"] = key
        public = get_public_key(key)
        sealed = independent.oaep_encrypt(public.public_key, secret_bytes)
        request = kms.AsymmetricDecryptRequest(key_id=key, key_version_id=public.key_version_id,
                                               algorithm="RSAES_OAEP_SHA_256", ciphertext_blob=sealed)
        opened = call("AsymmetricDecrypt", lambda: client.asymmetric_decrypt(request)).body
        equal("AsymmetricDecrypt gives back the plaintext", opened.plaintext, b64(secret_bytes))
        state["rsa-encrypt-version"] = public.key_version_id

    @report.section("AsymmetricEncrypt makes a 256-byte RSAES_OAEP_SHA_256 ciphertext that AsymmetricDecrypt opens")
    def _():
        needs(state, "rsa-encrypt", "rsa-encrypt-version")
        key, version = state["rsa-encrypt"], state["rsa-encrypt-version"]
        request = kms.AsymmetricEncryptRequest(key_id=key, key_version_id=version, algorithm="RSAES_OAEP_SHA_256",
                                               plaintext=b64(secret_bytes))
        sealed = call("AsymmetricEncrypt", lambda: client.asymmetric_encrypt(request)).body
        equal("the ciphertext is 256 bytes (one RSA-2048 block)", len(base64.b64decode(sealed.ciphertext_blob)), 256)
        request = kms.AsymmetricDecryptRequest(key_id=key, key_version_id=version, algorithm="RSAES_OAEP_SHA_256",
                                               ciphertext_blob=sealed.ciphertext_blob)
        opened = call("AsymmetricDecrypt", lambda: client.asymmetric_decrypt(request)).body
        equal("AsymmetricDecrypt gives back the plaintext", opened.plaintext, b64(secret_bytes))

    @report.section("GenerateMac with an HMAC_256 key is deterministic and VerifyMac tells a right MAC from a wrong one")
    def _():
        key = create_key("mac", key_spec="HMAC_256", key_usage="GENERATE/VERIFY_MAC").key_id
        message = b64(MESSAGE)
        request = kms.GenerateMacRequest(key_id=key, algorithm="HMAC_SHA_256", message=message)
        first = call("GenerateMac", lambda: client.generate_mac(request)).body
        second = call("GenerateMac", lambda: client.generate_mac(request)).body
        equal("the Mac is 32 bytes", len(base64.b64decode(first.mac or "")), 32)
        equal("the same message gives the same Mac", second.mac, first.mac)
        equal("GenerateMac names the key", first.key_id, key)
        equal("GenerateMac names the Algorithm", first.algorithm, "HMAC_SHA_256")
        wrong = bytearray(base64.b64decode(first.mac))
        wrong[0] ^= 1
        for label, mac, tried, expected in [("its Mac", first.mac, message, True),
                                            ("a Mac with one bit flipped", b64(bytes(wrong)), message, False),
                                            ("another message", first.mac, b64(MESSAGE + b"!"), False)]:
            request = kms.VerifyMacRequest(key_id=key, algorithm="HMAC_SHA_256", message=tried, mac=mac)
            verified = call("VerifyMac", lambda: client.verify_mac(request)).body
            equal("VerifyMac says %s for %s" % (expected, label), verified.value, expected)

    @report.section("GetRandomPassword answers a password of the asked length without the excluded characters")
    def _():
        request = kms.GetRandomPasswordRequest(password_length="24", exclude_characters="abc123")
        password = call("GetRandomPassword", lambda: client.get_random_password(request)).body.random_password or ""
        equal("the password is 24 characters", len(password), 24)
        check("it has none of the excluded characters", not set(password) & set("abc123"), password_length=len(password))
        request = kms.GetRandomPasswordRequest(password_length="32", exclude_punctuation="true")
        password = call("GetRandomPassword", lambda: client.get_random_password(request)).body.random_password or ""
        check("ExcludePunctuation gives letters and digits only", len(password) == 32 and password.isalnum(),
              password_length=len(password))

    report.fact("GenerateRandom is an action of this SDK", hasattr(Client, "generate_random"))


# ---------------------------------------------------------------------------
# resources: aliases, tags, key versions, paging
# ---------------------------------------------------------------------------


def list_aliases(page, size, key_id=None):
    if key_id is None:
        request = kms.ListAliasesRequest(page_number=page, page_size=size)
        body = call("ListAliases", lambda: client.list_aliases(request)).body
    else:
        request = kms.ListAliasesByKeyIdRequest(key_id=key_id, page_number=page, page_size=size)
        body = call("ListAliasesByKeyId", lambda: client.list_aliases_by_key_id(request)).body
    return body, (body.aliases.alias if body.aliases else [])


def resource_tags(key_id):
    body = call("ListResourceTags", lambda: client.list_resource_tags(kms.ListResourceTagsRequest(key_id=key_id))).body
    tags = body.tags.tag if body.tags else []
    return {t.tag_key: t.tag_value for t in tags}, tags


def resources():
    state = {}

    @report.section("CreateAlias names a key, and alias/<name> then works wherever a KeyId does")
    def _():
        key = create_key("aliased").key_id
        other = create_key("aliased, other").key_id
        state.update(key=key, other=other)
        call("CreateAlias", lambda: client.create_alias(kms.CreateAliasRequest(alias_name="alias/sdk-billing", key_id=key)))
        equal("Encrypt with KeyId alias/sdk-billing uses the key", encrypt("alias/sdk-billing", b"x").key_id, key)
        equal("DescribeKey of alias/sdk-billing describes the key", describe_key("alias/sdk-billing").key_id, key)

    @report.section("ListAliases and ListAliasesByKeyId page through aliases with their AliasArn")
    def _():
        needs(state, "key", "other")
        key, other = state["key"], state["other"]
        for name, target in [("alias/sdk-a1", key), ("alias/sdk-a2", key), ("alias/sdk-a3", key),
                             ("alias/sdk-other", other)]:
            call("CreateAlias", lambda: client.create_alias(kms.CreateAliasRequest(alias_name=name, key_id=target)))
        seen = {}
        for page, expected in [(1, 2), (2, 2), (3, 1)]:
            body, aliases = list_aliases(page, 2)
            equal("ListAliases page %d: TotalCount is 5" % page, body.total_count, 5)
            equal("ListAliases page %d: PageNumber and PageSize echo the request" % page,
                  (body.page_number, body.page_size), (page, 2))
            equal("ListAliases page %d holds Aliases.Alias[] of %d" % (page, expected), len(aliases), expected)
            for alias in aliases:
                check("each Aliases.Alias has an AliasArn ending :<AliasName>",
                      bool(alias.alias_arn) and alias.alias_arn.endswith(":" + (alias.alias_name or "?")),
                      alias=alias.to_map())
                seen[alias.alias_name] = alias.key_id
        equal("the pages hold every alias once, each with its KeyId", seen,
              {"alias/sdk-billing": key, "alias/sdk-a1": key, "alias/sdk-a2": key, "alias/sdk-a3": key,
               "alias/sdk-other": other})
        body, aliases = list_aliases(1, 10, key_id=key)
        equal("ListAliasesByKeyId: TotalCount is the key's 4 aliases", body.total_count, 4)
        equal("ListAliasesByKeyId lists just the key's aliases", sorted(a.alias_name for a in aliases),
              ["alias/sdk-a1", "alias/sdk-a2", "alias/sdk-a3", "alias/sdk-billing"])

    @report.section("UpdateAlias points an alias at another key")
    def _():
        needs(state, "other")
        request = kms.UpdateAliasRequest(alias_name="alias/sdk-billing", key_id=state["other"])
        call("UpdateAlias", lambda: client.update_alias(request))
        equal("Encrypt with the alias now uses the other key", encrypt("alias/sdk-billing", b"x").key_id, state["other"])

    @report.section("DeleteAlias removes an alias, which is then not found")
    def _():
        call("DeleteAlias", lambda: client.delete_alias(kms.DeleteAliasRequest(alias_name="alias/sdk-billing")))
        refused("Encrypt with a deleted alias raises Forbidden.AliasNotFound with status 404", "Encrypt",
                lambda: client.encrypt(kms.EncryptRequest(key_id="alias/sdk-billing", plaintext=b64(b"x"))),
                "Forbidden.AliasNotFound", 404)

    @report.section("TagResource, ListResourceTags and UntagResource manage a key's tags")
    def _():
        needs(state, "key")
        key = state["key"]
        tags = '[{"TagKey":"team","TagValue":"payments"},{"TagKey":"env","TagValue":"test"}]'
        call("TagResource", lambda: client.tag_resource(kms.TagResourceRequest(key_id=key, tags=tags)))
        found, listed = resource_tags(key)
        equal("ListResourceTags shows both tags in Tags.Tag[]", found, {"team": "payments", "env": "test"})
        check("each Tags.Tag names the KeyId", all(t.key_id == key for t in listed), tags=[t.to_map() for t in listed])
        call("UntagResource", lambda: client.untag_resource(kms.UntagResourceRequest(key_id=key, tag_keys='["env"]')))
        equal("after UntagResource only the other tag is left", resource_tags(key)[0], {"team": "payments"})

    @report.section("TagResources, ListTagResources and UntagResources tag several keys at once")
    def _():
        needs(state, "key", "other")
        key, other = state["key"], state["other"]
        tags = [kms.TagResourcesRequestTag(key="cost-center", value="cc-42"),
                kms.TagResourcesRequestTag(key="tier", value="gold")]
        request = kms.TagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[key, other],
                                          tag=tags)
        call("TagResources", lambda: client.tag_resources(request))
        request = kms.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[key, other])
        body = call("ListTagResources", lambda: client.list_tag_resources(request)).body
        rows = body.tag_resources.tag_resource if body.tag_resources else []
        found = {(r.resource_id, r.tag_key, r.tag_value) for r in rows if r.tag_key in ("cost-center", "tier")}
        equal("ListTagResources lists TagResources.TagResource[] for both keys",
              found, {(k, t, v) for k in (key, other) for t, v in (("cost-center", "cc-42"), ("tier", "gold"))})
        check("each row says ResourceType key", all(r.resource_type == "key" for r in rows),
              rows=[r.to_map() for r in rows])
        equal("NextToken is empty after the last page", body.next_token, "")
        filtered = kms.ListTagResourcesRequest(region_id="cn-hangzhou", resource_type="key",
                                               tag=[kms.ListTagResourcesRequestTag(key="tier", value="gold")])
        body = call("ListTagResources", lambda: client.list_tag_resources(filtered)).body
        equal("a Tag filter finds the keys that carry it", {r.resource_id for r in body.tag_resources.tag_resource},
              {key, other})
        request = kms.UntagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[key, other],
                                            tag_key=["tier"])
        call("UntagResources", lambda: client.untag_resources(request))
        equal("after UntagResources the key keeps its other tags", resource_tags(other)[0], {"cost-center": "cc-42"})
        request = kms.UntagResourcesRequest(region_id="cn-hangzhou", resource_type="key", resource_id=[other],
                                            all=True)
        call("UntagResources", lambda: client.untag_resources(request))
        equal("UntagResources with All removes every tag", resource_tags(other)[0], {})

    @report.section("CreateKeyVersion makes a new primary version; ListKeyVersions pages; DescribeKeyVersion describes")
    def _():
        needs(state, "key")
        key = state["key"]
        first = describe_key(key).primary_key_version
        old_blob = encrypt(key, b"before rotation").ciphertext_blob
        made = []
        for _ in range(2):
            version = call("CreateKeyVersion",
                           lambda: client.create_key_version(kms.CreateKeyVersionRequest(key_id=key))).body.key_version
            check("CreateKeyVersion answers KeyVersion.KeyVersionId, KeyId and CreationDate",
                  bool(version and version.key_version_id) and version.key_id == key
                  and bool(ALIBABA_DATE.match(version.creation_date or "")),
                  key_version=version and version.to_map())
            made.append(version)
        equal("DescribeKey shows the last one as PrimaryKeyVersion", describe_key(key).primary_key_version,
              made[-1].key_version_id)
        equal("Encrypt now uses the new primary version", encrypt(key, b"after").key_version_id, made[-1].key_version_id)
        equal("a ciphertext from before the rotations still opens", decrypt(old_blob).plaintext, b64(b"before rotation"))
        seen = []
        for page, expected in [(1, 2), (2, 1)]:
            request = kms.ListKeyVersionsRequest(key_id=key, page_number=page, page_size=2)
            body = call("ListKeyVersions", lambda: client.list_key_versions(request)).body
            equal("ListKeyVersions page %d: TotalCount is 3" % page, body.total_count, 3)
            versions = body.key_versions.key_version if body.key_versions else []
            equal("ListKeyVersions page %d holds KeyVersions.KeyVersion[] of %d" % (page, expected), len(versions),
                  expected)
            seen += [v.key_version_id for v in versions]
        equal("the pages hold every version once", sorted(seen), sorted([first] + [v.key_version_id for v in made]))
        request = kms.DescribeKeyVersionRequest(key_id=key, key_version_id=made[0].key_version_id)
        described = call("DescribeKeyVersion", lambda: client.describe_key_version(request)).body.key_version
        equal("DescribeKeyVersion describes the version asked for",
              (described.key_id, described.key_version_id, described.creation_date),
              (key, made[0].key_version_id, made[0].creation_date))


# ---------------------------------------------------------------------------
# secrets
# ---------------------------------------------------------------------------


def stages(body):
    return sorted(body.version_stages.version_stage or []) if body.version_stages else []


def secrets():
    state = {}
    name = "sdk/db-password"

    @report.section("CreateSecret stores a value that GetSecretValue returns with its version and stages")
    def _():
        key = create_key("secrets").key_id
        state["key"] = key
        request = kms.CreateSecretRequest(secret_name=name, secret_data="first value", secret_data_type="text",
                                          version_id="v1", encryption_key_id=key, description="made by the SDK")
        made = call("CreateSecret", lambda: client.create_secret(request)).body
        equal("CreateSecret answers SecretName and VersionId", (made.secret_name, made.version_id), (name, "v1"))
        check("CreateSecret answers the secret's Arn", bool(made.arn) and made.arn.startswith("acs:kms:"),
              arn=made.arn)
        value = get_secret_value(name)
        equal("GetSecretValue gives SecretData", value.secret_data, "first value")
        equal("GetSecretValue gives SecretDataType, VersionId and SecretName",
              (value.secret_data_type, value.version_id, value.secret_name), ("text", "v1", name))
        equal("GetSecretValue gives VersionStages.VersionStage[] [ACSCurrent]", stages(value), ["ACSCurrent"])
        check("GetSecretValue gives CreateTime in Alibaba's format", bool(ALIBABA_DATE.match(value.create_time or "")),
              create_time=value.create_time)
        state["made"] = True

    @report.section("PutSecretValue adds a version that becomes ACSCurrent, the old one ACSPrevious")
    def _():
        needs(state, "made")
        request = kms.PutSecretValueRequest(secret_name=name, version_id="v2", secret_data="second value")
        put = call("PutSecretValue", lambda: client.put_secret_value(request)).body
        equal("PutSecretValue answers the VersionId", put.version_id, "v2")
        equal("GetSecretValue now gives the new value", get_secret_value(name).secret_data, "second value")
        equal("VersionStage ACSPrevious gives the first value",
              get_secret_value(name, version_stage="ACSPrevious").secret_data, "first value")
        equal("VersionId v1 gives the first value", get_secret_value(name, version_id="v1").secret_data, "first value")
        request = kms.ListSecretVersionIdsRequest(secret_name=name)
        body = call("ListSecretVersionIds", lambda: client.list_secret_version_ids(request)).body
        versions = body.version_ids.version_id if body.version_ids else []
        equal("ListSecretVersionIds lists VersionIds.VersionId[] with their stages",
              sorted((v.version_id, tuple(stages(v))) for v in versions),
              [("v1", ("ACSPrevious",)), ("v2", ("ACSCurrent",))])
        equal("ListSecretVersionIds: TotalCount is 2", body.total_count, 2)

    @report.section("UpdateSecretVersionStage moves ACSCurrent back to the first version")
    def _():
        needs(state, "made")
        request = kms.UpdateSecretVersionStageRequest(secret_name=name, version_stage="ACSCurrent",
                                                      remove_from_version="v2", move_to_version="v1")
        call("UpdateSecretVersionStage", lambda: client.update_secret_version_stage(request))
        equal("GetSecretValue gives the first value again", get_secret_value(name).secret_data, "first value")

    @report.section("DescribeSecret shows the secret's metadata")
    def _():
        needs(state, "made", "key")
        body = call("DescribeSecret", lambda: client.describe_secret(kms.DescribeSecretRequest(secret_name=name))).body
        equal("SecretName, Description and EncryptionKeyId are the ones given",
              (body.secret_name, body.description, body.encryption_key_id), (name, "made by the SDK", state["key"]))
        equal("SecretType is Generic", body.secret_type, "Generic")
        check("CreateTime and UpdateTime are in Alibaba's format",
              bool(ALIBABA_DATE.match(body.create_time or "")) and bool(ALIBABA_DATE.match(body.update_time or "")),
              create_time=body.create_time, update_time=body.update_time)

    @report.section("ListSecrets pages through secrets with TotalCount")
    def _():
        needs(state, "made")
        for other in ("sdk/api-token", "sdk/tls-key"):
            request = kms.CreateSecretRequest(secret_name=other, secret_data="value of " + other, version_id="v1")
            call("CreateSecret", lambda: client.create_secret(request))
        seen = []
        for page, expected in [(1, 2), (2, 1)]:
            request = kms.ListSecretsRequest(page_number=page, page_size=2)
            body = call("ListSecrets", lambda: client.list_secrets(request)).body
            equal("ListSecrets page %d: TotalCount is 3" % page, body.total_count, 3)
            listed = body.secret_list.secret if body.secret_list else []
            equal("ListSecrets page %d holds SecretList.Secret[] of %d" % (page, expected), len(listed), expected)
            seen += [s.secret_name for s in listed]
        equal("the pages hold every secret once", sorted(seen), sorted([name, "sdk/api-token", "sdk/tls-key"]))

    @report.section("BatchGetSecretValue gives several secrets' values in one call")
    def _():
        needs(state, "made")
        wanted = [kms.BatchGetSecretValueRequestSecretsList(secret_name=n)
                  for n in ("sdk/api-token", "sdk/tls-key", "sdk/no-such-secret")]
        request = kms.BatchGetSecretValueRequest(secrets_list=wanted)
        body = call("BatchGetSecretValue", lambda: client.batch_get_secret_value(request)).body
        values = {v.secret_name: v.secret_data for v in (body.secret_values or [])}
        equal("SecretValues[] holds each secret's SecretData", values,
              {"sdk/api-token": "value of sdk/api-token", "sdk/tls-key": "value of sdk/tls-key"})
        check("each of SecretValues[] has its VersionStages and CreateTime",
              all(v.version_stages.version_stage == ["ACSCurrent"] and ALIBABA_DATE.match(v.create_time or "")
                  for v in body.secret_values), values=[v.to_map() for v in body.secret_values])
        errors = [(e.secret_name, e.code, e.http_status) for e in (body.errors or [])]
        equal("Errors[] names the secret that is not there, its Code and HttpStatus", errors,
              [("sdk/no-such-secret", "Forbidden.ResourceNotFound", 404)])

    @report.section("SetSecretPolicy sets a secret's policy, which GetSecretPolicy reads back; tags reach secrets")
    def _():
        needs(state, "made")
        default = call("GetSecretPolicy", lambda: client.get_secret_policy(
            kms.GetSecretPolicyRequest(secret_name=name, policy_name="default"))).body.policy
        check("the default secret policy lets the account root in", ":root" in (default or ""), policy=default)
        policy = ('{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::*:user/app"]},'
                  '"Action":["kms:GetSecretValue"],"Resource":["*"]}]}')
        request = kms.SetSecretPolicyRequest(secret_name=name, policy_name="default", policy=policy)
        call("SetSecretPolicy", lambda: client.set_secret_policy(request))
        read = call("GetSecretPolicy", lambda: client.get_secret_policy(
            kms.GetSecretPolicyRequest(secret_name=name))).body.policy
        equal("GetSecretPolicy gives the policy set", read, policy)
        request = kms.TagResourcesRequest(region_id="cn-hangzhou", resource_type="secret", resource_id=[name],
                                          tag=[kms.TagResourcesRequestTag(key="owner", value="db-team")])
        call("TagResources", lambda: client.tag_resources(request))
        described = call("DescribeSecret", lambda: client.describe_secret(
            kms.DescribeSecretRequest(secret_name=name, fetch_tags="true"))).body
        equal("DescribeSecret shows the tag", {t.tag_key: t.tag_value for t in described.tags.tag},
              {"owner": "db-team"})

    @report.section("DeleteSecret opens a recovery window in which the value is refused, until RestoreSecret")
    def _():
        needs(state, "made")
        request = kms.DeleteSecretRequest(secret_name=name, recovery_window_in_days="7")
        deleted = call("DeleteSecret", lambda: client.delete_secret(request)).body
        check("DeleteSecret answers PlannedDeleteTime in Alibaba's format",
              bool(ALIBABA_DATE.match(deleted.planned_delete_time or "")), body=deleted.to_map())
        refused("GetSecretValue in the recovery window raises Rejected.ResourceInDeleteWindow with status 409",
                "GetSecretValue", lambda: client.get_secret_value(kms.GetSecretValueRequest(secret_name=name)),
                "Rejected.ResourceInDeleteWindow", 409)
        restored = call("RestoreSecret", lambda: client.restore_secret(kms.RestoreSecretRequest(secret_name=name))).body
        equal("RestoreSecret answers the SecretName", restored.secret_name, name)
        equal("GetSecretValue works again", get_secret_value(name).secret_data, "first value")

    @report.section("ForceDeleteWithoutRecovery deletes at once: the secret is then not found (404)")
    def _():
        needs(state, "made")
        request = kms.DeleteSecretRequest(secret_name="sdk/tls-key", force_delete_without_recovery="true")
        call("DeleteSecret", lambda: client.delete_secret(request))
        refused("GetSecretValue of a deleted secret raises Forbidden.ResourceNotFound with status 404", "GetSecretValue",
                lambda: client.get_secret_value(kms.GetSecretValueRequest(secret_name="sdk/tls-key")),
                "Forbidden.ResourceNotFound", 404)


# ---------------------------------------------------------------------------
# the account, its regions and its KMS instances (one made by the test, KMSIM_INSTANCE_ID)
# ---------------------------------------------------------------------------


def instances():
    instance_id = scenario.setting("INSTANCE_ID")

    @report.section("DescribeRegions lists the regions in Regions.Region[]")
    def _():
        body = call("DescribeRegions", lambda: client.describe_regions()).body
        regions = [r.region_id for r in body.regions.region]
        check("cn-hangzhou and ap-southeast-1 are among them",
              "cn-hangzhou" in regions and "ap-southeast-1" in regions, regions=regions)

    @report.section("the account's KMS is Enabled, and OpenKmsService succeeds")
    def _():
        body = call("DescribeAccountKmsStatus", lambda: client.describe_account_kms_status()).body
        equal("AccountStatus is Enabled", body.account_status, "Enabled")
        opened = call("OpenKmsService", lambda: client.open_kms_service()).body
        check("OpenKmsService answers with a RequestId", bool(opened.request_id), body=opened.to_map())

    @report.section("GetKmsInstance, ListKmsInstances and GetKmsInstanceQuotaInfos describe the instance")
    def _():
        check("the test made an instance", bool(instance_id), instance_id=instance_id)
        key = create_key("in the instance", dkmsinstance_id=instance_id).key_id
        got = call("GetKmsInstance", lambda: client.get_kms_instance(
            kms.GetKmsInstanceRequest(kms_instance_id=instance_id))).body.kms_instance
        equal("KmsInstance.InstanceId, Spec and Status", (got.instance_id, got.spec, got.status),
              (instance_id, 1000, "Connected"))
        equal("KeyNum and SecretNum are the instance's quotas", (got.key_num, got.secret_num), (1000, "1000"))
        check("StartDate and EndDate are in Alibaba's format",
              bool(ALIBABA_DATE.match(got.start_date or "")) and bool(ALIBABA_DATE.match(got.end_date or "")),
              instance=got.to_map())
        body = call("ListKmsInstances", lambda: client.list_kms_instances(
            kms.ListKmsInstancesRequest(page_number=1, page_size=10))).body
        listed = body.kms_instances.kms_instance if body.kms_instances else []
        equal("ListKmsInstances: TotalCount is 1", body.total_count, 1)
        check("KmsInstances.KmsInstance[] has its id and ARN",
              [i.kms_instance_id for i in listed] == [instance_id]
              and listed[0].kms_instance_arn.endswith(":instance/" + instance_id),
              listed=[i.to_map() for i in listed])
        body = call("GetKmsInstanceQuotaInfos", lambda: client.get_kms_instance_quota_infos(
            kms.GetKmsInstanceQuotaInfosRequest(kms_instance_id=instance_id))).body
        quotas = {q.resource_type: (q.resource_quota, q.used_quantity) for q in body.kms_instance_quota_infos}
        equal("KmsInstanceQuotaInfos[]: the key quota and the one key made", quotas.get("key"), (1000, 1))
        equal("the secret and VPC quotas", (quotas.get("secret"), quotas.get("vpc")), ((1000, 0), (1, 0)))
        described = describe_key(key)
        equal("the key is one of the instance's", described.dkmsinstance_id, instance_id)


# ---------------------------------------------------------------------------
# application access, as the admin under --auth required: network rules, permission policies, AAPs and
# ClientKeys, and an application calling with its ClientKey (KMSIM_INSTANCE_ID names the instance)
# ---------------------------------------------------------------------------

KEY_USER = "RbacPermission/Template/CryptoServiceKeyUser"
SECRET_USER = "RbacPermission/Template/CryptoServiceSecretUser"


def access():
    instance_id = scenario.setting("INSTANCE_ID")
    state = {}

    @report.section("CreateNetworkRule, DescribeNetworkRule and ListNetworkRules manage the addresses allowed in")
    def _():
        request = kms.CreateNetworkRuleRequest(name="sdk-office", type="Private", description="the office",
                                               source_private_ip='["127.0.0.1","10.0.0.0/8"]')
        made = call("CreateNetworkRule", lambda: client.create_network_rule(request)).body
        check("CreateNetworkRule answers its Arn", (made.arn or "").endswith(":network/sdk-office"), body=made.to_map())
        equal("CreateNetworkRule answers Type and SourcePrivateIp", (made.type, made.source_private_ip),
              ("Private", '["127.0.0.1","10.0.0.0/8"]'))
        request = kms.UpdateNetworkRuleRequest(name="sdk-office", source_private_ip="127.0.0.0/8,10.0.0.0/8")
        call("UpdateNetworkRule", lambda: client.update_network_rule(request))
        described = call("DescribeNetworkRule", lambda: client.describe_network_rule(
            kms.DescribeNetworkRuleRequest(name="sdk-office"))).body
        equal("DescribeNetworkRule shows the addresses as updated, the description as made",
              (described.source_private_ip, described.description), ('["127.0.0.0/8","10.0.0.0/8"]', "the office"))
        body = call("ListNetworkRules", lambda: client.list_network_rules(
            kms.ListNetworkRulesRequest(page_number=1, page_size=10))).body
        equal("ListNetworkRules lists NetworkRules.NetworkRule[] with TotalCount",
              ([(r.name, r.type) for r in body.network_rules.network_rule], body.total_count),
              ([("sdk-office", "Private")], 1))
        state["rule"] = True

    @report.section("CreatePolicy, DescribePolicy, ListPolicies and UpdatePolicy manage a permission policy")
    def _():
        needs(state, "rule")
        check("the test made an instance", bool(instance_id), instance_id=instance_id)
        request = kms.CreatePolicyRequest(name="sdk-app-crypto", kms_instance=instance_id, description="for the app",
                                          permissions='["%s","%s"]' % (KEY_USER, SECRET_USER),
                                          resources='["key/*","secret/*"]',
                                          access_control_rules='{"NetworkRules":["sdk-office"]}')
        made = call("CreatePolicy", lambda: client.create_policy(request)).body
        check("CreatePolicy answers its Arn", (made.arn or "").endswith(":policy/sdk-app-crypto"), body=made.to_map())
        described = call("DescribePolicy", lambda: client.describe_policy(
            kms.DescribePolicyRequest(name="sdk-app-crypto"))).body
        equal("DescribePolicy gives Permissions and Resources as lists",
              (described.permissions, described.resources), ([KEY_USER, SECRET_USER], ["key/*", "secret/*"]))
        equal("DescribePolicy gives KmsInstance and AccessControlRules",
              (described.kms_instance, described.access_control_rules),
              (instance_id, '{"NetworkRules":["sdk-office"]}'))
        request = kms.UpdatePolicyRequest(name="sdk-app-crypto", permissions='["%s"]' % KEY_USER)
        call("UpdatePolicy", lambda: client.update_policy(request))
        body = call("ListPolicies", lambda: client.list_policies(kms.ListPoliciesRequest(page_size=10))).body
        equal("ListPolicies lists Policies.Policy[]", [p.name for p in body.policies.policy], ["sdk-app-crypto"])
        state["policy"] = True

    @report.section("CreateApplicationAccessPoint and CreateClientKey give an application its credential")
    def _():
        needs(state, "policy")
        request = kms.CreateApplicationAccessPointRequest(name="sdk-app", authentication_method="ClientKey",
                                                          policies='["sdk-app-crypto"]')
        made = call("CreateApplicationAccessPoint", lambda: client.create_application_access_point(request)).body
        equal("CreateApplicationAccessPoint answers Name, AuthenticationMethod and Policies",
              (made.name, made.authentication_method, made.policies), ("sdk-app", "ClientKey", '["sdk-app-crypto"]'))
        request = kms.UpdateApplicationAccessPointRequest(name="sdk-app", description="the orders app")
        call("UpdateApplicationAccessPoint", lambda: client.update_application_access_point(request))
        described = call("DescribeApplicationAccessPoint", lambda: client.describe_application_access_point(
            kms.DescribeApplicationAccessPointRequest(name="sdk-app"))).body
        equal("DescribeApplicationAccessPoint shows the new description", described.description, "the orders app")
        body = call("ListApplicationAccessPoints", lambda: client.list_application_access_points(
            kms.ListApplicationAccessPointsRequest(page_number=1, page_size=10))).body
        equal("ListApplicationAccessPoints lists ApplicationAccessPoints.ApplicationAccessPoint[]",
              [(a.name, a.authentication_method) for a in body.application_access_points.application_access_point],
              [("sdk-app", "ClientKey")])
        request = kms.CreateClientKeyRequest(aap_name="sdk-app", password="Sdk-Passw0rd!")
        key = call("CreateClientKey", lambda: client.create_client_key(request)).body
        check("CreateClientKey answers a KAAP. id, its dates and PrivateKeyData",
              (key.client_key_id or "").startswith("KAAP.") and bool(key.private_key_data)
              and bool(ALIBABA_DATE.match(key.not_after or "")), body={"ClientKeyId": key.client_key_id})
        got = call("GetClientKey", lambda: client.get_client_key(
            kms.GetClientKeyRequest(client_key_id=key.client_key_id))).body
        equal("GetClientKey (a GET) names its AAP", (got.client_key_id, got.aap_name), (key.client_key_id, "sdk-app"))
        listed = call("ListClientKeys", lambda: client.list_client_keys(kms.ListClientKeysRequest(aap_name="sdk-app"))).body
        equal("ListClientKeys lists ClientKeys[]", [k.client_key_id for k in listed.client_keys], [key.client_key_id])
        state.update(client_key_id=key.client_key_id, secret=key.private_key_data)

    @report.section("the ClientKey is Alibaba's PKCS#12 file: it opens with its password and signs no OpenAPI call")
    def _():
        needs(state, "client_key_id")
        from cryptography.hazmat.primitives.serialization import pkcs12
        from cryptography.hazmat.primitives.asymmetric import rsa
        key, certificate, _ = pkcs12.load_key_and_certificates(base64.b64decode(state["secret"]), b"Sdk-Passw0rd!")
        check("PrivateKeyData is a PKCS#12 file holding an RSA-2048 key under the password",
              isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048, body={"key_size": key.key_size})
        equal("its certificate names the ClientKey", certificate.subject.rfc4514_string(),
              "CN=" + state["client_key_id"])
        app_id = state["client_key_id"]
        app = new_client(app_id, state["secret"])
        request = kms.EncryptRequest(key_id=create_key("in the instance", dkmsinstance_id=instance_id).key_id,
                                     plaintext=b64(b"order 42"))
        refused("the ClientKey names no AccessKey on the OpenAPI (it signs the instance API): "
                "InvalidAccessKeyId.NotFound with status 404", "Encrypt",
                lambda: app.encrypt(request), "InvalidAccessKeyId.NotFound", 404, access_key_id=app_id)

    @report.section("DeleteClientKey, DeleteApplicationAccessPoint, DeletePolicy and DeleteNetworkRule undo it all")
    def _():
        needs(state, "client_key_id")
        refused("a network rule a policy names is in use: Rejected.ResourceInUse with status 409", "DeleteNetworkRule",
                lambda: client.delete_network_rule(kms.DeleteNetworkRuleRequest(name="sdk-office")),
                "Rejected.ResourceInUse", 409)
        call("DeleteClientKey", lambda: client.delete_client_key(
            kms.DeleteClientKeyRequest(client_key_id=state["client_key_id"])))
        call("DeleteApplicationAccessPoint", lambda: client.delete_application_access_point(
            kms.DeleteApplicationAccessPointRequest(name="sdk-app")))
        call("DeletePolicy", lambda: client.delete_policy(kms.DeletePolicyRequest(name="sdk-app-crypto")))
        call("DeleteNetworkRule", lambda: client.delete_network_rule(kms.DeleteNetworkRuleRequest(name="sdk-office")))
        refused("DescribePolicy of a deleted policy raises Forbidden.ResourceNotFound with status 404", "DescribePolicy",
                lambda: client.describe_policy(kms.DescribePolicyRequest(name="sdk-app-crypto")),
                "Forbidden.ResourceNotFound", 404)


# ---------------------------------------------------------------------------
# signatures, under --auth required
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def patched(name, replacement):
    """Replaces the SDK's own Utils.<name> (x-acs-date / Timestamp, x-acs-signature-nonce / SignatureNonce)."""
    original = getattr(OpenApiUtils, name)
    setattr(OpenApiUtils, name, staticmethod(replacement))
    try:
        yield
    finally:
        setattr(OpenApiUtils, name, original)


def list_keys_on(some_client):
    """The bare SDK call (for `refused`, which logs it)."""
    return lambda: some_client.list_keys(kms.ListKeysRequest(page_number=1, page_size=10))


def signatures():
    @report.section("calls signed with the right AccessKey secret are answered, whatever their parameters hold")
    def _():
        key = create_key("signed").key_id
        equal("the SDK signed " + SIGNED_WITH, tap.exchanges[-1]["signature"], SIGNED_WITH)
        # Values that percent-encoding treats differently: space, ~*'()!, /, + and UTF-8.
        context = {"note": "a b~*'()!/+é", "n": "1"}
        blob = encrypt(key, b"signed plaintext", context).ciphertext_blob
        equal("Decrypt (a form body with no fields) opens it", decrypt(blob, context).plaintext, b64(b"signed plaintext"))
        data = "p@ss word+/=é~*'()!"
        request = kms.CreateSecretRequest(secret_name="sdk/signed", secret_data=data, version_id="v1",
                                          encryption_key_id=key)
        call("CreateSecret", lambda: client.create_secret(request))
        equal("CreateSecret's SecretData (in the form body) comes back intact", get_secret_value("sdk/signed").secret_data,
              data)
        body = call("ListKeys", list_keys_on(client)).body
        check("ListKeys answers, with the key in Keys.Key[]", key in [k.key_id for k in body.keys.key], body=body.to_map())

    @report.section("a signature made with the wrong secret is refused with SignatureDoesNotMatch and HTTP 400")
    def _():
        forged = new_client(ACCESS_KEY_ID, ACCESS_KEY_SECRET + "x")
        refused("a wrong secret raises SignatureDoesNotMatch with status 400", "ListKeys",
                list_keys_on(forged), "SignatureDoesNotMatch", 400)

    @report.section("an unknown AccessKeyId is refused with InvalidAccessKeyId.NotFound and HTTP 404")
    def _():
        stranger = "LTAIkmsimStranger" + uuid.uuid4().hex[:8]
        refused("an unknown AccessKeyId raises InvalidAccessKeyId.NotFound with status 404", "ListKeys",
                list_keys_on(new_client(stranger, "whatever-secret")), "InvalidAccessKeyId.NotFound", 404,
                access_key_id=stranger)

    @report.section("a request signed 20 minutes ago is refused with HTTP 400")
    def _():
        stale = (datetime.now(timezone.utc) - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
        with patched("get_timestamp", lambda: stale):
            error = refused("a timestamp 20 minutes old is refused with status 400", "ListKeys",
                            list_keys_on(client), STALE_CODES, 400)
        report.fact("stale timestamp code", error.get("code"))

    @report.section("a replayed signature nonce is refused with SignatureNonceUsed and HTTP 400")
    def _():
        nonce = uuid.uuid4().hex
        with patched("get_nonce", lambda: nonce):
            answered = call("ListKeys", list_keys_on(client)).body
            check("the first call with the nonce is answered", bool(answered.request_id), body=answered.to_map())
            refused("the second call with the same nonce raises SignatureNonceUsed with status 400", "ListKeys",
                    list_keys_on(client), "SignatureNonceUsed", 400)


def throttling():
    @report.section("a throttled call raises the SDK's ThrottlingException, as x-acs-retry-after tells it to")
    def _():
        key = scenario.setting("KEY_ID")
        request = kms.EncryptRequest(key_id=key, plaintext=b64(b"over the quota"))
        error = refused("Encrypt over the quota is refused with Rejected.Throttling and status 429", "Encrypt",
                        lambda: client.encrypt(request), "Rejected.Throttling", 429)
        equal("the SDK raised its ThrottlingException", error.get("type"), "ThrottlingException")


if __name__ == "__main__":
    scenario.main(report, {
        "throttling": throttling,
        "lifecycle": lifecycle,
        "crypto": crypto,
        "resources": resources,
        "secrets": secrets,
        "instances": instances,
        "access": access,
        "signatures": signatures,
    })
