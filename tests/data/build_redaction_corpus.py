"""Writes redaction_corpus.jsonl: secrets and personal data that must be redacted (positives),
and look-alikes that must survive unchanged (negatives).

    python tests/data/build_redaction_corpus.py

Each positive is ``{"text", "kind", "secret"}``: after redaction ``secret`` must be gone and
``kind`` counted. Each negative is ``{"text"}``: redaction must return it unchanged with no
counts. Every credential here is fake (documentation examples or random-looking filler).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).with_name("redaction_corpus.jsonl")

AKIA = "AKIAIOSFODNN7EXAMPLE"
ASIA = "ASIAY34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
GHP = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
SLACK = "xoxb-2345678901-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
GCP_KEY = "AIzaSyA-1234567890abcdefghijklmnopqrstu"
GCP_TOKEN = "ya29.a0AfH6SMBx3ZrK9Qp2vL8mN4tY7wE1cR5uI0oP"
AZURE = "abc8Q~dEfGhIjKlMnOpQrStUvWxYz0123456789_"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAvXz\nQ2xh\n-----END RSA PRIVATE KEY-----"
CARDS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4012888888881881",
    "5105105105105100",
    "4242424242424242",
    "2223003122003222",
    "6200000000000005",
    "3566002020360505",
]


def grouped(card: str, sep: str) -> str:
    if len(card) == 15:
        return sep.join((card[:4], card[4:10], card[10:]))
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4))


def positives() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []

    def add(text: str, kind: str, secret: str) -> None:
        out.append((text, kind, secret))

    for key, kind in ((AKIA, "aws_access_key"), (ASIA, "aws_access_key")):
        add(key, kind, key)
        add(f"using key {key} for s3", kind, key)
        add(f'{{"AccessKeyId": "{key}"}}', kind, key)
    for prefix in ("AGPA", "AIDA", "AROA", "ANPA"):
        key = prefix + "QWERTYUIOPASDFGH"
        add(f"principal {key} denied", "aws_access_key", key)
    add(f"{AKIA},{AWS_SECRET}", "aws_credentials", AWS_SECRET)
    add(f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "secret", AWS_SECRET)
    add(f"aws_secret_access_key = {AWS_SECRET}", "secret", AWS_SECRET)
    add(f'{{"SecretAccessKey": "{AWS_SECRET}"}}', "secret", AWS_SECRET)
    add(f"export AWS_SESSION_TOKEN='{AWS_SECRET}xyz'", "secret", AWS_SECRET)
    add(f"Authorization: Bearer {JWT}", "bearer_token", JWT)
    add(f"token {JWT} expired", "jwt", JWT)
    add(f'{{"id_token":"{JWT}"}}', "secret", JWT)
    add(JWT, "jwt", JWT)
    add("authorization: bearer abcdef123456.xyz", "bearer_token", "abcdef123456.xyz")
    add("Bearer ZXhhbXBsZXRva2VuZXhhbXBsZQ", "bearer_token", "ZXhhbXBsZXRva2VuZXhhbXBsZQ")
    add("Authorization: Basic dXNlcjpwYXNzd29yZA==", "basic_auth", "dXNlcjpwYXNzd29yZA==")
    add(f"github token {GHP}", "github_token", GHP)
    add("gho_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "github_token", "gho_")
    pat = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
    add(f"GH_TOKEN is {pat}", "github_token", pat)
    add(f"slack {SLACK}", "slack_token", SLACK)
    add("xoxp-1111111111-2222222222-abcdefabcdef", "slack_token", "xoxp-1111111111")
    hook = "hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    add(f"posting to https://{hook}", "slack_webhook", "T00000000/B00000000")
    add(f"gcp key {GCP_KEY}", "gcp_api_key", GCP_KEY)
    add(f"access {GCP_TOKEN}", "gcp_token", GCP_TOKEN)
    add(f"client secret {AZURE} ok", "azure_secret", AZURE)
    add("AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
        "secret", "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq")  # fmt: skip
    add("https://acct.blob.core.windows.net/c?sv=2022-11-02&sig=AbCdEf0123456789%2BghIjK%3D&se=x",
        "secret", "AbCdEf0123456789%2BghIjK%3D")  # fmt: skip
    add("sk-" + "a" * 40, "api_key", "a" * 40)
    add("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key", "4eC39HqLyjWDarjtT1zdp7dc")
    add("openai sk-proj-AbCdEf0123456789GhIjKl", "api_key", "AbCdEf0123456789GhIjKl")
    add("token vgl_0123456789ab_" + "A" * 43, "api_key", "A" * 43)
    add(PEM, "private_key", "MIIEowIBAAKCAQEAvXz")
    add(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
        "private_key",
        "MIIEvQIBADANBg",
    )
    add(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
        "private_key",
        "b3BlbnNzaC1rZXktdjEAAAAA",
    )
    add("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----", "private_key", "MHcCAQEE")
    # passwords and secrets by name
    for text, secret in (
        ("password=hunter2", "hunter2"),
        ("PASSWORD: correct-horse-battery", "correct-horse-battery"),
        ("db_password = 's3cr3t pass'", "s3cr3t pass"),
        ('{"password": "p@ssw0rd!"}', "p@ssw0rd!"),
        ('{"user": "bob", "passwd":"letmein123"}', "letmein123"),
        ("login user=admin pwd=Tr0ub4dor&3", "Tr0ub4dor"),
        ("client_secret=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("api_key: 0123456789abcdef0123", "0123456789abcdef0123"),
        ("X-Api-Key: deadbeefcafebabe", "deadbeefcafebabe"),
        ('"apiKey": "live_abcdef123456"', "live_abcdef123456"),
        ("refresh_token=rt.abc.def.ghi", "rt.abc.def.ghi"),
        ("secret=topsecretvalue", "topsecretvalue"),
        ("passphrase: 'many words here'", "many words here"),
        ("?access_token=abc123def456&x=1", "abc123def456"),
        ("credentials = hunter2hunter2", "hunter2hunter2"),
        ("private_key: MIIBVwIBADANBgkq", "MIIBVwIBADANBgkq"),
        ("SMTP_PASSWORD=mailpass99", "mailpass99"),
        ("redis_auth_token=r3d1s-t0k3n", "r3d1s-t0k3n"),
    ):
        add(text, "secret", secret)
    for text, secret in (
        ("postgresql://vigil:s3cret@db:5432/vigil", "s3cret"),
        ("redis://:r3dispass@cache:6379/0", "r3dispass"),
        ("https://user:hunter2@example.com/path", "hunter2"),
        ("amqp://guest:guest-pass@rabbit/", "guest-pass"),
        ("dsn mysql://root:rootpw@10.0.0.9/app", "rootpw"),
    ):
        add(text, "password", secret)
    for card in CARDS:
        add(f"card {card}", "card", card)
    for i, sep in enumerate((" ", "-", ".", "_", "/")):
        for card in CARDS[i * 2 : i * 2 + 2]:
            shown = grouped(card, sep)
            add(f"paid with {shown}.", "card", shown)
    add("cc=4111 1111 1111 1111", "card", "4111 1111 1111 1111")
    for email in (
        "alice@example.com",
        "a.b+tag@sub.example.co.uk",
        "bob_smith99@mail.example.org",
        "x@y.io",
        "first.last@company-name.com",
        "UPPER@EXAMPLE.COM",
    ):
        add(f"contact {email} today", "email", email)
    add('{"owner": "carol@example.net"}', "email", "carol@example.net")
    add("mailto:dave@example.com", "email", "dave@example.com")
    for phone in (
        "+1 415-555-0132",
        "+1 (415) 555-0132",
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "020 7946 0958",
        "+44 20 7946 0958",
        "+14155550132",
        "+33 1 23 45 67 89",
        "01 23 45 67 89",
        "+49 30 901820",
        "+91 98765 43210",
    ):
        add(f"call {phone} now", "phone", phone)
    for ip in ("192.168.1.20", "8.8.8.8", "10.20.30.40", "2001:db8::1", "fe80::1%eth0"):
        add(f"from {ip} port", "ipv6" if ":" in ip else "ipv4", ip)
    return out


def negatives() -> list[str]:
    out = [
        # numbers as programs print them
        "1e9",
        "1000000000.0",
        "limit 1e9 exceeded: got 1000000000.0",
        "value 1.5e-7 and 6.02e23",
        "12345678901234567890",
        "-4111111111111111",
        "ratio 0.4111111111111111",
        "pi 3.141592653589793",
        "count 1234567890",
        "bytes 4294967296",
        "max 9223372036854775807",
        "total 1,234,567,890",
        "10 000 000 requests",
        "order 12345",
        "card 4111 1111 1111 1112",
        "4111111111111112",
        "a 16-digit id 1234567812345678",
        # versions
        "version 1.2.3",
        "v2.14.0-rc.1",
        "python 3.11.9",
        "grpcio==1.62.1",
        "release 2024.05.01",
        "10.0",
        "1.2.3.4.5.6",
        "build 20240501.1234",
        # timestamps and dates
        "1700000000",
        "1700000000.123456",
        "ts=1700000000123",
        "1700000000123456789",
        "2024-05-01T12:30:45.123Z",
        "2024-05-01 12:30:45+02:00",
        "at 12:30:45 on 2024-05-01",
        "Wed, 02 Dec 2026 15:16:57 GMT",
        "20240501T123045Z",
        "date 01/05/2024",
        "2024-05-01",
        # ids
        "123e4567-e89b-12d3-a456-426614174000",
        "550e8400-e29b-41d4-a716-446655440000",
        "run 4f9c2b7e8a1d4c3b9e0f1a2b3c4d5e6f",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "commit 1dd6869a3b2c",
        "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
        "audit chain head seq=42 hash=ab12cd34",
        "request_id=7f3e2a",
        # addresses and ports
        "listening on 127.0.0.1:50052 and [::1]:50052 and 0.0.0.0",
        "port 50051",
        "localhost:8050",
        "::1",
        "999.999.999.999",
        "mask 255.255.255.0",
        # durations, sizes, ratios
        "took 1500ms",
        "timeout 2.5s",
        "backoff 0.05s..0.5s",
        "ratio 3:2",
        "12:30",
        "4 MiB (4194304 bytes)",
        "p99 12.3 ms",
        "size 1024x768",
        "+5%",
        "temperature -12.5",
        # prose with trigger words
        "plain text with no secrets",
        "the bearer instrument is payable",
        "bearer of bad news",
        "a basic example of basic auth",
        "reset your password in settings",
        "password_file: /run/secrets/db",
        "token_count: 512",
        "max_tokens=4096",
        "the tokens were counted",
        "secret santa party",
        "password: null",
        "token: ${VIGIL_TOKEN}",
        '"password_min_length": 12',
        "api_key_id: k1",
        "skipping task-runner-for-the-nightly-build",
        "risk-assessment-for-the-next-quarter",
        "use the sk-learn style",
        "AKIA is a prefix",
        "eyJ alone",
        "ghp_short",
        "xoxb-",
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "user@",
        "@mention in chat",
        "name at example dot com",
        "https://example.com/path?q=1",
        "https://example.com:8443/",
        "+5 10",
        "file:///tmp/x",
        "C:\\Users\\me",
        "x=1, y=2",
        "key=value",
        "signature_algorithm: RS256",
        "hash: sha256",
        "phone: unknown",
        "ext. 1234",
        "ISBN 978-3-16-148410-0",
        "room 101-202",
        "2x3-4x5",
        "HTTP/1.1 200 OK",
        "exit code 137",
        "0x7fffffff",
        "#ff8800",
        "SIGTERM (15)",
        "1 2 3 4 5 6 7 8 9 10",
    ]
    return out


def main() -> None:
    lines = [json.dumps({"text": t, "kind": k, "secret": s}) for t, k, s in positives()]
    lines += [json.dumps({"text": t}) for t in negatives()]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(positives())} positives, {len(negatives())} negatives -> {OUT}")


if __name__ == "__main__":
    main()
