"""The deployment's secrets, from AWS Secrets Manager (read once per process, under the retry
policy). The template generates each secret at deploy time; `make run` creates its own."""

from __future__ import annotations

from typing import Any

from chalicelib.aws.retry import Retrier


def secret_value(client: Any, secret_id: str) -> str:
    """The current value of the secret `secret_id` (name or ARN)."""
    answer = Retrier("the secret store").call(client.get_secret_value, SecretId=secret_id)
    return str(answer["SecretString"])
