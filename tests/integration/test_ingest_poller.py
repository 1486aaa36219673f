"""The local poller feeds the app's own ingest handler and deletes only what it handled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.local import QueuePoller

if TYPE_CHECKING:
    from tests.ingest_fixtures import Aws

pytest_plugins = ["tests.ingest_fixtures"]

T0 = 1_735_689_600


def test_poller_stores_a_dropped_file_and_leaves_the_poison_message_for_retry(aws: Aws) -> None:
    # Given a file in incoming/ (its notification is on the queue) and a poison message
    aws.drop("incoming/acme/p.csv", f"building,room,timestamp,co2\nb1,r1,{T0},400\n".encode())
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="poison")
    poller = QueuePoller(aws.queue_url, wait_seconds=0)
    # When the poller runs once
    assert poller.poll_once() == 2
    # Then the file is stored and reported, and only the poison message is still in the queue
    assert aws.count() == 1
    assert aws.report("incoming/acme/p.csv")["status"] == "done"
    assert (poller.handled, poller.failed) == (1, 1)
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    total = int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
    assert total == 1
