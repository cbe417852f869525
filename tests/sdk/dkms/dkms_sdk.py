"""Scenarios for Alibaba's KMS instance SDK (alibabacloud-dkms-gcs 1.0.2) against kmsim's instance API.

Usage: dkms_sdk.py calls|refusals|tls (settings in instance.py's docstring, and below). Each prints the report of
tests/sdk/alibaba/scenario.py; tests/dkms_sdk.rs runs them and checks the audit records the calls left.

`calls`: every one of the SDK's 14 calls on the instance's keys (KMSIM_KEY_ID AES_256, KMSIM_RSA_KEY_ID
RSA_2048 ENCRYPT/DECRYPT, KMSIM_SIGN_KEY_ID EC_P256 SIGN/VERIFY) and its secret (KMSIM_SECRET_NAME holding
KMSIM_SECRET_VALUE), checked outside kmsim with `cryptography` where a check can be made there; then what kmsim
refuses through the SDK's TeaException: a ciphertext opened with the wrong key (KMSIM_OTHER_KEY_ID), a disabled key
(KMSIM_DISABLED_KEY_ID), a key outside the ClientKey's instance (KMSIM_OUTSIDE_KEY_ID).
`refusals`: a ClientKey outside its validity window (KMSIM_EXPIRED_CLIENT_KEY_FILE, same password), and a request
signed with another ClientKey's private key (KMSIM_OTHER_CLIENT_KEY_FILE) under this one's id.
`tls`: Encrypt and Decrypt over https, trusting kmsim's CA (KMSIM_CA_FILE), and refusing the connection without it.
"""

import base64
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from openapi.models import Config
from openapi_util.client import Client as UtilClient
from openapi_util.models import RuntimeOptions
from sdk import models as m
from sdk.client import Client

import instance
import scenario

setting = instance.setting
report = instance.new_report("alibabacloud-dkms-gcs")
check, equal = report.check, report.equal
KEY_ID = setting("KEY_ID")
CLIENT_KEY_ID, CLIENT_KEY_FILE = instance.client_key() if setting("CLIENT_KEY_FILE") else ("", "")
PASSWORD = setting("CLIENT_KEY_PASSWORD")


def new_client(protocol=None, **config):
    settings = dict(client_key_file=CLIENT_KEY_FILE, password=PASSWORD, endpoint=setting("ENDPOINT"),
                    protocol=protocol or setting("PROTOCOL", "http"))
    settings.update(config)
    return Client(Config(**settings))


def call(action, function, access_key_id=None):
    return report.call(action, function, access_key_id or CLIENT_KEY_ID)


def refused(what, action, function, code, status, access_key_id=None):
    return report.refused(what, action, function, code, status, access_key_id or CLIENT_KEY_ID)


def calls():
    client = new_client()
    state = {}

    @report.section("Encrypt and Decrypt: raw bytes, Aad bound, the Iv the SDK gets back opens it again")
    def _():
        sealed = call("Encrypt", lambda: client.encrypt(m.EncryptRequest(key_id=KEY_ID, plaintext=b"order 42",
                                                                          aad=b"tenant=7")))
        equal("Encrypt answers the key, AES_GCM and a 12-byte Iv", (sealed.key_id, sealed.algorithm, len(sealed.iv)),
              (KEY_ID, "AES_GCM", 12))
        check("the ciphertext is raw bytes, not base64", isinstance(sealed.ciphertext_blob, bytes)
              and b"order 42" not in sealed.ciphertext_blob, blob=sealed.ciphertext_blob)
        opened = call("Decrypt", lambda: client.decrypt(m.DecryptRequest(
            key_id=KEY_ID, ciphertext_blob=sealed.ciphertext_blob, iv=sealed.iv, aad=b"tenant=7")))
        equal("Decrypt gives the plaintext back", (opened.key_id, opened.plaintext), (KEY_ID, b"order 42"))
        refused("another Aad does not open it: InvalidParameter with status 400", "Decrypt",
                lambda: client.decrypt(m.DecryptRequest(key_id=KEY_ID, ciphertext_blob=sealed.ciphertext_blob,
                                                        iv=sealed.iv, aad=b"tenant=8")), "InvalidParameter", 400)
        state["sealed"] = sealed

    @report.section("AdvanceEncrypt and AdvanceDecrypt: Alibaba's self-describing ciphertext with its key version")
    def _():
        sealed = call("AdvanceEncrypt", lambda: client.advance_encrypt(m.AdvanceEncryptRequest(
            key_id=KEY_ID, plaintext=b"advanced", aad=b"ctx")))
        blob = sealed.ciphertext_blob
        equal("the ciphertext starts $, cipher version 0, AES-GCM (2)", blob[:3], b"$\x00\x02")
        equal("then the key version id and the Iv", (blob[3:39].decode(), blob[39:51]),
              (sealed.key_version_id, sealed.iv))
        opened = call("AdvanceDecrypt", lambda: client.advance_decrypt(m.AdvanceDecryptRequest(
            ciphertext_blob=blob, aad=b"ctx")))
        equal("AdvanceDecrypt needs no key id and names the version", (opened.key_id, opened.key_version_id,
              opened.plaintext), (KEY_ID, sealed.key_version_id, b"advanced"))

    @report.section("GenerateDataKey and AdvanceGenerateDataKey: the data key, sealed, opens with Decrypt")
    def _():
        made = call("GenerateDataKey", lambda: client.generate_data_key(m.GenerateDataKeyRequest(
            key_id=KEY_ID, number_of_bytes=32, aad=b"dk")))
        equal("a 32-byte data key and a 12-byte Iv", (len(made.plaintext), len(made.iv)), (32, 12))
        opened = call("Decrypt", lambda: client.decrypt(m.DecryptRequest(
            key_id=KEY_ID, ciphertext_blob=made.ciphertext_blob, iv=made.iv, aad=b"dk")))
        equal("Decrypt opens the sealed data key", opened.plaintext, made.plaintext)
        advanced = call("AdvanceGenerateDataKey", lambda: client.advance_generate_data_key(
            m.AdvanceGenerateDataKeyRequest(key_id=KEY_ID, number_of_bytes=16)))
        equal("AdvanceGenerateDataKey's is 16 bytes in the Advance form", (len(advanced.plaintext),
              advanced.ciphertext_blob[:3]), (16, b"$\x00\x02"))
        opened = call("AdvanceDecrypt", lambda: client.advance_decrypt(m.AdvanceDecryptRequest(
            ciphertext_blob=advanced.ciphertext_blob)))
        equal("AdvanceDecrypt opens it", opened.plaintext, advanced.plaintext)

    @report.section("the data key pair calls: a key pair whose private key is sealed under the instance key")
    def _():
        pair = call("GenerateDataKeyPair", lambda: client.generate_data_key_pair(m.GenerateDataKeyPairRequest(
            key_id=KEY_ID, key_pair_spec="RSA_2048", key_format="PEM")))
        private = serialization.load_pem_private_key(pair.private_key_plaintext, None)
        public = serialization.load_pem_public_key(pair.public_key)
        equal("GenerateDataKeyPair's PEM private key is the public key's half, RSA_2048",
              (private.public_key().public_numbers() == public.public_numbers(), pair.key_pair_spec),
              (True, "RSA_2048"))
        opened = call("Decrypt", lambda: client.decrypt(m.DecryptRequest(
            key_id=KEY_ID, ciphertext_blob=pair.private_key_ciphertext_blob, iv=pair.iv)))
        check("the sealed private key opens to the same key (DER)",
              serialization.load_der_private_key(opened.plaintext, None).private_numbers()
              == private.private_numbers())
        bare = call("GenerateDataKeyPairWithoutPlaintext", lambda: client.generate_data_key_pair_without_plaintext(
            m.GenerateDataKeyPairWithoutPlaintextRequest(key_id=KEY_ID, key_pair_spec="EC_P256",
                                                         key_format="DER")))
        check("WithoutPlaintext answers a DER EC public key and a sealed private key",
              isinstance(serialization.load_der_public_key(bare.public_key), ec.EllipticCurvePublicKey)
              and len(bare.private_key_ciphertext_blob) > 100, spec=bare.key_pair_spec)
        advanced = call("AdvanceGenerateDataKeyPair", lambda: client.advance_generate_data_key_pair(
            m.AdvanceGenerateDataKeyPairRequest(key_id=KEY_ID, key_pair_spec="EC_P256")))
        opened = call("AdvanceDecrypt", lambda: client.advance_decrypt(m.AdvanceDecryptRequest(
            ciphertext_blob=advanced.private_key_ciphertext_blob)))
        check("AdvanceGenerateDataKeyPair's sealed private key (Advance form) opens to its plaintext half",
              serialization.load_der_private_key(opened.plaintext, None).private_numbers()
              == serialization.load_pem_private_key(advanced.private_key_plaintext, None).private_numbers())
        equal("and names its key version", advanced.key_version_id, opened.key_version_id)

    @report.section("GenerateRandom, GetPublicKey, Sign and Verify; RSA-OAEP through Encrypt and Decrypt")
    def _():
        random = call("GenerateRandom", lambda: client.generate_random(m.GenerateRandomRequest(length=24)))
        equal("GenerateRandom gives the bytes asked for", len(random.random), 24)
        sign_key = setting("SIGN_KEY_ID")
        pem = call("GetPublicKey", lambda: client.get_public_key(m.GetPublicKeyRequest(key_id=sign_key))).public_key
        public = serialization.load_pem_public_key(pem.encode())
        digest = hashlib.sha256(b"the invoice").digest()
        signed = call("Sign", lambda: client.sign(m.SignRequest(key_id=sign_key, algorithm="ECDSA_SHA_256",
                                                                  message=digest, message_type="DIGEST")))
        public.verify(signed.signature, b"the invoice", ec.ECDSA(hashes.SHA256()))
        check("the signature verifies outside kmsim (cryptography, ECDSA P-256 SHA-256)", True)
        verified = call("Verify", lambda: client.verify(m.VerifyRequest(
            key_id=sign_key, algorithm="ECDSA_SHA_256", message=digest, message_type="DIGEST",
            signature=signed.signature)))
        forged = call("Verify", lambda: client.verify(m.VerifyRequest(
            key_id=sign_key, algorithm="ECDSA_SHA_256", message=hashlib.sha256(b"forged").digest(),
            message_type="DIGEST", signature=signed.signature)))
        equal("Verify says true for it and false for another digest", (verified.value, forged.value), (True, False))
        rsa_key = setting("RSA_KEY_ID")
        rsa_pem = call("GetPublicKey", lambda: client.get_public_key(m.GetPublicKeyRequest(key_id=rsa_key)))
        rsa_public = serialization.load_pem_public_key(rsa_pem.public_key.encode())
        outside = rsa_public.encrypt(b"wrapped outside", padding.OAEP(padding.MGF1(hashes.SHA256()),
                                                                     hashes.SHA256(), None))
        opened = call("Decrypt", lambda: client.decrypt(m.DecryptRequest(
            key_id=rsa_key, algorithm="RSAES_OAEP_SHA_256", ciphertext_blob=outside)))
        equal("Decrypt with RSAES_OAEP_SHA_256 opens what cryptography sealed", opened.plaintext, b"wrapped outside")
        sealed = call("Encrypt", lambda: client.encrypt(m.EncryptRequest(
            key_id=rsa_key, algorithm="RSAES_OAEP_SHA_256", plaintext=b"for the key")))
        opened = call("Decrypt", lambda: client.decrypt(m.DecryptRequest(
            key_id=rsa_key, algorithm="RSAES_OAEP_SHA_256", ciphertext_blob=sealed.ciphertext_blob)))
        equal("Encrypt with RSAES_OAEP_SHA_256 round-trips", opened.plaintext, b"for the key")

    @report.section("GetSecretValue reads the instance's secret")
    def _():
        value = call("GetSecretValue", lambda: client.get_secret_value(m.GetSecretValueRequest(
            secret_name=setting("SECRET_NAME"))))
        equal("its value, type and current stage", (value.secret_data, value.secret_data_type,
              list(value.version_stages)), (setting("SECRET_VALUE"), "text", ["ACSCurrent"]))

    @report.section("refusals come as the SDK's TeaException with Alibaba's code and HTTP status")
    def _():
        sealed = state["sealed"]
        refused("a ciphertext named with a key that did not seal it: IncorrectKey with status 400", "Decrypt",
                lambda: client.decrypt(m.DecryptRequest(key_id=setting("OTHER_KEY_ID"), iv=sealed.iv,
                                                        ciphertext_blob=sealed.ciphertext_blob, aad=b"tenant=7")),
                "IncorrectKey", 400)
        refused("a disabled key: Rejected.Disabled with status 409", "Encrypt",
                lambda: client.encrypt(m.EncryptRequest(key_id=setting("DISABLED_KEY_ID"), plaintext=b"x")),
                "Rejected.Disabled", 409)
        refused("a key outside the ClientKey's instance: Forbidden.KeyNotFound with status 404", "Encrypt",
                lambda: client.encrypt(m.EncryptRequest(key_id=setting("OUTSIDE_KEY_ID"), plaintext=b"x")),
                "Forbidden.KeyNotFound", 404)
        refused("a key that does not exist: Forbidden.KeyNotFound with status 404", "Encrypt",
                lambda: client.encrypt(m.EncryptRequest(key_id="key-hzzdoesnotexist000000", plaintext=b"x")),
                "Forbidden.KeyNotFound", 404)

    report.fact("client_key_id", CLIENT_KEY_ID)


def refusals():
    @report.section("a ClientKey outside its validity window is refused: Forbidden.AccessKey with status 403")
    def _():
        expired_id, expired_file = json.load(open(setting("EXPIRED_CLIENT_KEY_FILE")))["KeyId"], \
            setting("EXPIRED_CLIENT_KEY_FILE")
        client = new_client(client_key_file=expired_file)
        refused("Encrypt with it", "Encrypt", lambda: client.encrypt(m.EncryptRequest(key_id=KEY_ID, plaintext=b"x")),
                "Forbidden.AccessKey", 403, access_key_id=expired_id)

    @report.section("a request signed with another ClientKey's private key is refused: SignatureNotMatch, 401")
    def _():
        other = json.load(open(setting("OTHER_CLIENT_KEY_FILE")))
        pem = UtilClient.get_private_pem_from_pk_12(base64.b64decode(other["PrivateKeyData"]), PASSWORD)
        client = new_client(client_key_file=None, access_key_id=CLIENT_KEY_ID, private_key=pem)
        refused("Encrypt signed with the wrong key", "Encrypt",
                lambda: client.encrypt(m.EncryptRequest(key_id=KEY_ID, plaintext=b"x")), "SignatureNotMatch", 401)
        unknown = new_client(client_key_file=None, access_key_id="KAAP.00000000-0000-0000-0000-000000000000",
                             private_key=pem)
        refused("a ClientKey id kmsim never issued: InvalidAccessKeyId.NotFound with status 404", "Encrypt",
                lambda: unknown.encrypt(m.EncryptRequest(key_id=KEY_ID, plaintext=b"x")),
                "InvalidAccessKeyId.NotFound", 404, access_key_id="KAAP.00000000-0000-0000-0000-000000000000")


def tls():
    # First: the SDK's HTTP sessions keep connections, and one made trusting the CA would be reused.
    @report.section("without kmsim's CA the SDK refuses the server's certificate")
    def _():
        client = new_client(protocol="https")
        try:
            # No retries: a network error would otherwise be retried twice, a second apart.
            client.encrypt_with_options(m.EncryptRequest(key_id=KEY_ID, plaintext=b"x"),
                                        RuntimeOptions(autoretry=False))
        except Exception as error:
            check("the connection fails on certificate verification", "CERTIFICATE_VERIFY_FAILED" in str(error)
                  or "certificate verify failed" in str(error), error=str(error)[:500])
            return
        check("the connection fails on certificate verification", False, error="it succeeded")

    @report.section("over TLS, trusting kmsim's CA: Encrypt and Decrypt")
    def _():
        client = new_client(protocol="https", ca_file_path=setting("CA_FILE"))
        sealed = call("Encrypt", lambda: client.encrypt(m.EncryptRequest(key_id=KEY_ID, plaintext=b"over tls")))
        opened = call("Decrypt", lambda: client.decrypt(m.DecryptRequest(
            key_id=KEY_ID, ciphertext_blob=sealed.ciphertext_blob, iv=sealed.iv)))
        equal("the plaintext comes back", opened.plaintext, b"over tls")


scenario.main(report, {"calls": calls, "refusals": refusals, "tls": tls})
