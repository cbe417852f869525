"""Checks made outside kmsim, with the `cryptography` package (pyca), never with kmsim's own answers.

A signature kmsim made is verified here against the public key GetPublicKey returned; data kmsim must decrypt
is encrypted here under that public key; a data key kmsim exports is unwrapped here with a private key that
never left this process.
"""

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text, validate=True)


def sha256_digest(message):
    """The SHA-256 digest of `message`, as AsymmetricSign's Digest parameter takes it (base64)."""
    return b64(hashlib.sha256(message).digest())


def public_key(pem):
    return serialization.load_pem_public_key(pem.encode("ascii"))


def rsa_bits(pem):
    key = public_key(pem)
    return key.key_size if isinstance(key, rsa.RSAPublicKey) else None


def ec_curve(pem):
    key = public_key(pem)
    return key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else None


def verifies(pem, algorithm, message, signature_b64):
    """Whether `signature_b64` is a valid `algorithm` signature of SHA-256(`message`) under the PEM key.

    RSA_PSS_SHA_256 uses MGF1-SHA-256 with a salt as long as the digest (32 bytes), as Alibaba documents it.
    ECDSA_SHA_256 signatures are DER (SEQUENCE of r and s).
    """
    key = public_key(pem)
    digest = hashlib.sha256(message).digest()
    signature = unb64(signature_b64)
    prehashed = Prehashed(hashes.SHA256())
    try:
        if algorithm == "RSA_PSS_SHA_256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
            key.verify(signature, digest, pss, prehashed)
        elif algorithm == "RSA_PKCS1_SHA_256":
            key.verify(signature, digest, padding.PKCS1v15(), prehashed)
        elif algorithm == "ECDSA_SHA_256":
            key.verify(signature, digest, ec.ECDSA(prehashed))
        else:
            raise ValueError("no independent check for " + algorithm)
        return True
    except InvalidSignature:
        return False


def oaep_sha256():
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def oaep_encrypt(pem, plaintext):
    """RSAES-OAEP with SHA-256 and MGF1-SHA-256 under the PEM key; base64."""
    return b64(public_key(pem).encrypt(plaintext, oaep_sha256()))


class WrappingKeyPair:
    """An RSA-2048 key pair made here, whose public half kmsim wraps exported data keys under."""

    def __init__(self):
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_der_b64 = b64(der)
        self.public_pem = (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def unwrap(self, exported_b64):
        """Opens an RSAES_OAEP_SHA_256 export with the private key that never left this process."""
        return self.private.decrypt(unb64(exported_b64), oaep_sha256())
