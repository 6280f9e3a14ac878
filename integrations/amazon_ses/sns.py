"""Amazon SNS message signatures, which django-anymail does not check.

Anyone can post JSON shaped like an SNS notification; only Amazon holds the key of the
certificate named in it. The certificate must come from an SNS host over HTTPS, the signature
must match the documented string to sign, the message must be recent, and its topic must be
one of ours (anyone can create an SNS topic and subscribe our URL to it).
See https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import threading
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

CERT_URL = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[A-Za-z0-9_./-]+\.pem$")
SIGNED_FIELDS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ],
    "UnsubscribeConfirmation": [
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ],
}  # fmt: skip
# SNS retries for up to an hour by default; older messages are refused as replays.
MAX_AGE = dt.timedelta(hours=1)
FETCH_TIMEOUT_SECONDS = 5

_certificates: dict[str, x509.Certificate] = {}
_lock = threading.Lock()


class InvalidSnsMessage(Exception):
    pass


def fetch_certificate(url: str) -> x509.Certificate:
    """The signing certificate at `url`, fetched once per process (SNS rotates it rarely)."""
    with _lock:
        cached = _certificates.get(url)
    if cached is not None:
        return cached
    response = requests.get(url, timeout=FETCH_TIMEOUT_SECONDS, allow_redirects=False)
    if response.status_code != 200:
        raise InvalidSnsMessage(f"certificate fetch answered {response.status_code}")
    certificate = x509.load_pem_x509_certificate(response.content)
    with _lock:
        _certificates[url] = certificate
    return certificate


def string_to_sign(message: dict[str, Any]) -> bytes:
    fields = SIGNED_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise InvalidSnsMessage("unknown message type")
    return "".join(f"{f}\n{message[f]}\n" for f in fields if f in message).encode()


def verify(message: dict[str, Any], *, topics: list[str], now: dt.datetime) -> None:
    """Raise InvalidSnsMessage unless `message` is signed by SNS, recent and from `topics`."""
    if message.get("TopicArn") not in topics:
        raise InvalidSnsMessage("topic is not one of TIDINGS_SES_TOPIC_ARNS")
    url = str(message.get("SigningCertURL", ""))
    if not CERT_URL.match(url):
        raise InvalidSnsMessage("signing certificate is not on an SNS host")
    # Version 1 is SHA1 because SNS signs that way, not by our choice; version 2 is SHA256.
    versions = {"1": hashes.SHA1(), "2": hashes.SHA256()}  # noqa: S303 - SNS's own scheme
    algorithm = versions.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise InvalidSnsMessage("unknown signature version")
    try:
        sent = dt.datetime.fromisoformat(str(message.get("Timestamp")).replace("Z", "+00:00"))
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except ValueError:
        raise InvalidSnsMessage("unreadable timestamp or signature") from None
    if abs(now - sent) > MAX_AGE:
        raise InvalidSnsMessage("message is too old")
    try:
        key = fetch_certificate(url).public_key()
    except (requests.RequestException, ValueError) as error:
        raise InvalidSnsMessage(f"certificate unavailable ({type(error).__name__})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidSnsMessage("certificate key is not RSA")
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise InvalidSnsMessage("signature does not match") from None
