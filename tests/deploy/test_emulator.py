"""The embedded emulator's one change to moto: a Query reads its partition only, same answers."""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.emulator import patch_moto
from infra.tables import create_table


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    from moto import mock_aws

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "t")
        rng = random.Random(5)
        items = {}
        for _ in range(1500):
            pk, sk = f"b#r{rng.randrange(6)}", f"{rng.randrange(10_000):05d}#s{rng.randrange(3)}"
            items[(pk, sk)] = {
                "pk": {"S": pk},
                "sk": {"S": sk},
                "v": {"N": str(rng.randrange(100))},
                "pad": {"S": "x" * rng.randrange(2000)},
            }
        values = list(items.values())
        for i in range(0, len(values), 25):
            requests = [{"PutRequest": {"Item": item}} for item in values[i : i + 25]]
            client.batch_write_item(RequestItems={"t": requests})
        yield client, "t"


CONDITIONS = [
    "sk BETWEEN :low AND :high",
    "sk < :low",
    "sk <= :low",
    "sk > :low",
    "sk >= :low",
    "sk = :low",
    "begins_with(sk, :low)",
]


def queries() -> Iterator[dict[str, Any]]:
    rng = random.Random(9)
    for number in range(80):
        low = f"{rng.randrange(10_000):05d}"
        high = f"{rng.randrange(int(low), 10_001):05d}"
        condition = CONDITIONS[number % len(CONDITIONS)]
        if condition.startswith("begins_with"):
            low = low[: rng.randrange(1, 4)]
        elif condition == "sk = :low":
            low = f"{low}#s{rng.randrange(3)}"
        values = {":pk": {"S": f"b#r{rng.randrange(7)}"}, ":low": {"S": low}}  # r6 has no items
        if ":high" in condition:
            values[":high"] = {"S": high}
        query: dict[str, Any] = {
            "KeyConditionExpression": f"pk = :pk AND {condition}",
            "ExpressionAttributeValues": values,
            "ScanIndexForward": rng.random() < 0.5,
        }
        if rng.random() < 0.5:
            query["Limit"] = rng.randrange(1, 50)
        if rng.random() < 0.3:
            query["FilterExpression"] = "v > :v"
            query["ExpressionAttributeValues"][":v"] = {"N": "50"}
        yield query
    whole = {":pk": {"S": "b#r1"}}
    yield {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": whole}
    yield {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": whole, "Limit": 7}


def pages(client: Any, table: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the query, with its counts and where it stopped."""
    answers = []
    kwargs = {"TableName": table, **query}
    while True:
        answer = client.query(**kwargs)
        answers.append(
            {k: answer.get(k) for k in ("Items", "Count", "ScannedCount", "LastEvaluatedKey")}
        )
        if "LastEvaluatedKey" not in answer:
            return answers
        kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def test_a_patched_query_answers_exactly_what_moto_answers(
    table: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    client, name = table
    assert not getattr(Table.query, "partition_only", False), "moto is patched already"
    plain = [pages(client, name, q) for q in queries()]
    plain_scan = client.scan(TableName=name, Select="COUNT")["Count"]
    whole_table_sorts: list[int] = []
    original = Table.all_items

    def counting(self: Any) -> Any:
        whole_table_sorts.append(1)
        return original(self)

    monkeypatch.setattr(Table, "all_items", counting)
    undo = patch_moto()
    try:
        patched = [pages(client, name, q) for q in queries()]
        assert whole_table_sorts == [], "a base-table Query still sorted the whole table"
        scan = client.scan(TableName=name, Select="COUNT")["Count"]
        assert whole_table_sorts, "a scan must still see the whole table"
        # Writes and deletes after the partitions' sorted keys were built keep them in step
        change(client, name)
        patched_after = [pages(client, name, q) for q in queries()]
    finally:
        undo()
    assert Table.all_items is counting
    assert patched == plain
    assert any(len(p) > 1 for p in plain), "no query paged: the test data is too small"
    assert scan == plain_scan
    assert patched_after == [pages(client, name, q) for q in queries()]
    assert patched_after != patched, "the changes changed no answer"


def change(client: Any, table: str) -> None:
    """New items, overwritten items and deleted items, one by one and in batches."""
    rng = random.Random(11)
    keys = [
        (i["pk"]["S"], i["sk"]["S"])
        for i in client.scan(TableName=table, ProjectionExpression="pk, sk")["Items"]
    ]
    for number in range(300):
        pk, sk = rng.choice(keys)
        if number % 3 == 0:  # a new key
            sk = f"{rng.randrange(10_000):05d}#s{rng.randrange(3, 6)}"
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "v": {"N": str(rng.randrange(100))}}
        if number % 2:
            client.put_item(TableName=table, Item=item)
        else:
            client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}}]})
    for number, (pk, sk) in enumerate(rng.sample(keys, 200)):
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        if number % 2:
            client.delete_item(TableName=table, Key=key)
        else:
            client.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": key}}]})


def test_writes_made_while_unpatched_are_seen_after_patching_again(
    table: tuple[Any, str],
) -> None:
    client, name = table
    query = {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "b#r1"}},
    }
    undo = patch_moto()
    try:
        before = pages(client, name, query)  # the partition's sorted keys are built
    finally:
        undo()
    # Unpatched: one item replaced by another, the partition's size unchanged
    gone = before[0]["Items"][0]
    client.delete_item(TableName=name, Key={"pk": gone["pk"], "sk": gone["sk"]})
    new = {"pk": {"S": "b#r1"}, "sk": {"S": "99999#new"}, "v": {"N": "1"}}
    client.put_item(TableName=name, Item=new)
    plain = pages(client, name, query)
    undo = patch_moto()
    try:
        assert pages(client, name, query) == plain
    finally:
        undo()
    assert new in plain[-1]["Items"] and gone not in plain[0]["Items"]


def _live_items() -> int:
    from moto.dynamodb.models.dynamo_type import Item

    gc.collect()
    return sum(type(o) is Item for o in gc.get_objects())


@pytest.mark.parametrize("patched", [True, False])
def test_items_overwritten_or_answered_are_freed_once_patched(
    table: tuple[Any, str], patched: bool
) -> None:
    client, name = table
    query = {
        "TableName": name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "b#r1"}},
    }
    undo = patch_moto() if patched else (lambda: None)
    try:
        before = _live_items()
        # When: one item is overwritten 100 times and its partition read 20 times
        for value in range(100):
            item = {"pk": {"S": "b#r1"}, "sk": {"S": "00000#hot"}, "v": {"N": str(value)}}
            client.put_item(TableName=name, Item=item)
        answered = sum(client.query(**query)["Count"] for _ in range(20))
        grown = _live_items() - before
    finally:
        undo()
    # Then: patched, only the one new item is kept; moto alone keeps every version and copy
    # (give or take an item an earlier test left for the collector)
    if patched:
        assert grown <= 1
    else:
        assert grown >= answered > 100
