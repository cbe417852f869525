"""Scenario for Alibaba's router SDK (alibabacloud-kms-python-sdk 1.1.3) against one kmsim: its TransferClient sends
cryptographic calls to the KMS instance API (Encrypt as AdvanceEncrypt, the encryption context as Aad) with a
ClientKey, and management calls to the OpenAPI with an AccessKey.

Usage: router_sdk.py halves. Settings: those of instance.py, and KMSIM_INSTANCE_ID, KMSIM_ACCESS_KEY_SECRET (the
OpenAPI half's AccessKey is KMSIM_OPENAPI_ACCESS_KEY_ID), KMSIM_SIGN_KEY_ID (EC_P256 SIGN/VERIFY in the instance),
KMSIM_RSA_KEY_ID (RSA_2048 ENCRYPT/DECRYPT), KMSIM_SECRET_NAME holding KMSIM_SECRET_VALUE.
"""

import base64
import hashlib

from alibabacloud_kms20160120 import models as kms
from alibabacloud_kms_kms20160120.models import KmsConfig
from alibabacloud_kms_kms20160120.transfer_client import TransferClient
from alibabacloud_tea_openapi.models import Config as OpenApiConfig
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import instance
import scenario

setting = instance.setting
report = instance.new_report("alibabacloud-kms-python-sdk")
check, equal = report.check, report.equal
CLIENT_KEY_ID, CLIENT_KEY_FILE = instance.client_key()
ACCESS_KEY_ID = setting("OPENAPI_ACCESS_KEY_ID")

client = TransferClient(
    config=OpenApiConfig(access_key_id=ACCESS_KEY_ID, access_key_secret=setting("ACCESS_KEY_SECRET"),
                         endpoint=setting("ENDPOINT"), protocol="http", region_id="cn-hangzhou"),
    kms_config=KmsConfig(client_key_file=CLIENT_KEY_FILE, password=setting("CLIENT_KEY_PASSWORD"),
                         endpoint=setting("ENDPOINT"), protocol="http"),
)


def crypto(action, function):
    """A call the router sends to the instance API, signed with the ClientKey."""
    return report.call(action, function, CLIENT_KEY_ID)


def management(action, function):
    """A call the router sends to the OpenAPI, signed with the AccessKey."""
    return report.call(action, function, ACCESS_KEY_ID)


def halves():
    state = {}

    @report.section("management goes to the OpenAPI: CreateKey in the instance, DescribeKey")
    def _():
        made = management("CreateKey", lambda: client.create_key(kms.CreateKeyRequest(
            dkmsinstance_id=setting("INSTANCE_ID"), description="made through the router"))).body.key_metadata
        equal("the key is in the instance", made.dkmsinstance_id, setting("INSTANCE_ID"))
        described = management("DescribeKey", lambda: client.describe_key(kms.DescribeKeyRequest(
            key_id=made.key_id))).body.key_metadata
        equal("DescribeKey names it Enabled", (described.key_id, described.key_state), (made.key_id, "Enabled"))
        state["key_id"] = made.key_id

    @report.section("cryptography goes to the instance: Encrypt and Decrypt with an encryption context")
    def _():
        key_id = state["key_id"]
        context = {"order": "42", "app": "billing"}
        sealed = crypto("Encrypt", lambda: client.encrypt(kms.EncryptRequest(
            key_id=key_id, plaintext="hello router", encryption_context=context))).body
        blob = base64.b64decode(sealed.ciphertext_blob)
        equal("the router's CiphertextBlob is the Advance form less its 3 bytes: key version, then the Iv",
              blob[:36].decode(), sealed.key_version_id)
        opened = crypto("Decrypt", lambda: client.decrypt(kms.DecryptRequest(
            ciphertext_blob=sealed.ciphertext_blob, encryption_context={"app": "billing", "order": "42"}))).body
        equal("Decrypt gives the text back, the context in any order", (opened.plaintext, opened.key_id),
              ("hello router", key_id))
        report.refused("another context does not open it: InvalidParameter with status 400", "Decrypt",
                       lambda: client.decrypt(kms.DecryptRequest(ciphertext_blob=sealed.ciphertext_blob,
                                                                 encryption_context={"order": "43"})),
                       "InvalidParameter", 400, CLIENT_KEY_ID)

    @report.section("GenerateDataKey and GenerateDataKeyWithoutPlaintext through the instance")
    def _():
        key_id = state["key_id"]
        made = crypto("GenerateDataKey", lambda: client.generate_data_key(kms.GenerateDataKeyRequest(
            key_id=key_id, number_of_bytes=32))).body
        equal("a 32-byte data key, base64", len(base64.b64decode(made.plaintext)), 32)
        opened = crypto("Decrypt", lambda: client.decrypt(kms.DecryptRequest(
            ciphertext_blob=made.ciphertext_blob))).body
        equal("its ciphertext opens to the data key (base64, as the router seals it)", opened.plaintext,
              made.plaintext)
        bare = crypto("GenerateDataKeyWithoutPlaintext", lambda: client.generate_data_key_without_plaintext(
            kms.GenerateDataKeyWithoutPlaintextRequest(key_id=key_id, key_spec="AES_128"))).body
        opened = crypto("Decrypt", lambda: client.decrypt(kms.DecryptRequest(
            ciphertext_blob=bare.ciphertext_blob))).body
        equal("WithoutPlaintext's opens to a 16-byte key", len(base64.b64decode(opened.plaintext)), 16)

    @report.section("GetPublicKey and the asymmetric calls through the instance")
    def _():
        sign_key = setting("SIGN_KEY_ID")
        pem = crypto("GetPublicKey", lambda: client.get_public_key(kms.GetPublicKeyRequest(
            key_id=sign_key))).body.public_key
        digest = base64.b64encode(hashlib.sha256(b"routed").digest()).decode()
        signed = crypto("AsymmetricSign", lambda: client.asymmetric_sign(kms.AsymmetricSignRequest(
            key_id=sign_key, algorithm="ECDSA_SHA_256", digest=digest))).body
        public = serialization.load_pem_public_key(pem.encode())
        public.verify(base64.b64decode(signed.value), b"routed", ec.ECDSA(hashes.SHA256()))
        check("the signature verifies outside kmsim, and names its key version", bool(signed.key_version_id))
        verified = crypto("AsymmetricVerify", lambda: client.asymmetric_verify(kms.AsymmetricVerifyRequest(
            key_id=sign_key, algorithm="ECDSA_SHA_256", digest=digest, value=signed.value))).body
        equal("AsymmetricVerify says true", verified.value, True)
        rsa_key = setting("RSA_KEY_ID")
        sealed = crypto("AsymmetricEncrypt", lambda: client.asymmetric_encrypt(kms.AsymmetricEncryptRequest(
            key_id=rsa_key, algorithm="RSAES_OAEP_SHA_256",
            plaintext=base64.b64encode(b"routed secret").decode()))).body
        opened = crypto("AsymmetricDecrypt", lambda: client.asymmetric_decrypt(kms.AsymmetricDecryptRequest(
            key_id=rsa_key, key_version_id=sealed.key_version_id, algorithm="RSAES_OAEP_SHA_256",
            ciphertext_blob=sealed.ciphertext_blob))).body
        equal("AsymmetricEncrypt and AsymmetricDecrypt round-trip (RSA-OAEP), naming the key version",
              (base64.b64decode(opened.plaintext), bool(sealed.key_version_id)), (b"routed secret", True))

    @report.section("GetSecretValue through the instance")
    def _():
        value = crypto("GetSecretValue", lambda: client.get_secret_value(kms.GetSecretValueRequest(
            secret_name=setting("SECRET_NAME")))).body
        equal("the secret's value", (value.secret_data, value.version_stages.version_stage),
              (setting("SECRET_VALUE"), ["ACSCurrent"]))

    @report.section("a key disabled through the OpenAPI is refused through the instance: Rejected.Disabled, 409")
    def _():
        key_id = state["key_id"]
        management("DisableKey", lambda: client.disable_key(kms.DisableKeyRequest(key_id=key_id)))
        report.refused("Encrypt with it", "Encrypt", lambda: client.encrypt(kms.EncryptRequest(
            key_id=key_id, plaintext="x")), "Rejected.Disabled", 409, CLIENT_KEY_ID)

    report.fact("client_key_id", CLIENT_KEY_ID)


scenario.main(report, {"halves": halves})
