"""The AWS Encryption SDK for Python (aws-encryption-sdk, with the Material Providers Library) against kmsim.

    python esdk.py envelope

Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_ACCESS_KEY_ID, KMSIM_ACCESS_KEY_SECRET, KMSIM_REGION.
Two ways a user points the Encryption SDK at a KMS that is not AWS's:

* a KMS keyring (aws-cryptographic-material-providers) given a boto3 KMS client made with `endpoint_url`;
* the classic StrictAwsKmsMasterKeyProvider, which makes its own botocore clients: pointed with the
  `AWS_ENDPOINT_URL_KMS` environment variable that botocore reads.

The Encryption SDK calls GenerateDataKey to encrypt and Decrypt to decrypt; those calls are logged from the wire
(aws_scenario.Wiretap), each as one call of the report. The message format is the SDK's own: kmsim only ever sees
data keys.
"""

import os
import sys

import boto3
import botocore

import aws_scenario
from aws_scenario import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ENDPOINT_URL, REGION, CheckFailed

tap = aws_scenario.Wiretap()
tap.install()

import aws_encryption_sdk  # noqa: E402
from aws_encryption_sdk import CommitmentPolicy  # noqa: E402
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders  # noqa: E402
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig  # noqa: E402
from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput  # noqa: E402

report = aws_scenario.Report(
    "aws-encryption-sdk %s (botocore %s)" % (aws_encryption_sdk.__version__, botocore.__version__),
    sys.argv[1] if len(sys.argv) > 1 else "",
    tap,
    aws_scenario.describe_client_error,
    aws_scenario.request_id_of,
)
check, equal = report.check, report.equal

MESSAGE = b"a message the Encryption SDK envelope-encrypts under a kmsim key " * 20
CONTEXT = {"purpose": "kmsim-esdk-test", "tenant": "a b/+="}

kms = boto3.session.Session(aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=ACCESS_KEY_SECRET,
                            region_name=REGION).client("kms", endpoint_url=ENDPOINT_URL)
esdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)


def k(operation, function):
    return report.call(operation, function)


def library_calls(doing, function):
    """Runs `function` (the Encryption SDK at work); logs the KMS calls it made from the wire. Returns
    (result, the actions it called, the exception it raised or None)."""
    report.doing = doing
    mark = tap.mark()
    raised = None
    result = None
    try:
        result = function()
    except Exception as error:  # the caller checks what was raised
        raised = error
    report.wire_calls(mark)
    return result, [(e["action"], e["status"], aws_scenario.error_code(e["code"])) for e in tap.since(mark)], raised


def succeeded(check_name, raised, actions):
    if raised is not None:
        raise CheckFailed(check_name, {"raised": "%s: %s" % (type(raised).__name__, str(raised)[:600]),
                                       "kms_calls": actions})
    check(check_name, True)


def keyring_for(arn):
    providers = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    return providers.create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(kms_key_id=arn, kms_client=kms))


def envelope():
    state = {}

    @report.section("a KMS keyring on a boto3 client with endpoint_url envelope-encrypts and decrypts a message")
    def _():
        meta = k("CreateKey", lambda: kms.create_key(Description="esdk"))["KeyMetadata"]
        state.update(key=meta["KeyId"], arn=meta["Arn"])
        keyring = keyring_for(meta["Arn"])
        result, actions, raised = library_calls(
            "encrypting with the keyring",
            lambda: esdk.encrypt(source=MESSAGE, keyring=keyring, encryption_context=CONTEXT))
        succeeded("the Encryption SDK encrypts with the keyring", raised, actions)
        ciphertext, header = result
        equal("encrypting called GenerateDataKey once, answered", actions, [("GenerateDataKey", 200, "")])
        check("the message is not the plaintext", MESSAGE not in ciphertext, size=len(ciphertext))
        edks = list(header.encrypted_data_keys)
        check("the message holds one encrypted data key from provider aws-kms naming the key ARN",
              len(edks) == 1 and edks[0].key_provider.provider_id == "aws-kms" and
              edks[0].key_provider.key_info.decode() == meta["Arn"],
              data_keys=[(e.key_provider.provider_id, e.key_provider.key_info) for e in edks])
        state["message"] = ciphertext
        result, actions, raised = library_calls(
            "decrypting with the keyring", lambda: esdk.decrypt(source=ciphertext, keyring=keyring))
        succeeded("the Encryption SDK decrypts with the keyring", raised, actions)
        plaintext, decrypted_header = result
        equal("decrypting called Decrypt once, answered", actions, [("Decrypt", 200, "")])
        equal("the message decrypts to the plaintext", plaintext, MESSAGE)
        check("the header carries the encryption context",
              all(decrypted_header.encryption_context.get(k) == v for k, v in CONTEXT.items()),
              context=decrypted_header.encryption_context)

    @report.section("the StrictAwsKmsMasterKeyProvider, pointed with AWS_ENDPOINT_URL_KMS, reads the same message")
    def _():
        if "message" not in state:
            raise CheckFailed("needs what an earlier section made", {"missing": ["message"]})
        os.environ.update(AWS_ENDPOINT_URL_KMS=ENDPOINT_URL, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
                          AWS_SECRET_ACCESS_KEY=ACCESS_KEY_SECRET, AWS_DEFAULT_REGION=REGION)
        provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[state["arn"]])
        result, actions, raised = library_calls(
            "decrypting with the master key provider", lambda: esdk.decrypt(source=state["message"],
                                                                            key_provider=provider))
        succeeded("the master key provider decrypts the keyring's message", raised, actions)
        plaintext, _header = result
        equal("it called Decrypt once, answered", actions, [("Decrypt", 200, "")])
        equal("the message decrypts to the plaintext", plaintext, MESSAGE)
        check("its User-Agent names the Encryption SDK",
              "AwsEncryptionSdkPython" in report.doc["calls"][-1]["wire"]["user_agent"],
              user_agent=report.doc["calls"][-1]["wire"]["user_agent"])
        result, actions, raised = library_calls(
            "encrypting with the master key provider",
            lambda: esdk.encrypt(source=b"by the provider", key_provider=provider))
        succeeded("the master key provider encrypts", raised, actions)
        ciphertext, _header = result
        equal("encrypting called GenerateDataKey once, answered", actions, [("GenerateDataKey", 200, "")])
        result, actions, raised = library_calls(
            "decrypting the provider's message with the keyring",
            lambda: esdk.decrypt(source=ciphertext, keyring=keyring_for(state["arn"])))
        succeeded("the keyring decrypts the provider's message", raised, actions)
        equal("it reads the provider's plaintext", result[0], b"by the provider")

    @report.section("once the KMS key is disabled the message cannot be decrypted: kmsim said DisabledException")
    def _():
        if "message" not in state:
            raise CheckFailed("needs what an earlier section made", {"missing": ["message"]})
        k("DisableKey", lambda: kms.disable_key(KeyId=state["key"]))
        _result, actions, raised = library_calls(
            "decrypting under a disabled key", lambda: esdk.decrypt(source=state["message"],
                                                                    keyring=keyring_for(state["arn"])))
        check("the Encryption SDK raises", raised is not None, kms_calls=actions)
        report.fact("the Encryption SDK raised", "%s: %s" % (type(raised).__name__, str(raised)[:300]))
        equal("its one Decrypt was refused with DisabledException (400)", actions,
              [("Decrypt", 400, "DisabledException")])


if __name__ == "__main__":
    aws_scenario.main(report, {"envelope": envelope})
