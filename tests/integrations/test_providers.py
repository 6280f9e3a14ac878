"""Provider webhooks: each authenticated its own way before anything is parsed, each landing in
the same store-first path as raw posts. Payloads are the providers' samples (fixtures/); Amazon's
certificate fetch is replayed from a fixture (a stand-in certificate: SNS's key is Amazon's)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.test import Client

from integrations import actions
from integrations.amazon_ses import sns
from integrations.models import InboundEmail, SeenWebhookToken

FIXTURES = Path(__file__).parent / "fixtures"
BASIC = "anymail-user:anymail-secret-0123456789"
MAILGUN_KEY = "mailgun-test-signing-key-0123456789"
TOPIC = "arn:aws:sns:us-east-1:111111111111:SES_Inbound"


def _fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_source", None)
    return dict(data)


def _basic_auth(credentials: str = BASIC) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture(autouse=True)
def _provider_settings(settings: Any) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.TIDINGS_SES_TOPIC_ARNS = [TOPIC]


# --- Mailgun ----------------------------------------------------------------------------------


def _mailgun_signed(fields: dict[str, Any], *, age: int = 0, token: str = "") -> dict[str, Any]:
    token = token or secrets.token_hex(25)
    timestamp = str(int(time.time()) - age)
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {**fields, "token": token, "timestamp": timestamp, "signature": signature.hexdigest()}


@pytest.mark.parametrize("fixture", ["mailgun_inbound_mime.json", "mailgun_inbound_parsed.json"])
def test_mailgun_posts_are_stored_once_then_processed(db: Any, fixture: str) -> None:
    payload = _mailgun_signed(_fixture(fixture))
    response = Client().post("/integrations/email/inbound/mailgun/", payload, **_basic_auth())
    assert response.status_code == 200, response.content
    [answer] = response.json()["messages"]
    inbound = InboundEmail.objects.get(pk=answer["id"])
    assert inbound.provider == "mailgun" and inbound.provider_id == payload["token"]
    assert inbound.status == "queued"
    done = actions.process_inbound_email(inbound_id=inbound.pk)
    assert done is not None and done.status == "unmatched"  # nobody at example.org is a contact
    assert done.subject in ("Raw MIME test", "Test subject")


def test_mailgun_bad_signature_stale_timestamp_and_replay_are_refused(db: Any) -> None:
    fields = _fixture("mailgun_inbound_mime.json")
    url = "/integrations/email/inbound/mailgun/"
    client, auth = Client(), _basic_auth()
    forged = {**_mailgun_signed(fields), "signature": "0" * 64}
    assert client.post(url, forged, **auth).status_code == 403
    stale = _mailgun_signed(fields, age=3600)
    assert client.post(url, stale, **auth).status_code == 403
    good = _mailgun_signed(fields)
    assert client.post(url, good).status_code == 403  # without the URL's basic auth
    assert client.post(url, good, **auth).status_code == 200
    # The same signed token with another body: the signature does not cover the body.
    replay = {**good, "body-mime": good["body-mime"].replace("Raw MIME test", "Pay me")}
    assert client.post(url, replay, **auth).status_code == 403
    assert InboundEmail.objects.count() == 1
    assert SeenWebhookToken.objects.filter(token=good["token"]).count() == 1


def test_mailgun_without_a_signing_key_refuses_everything(db: Any, settings: Any) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC}
    payload = _mailgun_signed(_fixture("mailgun_inbound_mime.json"))
    response = Client().post("/integrations/email/inbound/mailgun/", payload, **_basic_auth())
    assert response.status_code == 403


# --- Postmark and SendGrid (basic auth) -------------------------------------------------------


def test_postmark_posts_are_stored_with_postmarks_message_id(db: Any) -> None:
    payload = json.dumps(_fixture("postmark_inbound.json"))
    url = "/integrations/email/inbound/postmark/"
    unauthenticated = Client().post(url, payload, content_type="application/json")
    wrong = Client().post(
        url, payload, content_type="application/json", **_basic_auth("anymail-user:wrong")
    )
    assert unauthenticated.status_code == wrong.status_code == 403
    response = Client().post(url, payload, content_type="application/json", **_basic_auth())
    assert response.status_code == 200, response.content
    inbound = InboundEmail.objects.get()
    assert inbound.provider == "postmark"
    assert inbound.provider_id == "73e6d360-66eb-11e1-8e72-a8904824019b"
    # Postmark retries: the same post again is the same row.
    again = Client().post(url, payload, content_type="application/json", **_basic_auth())
    assert again.json()["messages"][0] == {"id": inbound.pk, "status": "duplicate"}
    done = actions.process_inbound_email(inbound_id=inbound.pk)
    assert done is not None and done.subject == "Test subject"


def test_sendgrid_raw_posts_are_stored_and_unauthenticated_ones_refused(db: Any) -> None:
    url = "/integrations/email/inbound/sendgrid/"
    fields = _fixture("sendgrid_inbound_raw.json")
    assert Client().post(url, fields).status_code == 403
    response = Client().post(url, fields, **_basic_auth())
    assert response.status_code == 200, response.content
    inbound = InboundEmail.objects.get()
    assert inbound.provider == "sendgrid" and inbound.message_id == "CAEPk3RKEx@mail.example.org"


def test_basic_auth_providers_refuse_everything_without_a_configured_secret(
    db: Any, settings: Any
) -> None:
    settings.ANYMAIL = {}
    payload = json.dumps(_fixture("postmark_inbound.json"))
    response = Client().post(
        "/integrations/email/inbound/postmark/",
        payload,
        content_type="application/json",
        **_basic_auth(),
    )
    assert response.status_code == 403
    assert not InboundEmail.objects.exists()


def test_the_same_message_through_two_providers_is_stored_once(db: Any) -> None:
    mime = _fixture("sendgrid_inbound_raw.json")
    Client().post("/integrations/email/inbound/sendgrid/", mime, **_basic_auth())
    mailgun = _mailgun_signed({**_fixture("mailgun_inbound_mime.json")})
    answer = Client().post("/integrations/email/inbound/mailgun/", mailgun, **_basic_auth()).json()
    assert answer["messages"][0]["status"] == "duplicate"
    assert InboundEmail.objects.count() == 1


# --- Amazon SES through SNS -------------------------------------------------------------------


class _CertificateResponse:
    """The replayed answer of the certificate URL (requests.Response's used surface)."""

    status_code = 200
    content = (FIXTURES / "sns-test-certificate.pem").read_bytes()


@pytest.fixture
def sns_certificate(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replay the HTTPS fetch of SigningCertURL; returns the URLs that were fetched."""
    fetched: list[str] = []

    def get(url: str, **kwargs: Any) -> _CertificateResponse:
        fetched.append(url)
        return _CertificateResponse()

    monkeypatch.setattr(sns.requests, "get", get)
    monkeypatch.setattr(sns, "_certificates", {})
    return fetched


def _sns_signed(message: dict[str, Any]) -> dict[str, Any]:
    key = serialization.load_pem_private_key(
        (FIXTURES / "sns-test-key.pem").read_bytes(), password=None
    )
    message = {**message, "Timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")}
    digest = hashes.SHA1() if message.get("SignatureVersion") == "1" else hashes.SHA256()  # noqa: S303
    signature = key.sign(sns.string_to_sign(message), padding.PKCS1v15(), digest)  # type: ignore[union-attr,call-arg]
    return {**message, "Signature": base64.b64encode(signature).decode()}


def _post_sns(message: dict[str, Any]) -> Any:
    return Client().post(
        "/integrations/email/inbound/amazon-ses/",
        json.dumps(message),
        content_type="text/plain; charset=UTF-8",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE=message["Type"],
        HTTP_X_AMZ_SNS_MESSAGE_ID=message["MessageId"],
        **_basic_auth(),
    )


def test_ses_notifications_signed_by_sns_are_stored(db: Any, sns_certificate: list[str]) -> None:
    response = _post_sns(_sns_signed(_fixture("amazon_ses_inbound_sns.json")))
    assert response.status_code == 200, response.content
    inbound = InboundEmail.objects.get()
    assert inbound.provider == "amazon_ses"
    assert inbound.provider_id == "jili9m351il3gkburn7o2f0u6788stij94c8ld01"
    assert inbound.message_id == "CAEPk3RKsi@mail.example.org"
    assert sns_certificate == [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-12345abcde.pem"
    ]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: {**m, "Signature": "EXAMPLE_SIGNATURE=="}, id="sample signature"),
        pytest.param(lambda m: {**m, "Message": m["Message"].replace("Test", "Evil")}, id="body"),
        pytest.param(
            lambda m: {**m, "SigningCertURL": "https://evil.example/cert.pem"}, id="cert host"
        ),
        pytest.param(
            lambda m: {**m, "SigningCertURL": "http://sns.us-east-1.amazonaws.com/c.pem"},
            id="plain http",
        ),
        pytest.param(lambda m: {**m, "Timestamp": "2018-03-30T17:17:36.516Z"}, id="stale"),
    ],
)
def test_ses_notifications_not_signed_by_sns_are_refused(
    db: Any, sns_certificate: list[str], tamper: Any
) -> None:
    response = _post_sns(tamper(_sns_signed(_fixture("amazon_ses_inbound_sns.json"))))
    assert response.status_code == 403
    assert not InboundEmail.objects.exists()


def test_ses_notifications_from_another_topic_are_refused(
    db: Any, sns_certificate: list[str]
) -> None:
    other = {**_fixture("amazon_ses_inbound_sns.json"), "TopicArn": TOPIC.replace("SES", "X")}
    response = _post_sns(_sns_signed(other))
    assert response.status_code == 403
    assert not sns_certificate  # refused before any network use
    assert not InboundEmail.objects.exists()


def test_a_post_that_is_not_sns_json_is_a_400_not_a_500(db: Any) -> None:
    response = Client().post(
        "/integrations/email/inbound/amazon-ses/",
        "{not json",
        content_type="text/plain",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        **_basic_auth(),
    )
    assert response.status_code == 400


def test_ses_without_credentials_gets_the_401_challenge_sns_needs(db: Any) -> None:
    message = _fixture("amazon_ses_inbound_sns.json")
    response = Client().post(
        "/integrations/email/inbound/amazon-ses/",
        json.dumps(message),
        content_type="text/plain",
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        HTTP_X_AMZ_SNS_MESSAGE_ID=message["MessageId"],
    )
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert not InboundEmail.objects.exists()
