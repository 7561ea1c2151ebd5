"""S3 in tests: clients of the moto server (``s3_endpoint`` fixture) with its fake credentials."""

from __future__ import annotations

from typing import Any

import boto3

FAKE_KEY_ID = FAKE_SECRET = "testing"


def s3_client(endpoint: str, key_id: str = FAKE_KEY_ID, secret: str = FAKE_SECRET) -> Any:
    """A boto3 S3 client of ``endpoint`` in us-east-1, with explicit credentials (never the machine's)."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret
    )
