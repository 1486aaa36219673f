"""The CloudFormation for everything Chalice does not create, generated from infra/table.json.

    python -m infra.template infra  --stage dev  > build/infra-dev.json    # standalone stack
    python -m infra.template merge  --stage dev  > build/merge-dev.json    # for chalice package
    python -m infra.template policies                                      # .chalice/policy-*.json
    python -m infra.template config                                  # .chalice/config.json
    python -m infra.template docs                       # the numbers table of docs/operations.md

`infra` is a complete template on its own (table, bucket, queues, DLQs, alarms, alarm topic): it is
what the moto CloudFormation test deploys. `merge` is the same plus the parts that change or refer
to Chalice's own resources (API stage throttling and name, function environment, SQS event sources);
it is fed to `chalice package --merge-template`, whose deep merge overlays Chalice's template.
The IAM policy files are generated from the same names, and every number (timeouts, memory,
visibility, redrive, throttling) comes from infra/operations.py, so the role, the template, the
Chalice config and the docs cannot disagree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra import operations
from infra.tables import table_definition

ROOT = Path(__file__).resolve().parent.parent
STAGES = tuple(operations.STAGES)
API_GATEWAY_STAGE = operations.API_GATEWAY_STAGE
INCOMING_PREFIX = "incoming/"
REPORTS_PREFIX = "reports/"
IMPORTS_PREFIX = "imports/"
UPLOADS_PREFIX = "uploads/"  # POST /imports tickets
BUCKET_PREFIXES = (INCOMING_PREFIX, IMPORTS_PREFIX, REPORTS_PREFIX, UPLOADS_PREFIX)
MAX_RECEIVE_COUNT = operations.MAX_RECEIVE_COUNT
resource_names = operations.resource_names
DOCS = ROOT / "docs" / "operations.md"
DOCS_BEGIN = "<!-- operations:begin (python -m infra.template docs) -->\n"
DOCS_END = "<!-- operations:end -->"

# The queue each SQS-triggered Chalice function is wired to, by the queue name in its decorator.
QUEUE_OF_DECORATOR = {
    "roomtemp-ingest": "IngestQueue",
    "roomtemp-reports": "ReportsQueue",
    "roomtemp-notify": "NotifyQueue",
}

Json = dict[str, Any]


def _sub(text: str) -> Json:
    return {"Fn::Sub": text}


def _ref(logical_id: str) -> Json:
    return {"Ref": logical_id}


def _arn(logical_id: str) -> Json:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _arn_of(logical_id: str, attribute: str) -> Json:
    return {"Fn::GetAtt": [logical_id, attribute]}


def table_resource(stage: str) -> Json:
    """The DynamoDB table, its keys and index copied from infra/table.json (the one definition)."""
    definition = table_definition()
    properties: Json = {
        "TableName": _sub(definition["TableName"] + "-${Stage}"),
        "AttributeDefinitions": definition["AttributeDefinitions"],
        "KeySchema": definition["KeySchema"],
        "BillingMode": definition.get("BillingMode", "PAY_PER_REQUEST"),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "DeletionProtectionEnabled": {"Fn::If": ["IsProd", True, False]},
    }
    if definition.get("StreamSpecification"):
        # CloudFormation takes the view type only (the stream is on when it is given).
        view = definition["StreamSpecification"]["StreamViewType"]
        properties["StreamSpecification"] = {"StreamViewType": view}
    if definition.get("GlobalSecondaryIndexes"):
        properties["GlobalSecondaryIndexes"] = definition["GlobalSecondaryIndexes"]
    if definition.get("TimeToLiveAttribute"):
        properties["TimeToLiveSpecification"] = {
            "AttributeName": definition["TimeToLiveAttribute"],
            "Enabled": True,
        }
    policy = "Retain" if stage == "prod" else "Delete"
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": policy,
        "UpdateReplacePolicy": policy,
        "Properties": properties,
    }


def _queue(name: str, *, visibility: int, dlq: str | None) -> Json:
    properties: Json = {
        "QueueName": _sub(name),
        "SqsManagedSseEnabled": True,  # SSE-SQS: S3 notifications cannot use the aws/sqs KMS key
        "MessageRetentionPeriod": 1_209_600 if dlq is None else 345_600,
        "VisibilityTimeout": visibility,
    }
    if dlq is not None:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": _arn(dlq),
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        }
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


def _alarm(description: str, namespace: str, metric: str, dimensions: Json, **extra: Any) -> Json:
    properties: Json = {
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Statistic": "Sum",
        "Period": 300,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [_ref("AlarmTopic")],
        "OKActions": [_ref("AlarmTopic")],
    }
    properties.update(extra)
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _bucket_resources() -> Json:
    tls_only = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [_arn("DataBucket"), _sub("${DataBucket.Arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {
        "DataBucket": {
            "Type": "AWS::S3::Bucket",
            "DependsOn": ["IngestQueuePolicy"],  # S3 tests the notification target on creation
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketName": _sub("roomtemp-data-${Stage}"),
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "ExpireOldVersionsAndUploads",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    ]
                },
                "NotificationConfiguration": {
                    "QueueConfigurations": [
                        {
                            "Event": "s3:ObjectCreated:*",
                            "Queue": _arn("IngestQueue"),
                            "Filter": {
                                "S3Key": {"Rules": [{"Name": "prefix", "Value": INCOMING_PREFIX}]}
                            },
                        }
                    ]
                },
            },
        },
        "DataBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": _ref("DataBucket"),
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [tls_only]},
            },
        },
        "IngestQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [_ref("IngestQueue")],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AllowDataBucketNotifications",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": _arn("IngestQueue"),
                            "Condition": {
                                # The bucket's ARN, spelled out: a Ref would make a cycle.
                                "ArnLike": {
                                    "aws:SourceArn": _sub(
                                        "arn:${AWS::Partition}:s3:::roomtemp-data-${Stage}"
                                    )
                                },
                                "StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")},
                            },
                        }
                    ],
                },
            },
        },
    }


def function_alarms(stage: str, app: Any) -> Json:
    """An Errors alarm on every function (the API and each event handler of `app`), and an
    IteratorAge alarm on each stream consumer; by physical name, so both deploy paths have them."""
    from chalice.app import DynamoDBEventConfig
    from chalice.utils import to_cfn_resource_name

    api = resource_names(stage)["functions"]
    alarms: Json = {
        "ApiHandlerErrorsAlarm": _alarm(
            "The API Lambda raised (unhandled errors or timeouts)",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": api},
        )
    }
    stream = operations.STAGES[stage].stream
    for source in app.event_sources:
        function, logical = f"{api}-{source.name}", to_cfn_resource_name(source.name)
        alarms[f"{logical}ErrorsAlarm"] = _alarm(
            f"The {source.name} Lambda raised (its work is retried, then dead-lettered)",
            "AWS/Lambda",
            "Errors",
            {"FunctionName": function},
        )
        if isinstance(source, DynamoDBEventConfig):
            alarms[f"{logical}IteratorAgeAlarm"] = _alarm(
                "The table stream's consumer falls behind (records wait longer than they should)",
                "AWS/Lambda",
                "IteratorAge",
                {"FunctionName": function},
                Statistic="Maximum",
                # Past its batching window, records should not wait more than a few minutes.
                Threshold=(stream.window_s + 300) * 1000,
            )
    return alarms


def queue_age_alarms() -> Json:
    """An alarm on each work queue whose oldest message waits too long (its consumer is stuck
    or too slow)."""
    return {
        f"{queue}AgeAlarm": _alarm(
            f"A message has waited over {operations.QUEUE_AGE_ALARM_S} s in {queue}",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}},
            Statistic="Maximum",
            Threshold=operations.QUEUE_AGE_ALARM_S,
        )
        for queue in sorted(set(QUEUE_OF_DECORATOR.values()))
    }


def infra_template(stage: str, app: Any = None) -> Json:
    """The standalone stack: table, bucket, queues + DLQs, alarm topic and alarms (also on the
    functions of `app`, by their physical names; default: app.py's app)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    app = app if app is not None else load_app()
    names = resource_names(stage)
    numbers = operations.STAGES[stage]
    resources: Json = {
        "Table": table_resource(stage),
        "IngestDeadLetterQueue": _queue("roomtemp-ingest-dlq-${Stage}", visibility=30, dlq=None),
        "IngestQueue": _queue(
            "roomtemp-ingest-${Stage}",
            visibility=numbers.queue_visibility_s(numbers.ingest),
            dlq="IngestDeadLetterQueue",
        ),
        "ReportsDeadLetterQueue": _queue("roomtemp-reports-dlq-${Stage}", visibility=30, dlq=None),
        "ReportsQueue": _queue(
            "roomtemp-reports-${Stage}",
            visibility=numbers.queue_visibility_s(numbers.reports),
            dlq="ReportsDeadLetterQueue",
        ),
        "NotifyDeadLetterQueue": _queue("roomtemp-notify-dlq-${Stage}", visibility=30, dlq=None),
        "NotifyQueue": _queue(
            "roomtemp-notify-${Stage}",
            visibility=numbers.queue_visibility_s(numbers.notify),
            dlq="NotifyDeadLetterQueue",
        ),
        # The on-failure destination of the table stream's consumer (records it gave up on).
        "StreamFailuresQueue": _queue("roomtemp-stream-failures-${Stage}", visibility=30, dlq=None),
        **_bucket_resources(),
        # The key page cursors are signed with (generated here, never written anywhere else).
        "CursorSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Name": _sub("roomtemp/${Stage}/cursor"),
                "Description": "Signs roomtemp's page cursors (HMAC-SHA256)",
                "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
            },
        },
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": _sub("roomtemp-alarms-${Stage}")},
        },
    }
    resources["StreamFailuresQueueDepthAlarm"] = _alarm(
        "The table stream's consumer gave up on records (rollups may miss readings)",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["StreamFailuresQueue", "QueueName"]}},
        Statistic="Maximum",
    )
    for queue in ("Ingest", "Reports", "Notify"):
        resources[f"{queue}DeadLetterQueueDepthAlarm"] = _alarm(
            f"Messages are waiting in the {queue.lower()} dead-letter queue",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": [f"{queue}DeadLetterQueue", "QueueName"]}},
            Statistic="Maximum",
        )
    for kind in ("Read", "Write"):
        resources[f"Table{kind}ThrottlesAlarm"] = _alarm(
            f"DynamoDB throttled {kind.lower()}s on the table",
            "AWS/DynamoDB",
            f"{kind}ThrottleEvents",
            {"TableName": _ref("Table")},
        )
    resources.update(function_alarms(stage, app))
    resources.update(queue_age_alarms())
    resources["Api5xxAlarm"] = _alarm(
        "The API answered 5xx (a 5xx is a bug, or storage unavailable)",
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": names["api"], "Stage": API_GATEWAY_STAGE},
        Threshold=5,
    )
    outputs = {
        "TableName": _ref("Table"),
        "BucketName": _ref("DataBucket"),
        "IngestQueueUrl": _ref("IngestQueue"),
        "IngestQueueArn": _arn("IngestQueue"),
        "IngestDeadLetterQueueUrl": _ref("IngestDeadLetterQueue"),
        "ReportsQueueUrl": _ref("ReportsQueue"),
        "ReportsQueueArn": _arn("ReportsQueue"),
        "ReportsDeadLetterQueueUrl": _ref("ReportsDeadLetterQueue"),
        "NotifyQueueUrl": _ref("NotifyQueue"),
        "NotifyQueueArn": _arn("NotifyQueue"),
        "NotifyDeadLetterQueueUrl": _ref("NotifyDeadLetterQueue"),
        "StreamFailuresQueueUrl": _ref("StreamFailuresQueue"),
        "TableStreamArn": _arn_of("Table", "StreamArn"),
        "AlarmTopicArn": _ref("AlarmTopic"),
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"roomtemp {stage}: table, bucket, queues, alarms (infra/template.py)",
        "Parameters": {
            "Stage": {
                "Type": "String",
                "Default": stage,
                "AllowedValues": list(STAGES),
                "Description": "Must match the chalice stage the package was built for",
            }
        },
        "Conditions": {"IsProd": {"Fn::Equals": [_ref("Stage"), "prod"]}},
        "Resources": resources,
        "Outputs": {
            key: {"Value": value, "Export": {"Name": _sub(f"${{AWS::StackName}}-{key}")}}
            for key, value in outputs.items()
        },
    }


def function_environment() -> Json:
    """The environment every function gets in the packaged template (SAM Globals)."""
    return {
        "ROOMTEMP_TABLE_NAME": _ref("Table"),
        "ROOMTEMP_BUCKET_NAME": _ref("DataBucket"),
        "ROOMTEMP_INGEST_QUEUE_NAME": {"Fn::GetAtt": ["IngestQueue", "QueueName"]},
        "ROOMTEMP_INGEST_QUEUE_URL": _ref("IngestQueue"),
        "ROOMTEMP_INGEST_DLQ_URL": _ref("IngestDeadLetterQueue"),
        "ROOMTEMP_REPORTS_QUEUE_URL": _ref("ReportsQueue"),
        "ROOMTEMP_NOTIFY_QUEUE_URL": _ref("NotifyQueue"),
        "ROOMTEMP_CURSOR_SECRET_NAME": _ref("CursorSecret"),
    }


def sqs_sources(app: Any) -> list[tuple[str, str, str, str]]:
    """(name, function logical id, event logical id, queue logical id) of the SQS handlers."""
    from chalice.app import SQSEventConfig
    from chalice.utils import to_cfn_resource_name

    wired = []
    for source in app.event_sources:
        if not isinstance(source, SQSEventConfig):
            continue
        queue = QUEUE_OF_DECORATOR.get(source.queue or "")
        if queue is None:
            raise ValueError(
                f"SQS handler {source.name!r} listens to {source.queue!r}: add it to "
                "infra.template.QUEUE_OF_DECORATOR"
            )
        function = to_cfn_resource_name(source.name)
        event = to_cfn_resource_name(f"{source.name}-sqs-event-source")
        wired.append((source.name, function, event, queue))
    return wired


def merge_template(stage: str, app: Any = None) -> Json:
    """`infra_template` plus the overlays of Chalice's own resources, for --merge-template."""
    from chalice.utils import to_cfn_resource_name

    app = app if app is not None else load_app()
    template = infra_template(stage, app)
    numbers = operations.STAGES[stage]
    rate, burst = numbers.throttle_rate, numbers.throttle_burst
    resources = template["Resources"]
    resources["RestAPI"] = {
        "Properties": {
            "Name": resource_names(stage)["api"],
            "MethodSettings": [
                {
                    "ResourcePath": "/*",
                    "HttpMethod": "*",
                    "ThrottlingRateLimit": rate,
                    "ThrottlingBurstLimit": burst,
                    "MetricsEnabled": True,
                }
            ],
        }
    }
    functions = resource_names(stage)["functions"]
    # Chalice's names (as `chalice deploy` gives them), so the policy's log-group ARNs match.
    resources["APIHandler"] = {"Properties": {"FunctionName": functions}}
    # chalice 1.34 writes ${ApiHandler} here, a resource that does not exist (it is APIHandler).
    resources["ApiHandlerLogGroup"] = {
        "Properties": {"LogGroupName": _sub("/aws/lambda/${APIHandler}")}
    }
    for source in app.event_sources:  # Chalice's names, which the alarms use
        resources[to_cfn_resource_name(source.name)] = {
            "Properties": {"FunctionName": f"{functions}-{source.name}"}
        }
    for _, function, event, queue in sqs_sources(app):
        resources[function]["Properties"] |= {
            "Events": {
                event: {
                    "Properties": {
                        # Same key as Chalice's Fn::Sub, so the deep merge replaces it.
                        "Queue": _sub(f"${{{queue}.Arn}}"),
                        # The handlers return {"batchItemFailures": [...]}: only those retry.
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                    }
                }
            }
        }
    for _, function, event in stream_sources(app):
        resources[function]["Properties"] |= {
            "Events": {event: {"Properties": stream_event_source(numbers.stream)}}
        }
    template["Globals"] = {"Function": {"Environment": {"Variables": function_environment()}}}
    template["Outputs"]["ApiErrorsAlarmName"] = {"Value": _ref("ApiHandlerErrorsAlarm")}
    return template


def stream_event_source(stream: operations.Stream) -> Json:
    """The table stream's event source mapping (SAM DynamoDB event) of a stage."""
    return {
        # Chalice writes the decorator's placeholder ARN here: the stage's table's stream.
        "Stream": _arn_of("Table", "StreamArn"),
        "BatchSize": stream.batch_size,
        "MaximumBatchingWindowInSeconds": stream.window_s,
        "StartingPosition": "TRIM_HORIZON",
        # The handler reports the first record of a room that failed: only from there on again.
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": stream.retry_attempts,
        "MaximumRecordAgeInSeconds": stream.max_record_age_s,
        "DestinationConfig": {
            "OnFailure": {"Type": "SQS", "Destination": _arn("StreamFailuresQueue")}
        },
        # Only new readings reach the consumer: its own rollup writes, registry items and TTL
        # removals are filtered out before Lambda is invoked (reading sort keys start with the
        # year's first digit; other items' do not).
        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(READING_INSERTS)}]},
    }


# A reading's sort key starts with its fixed-width timestamp (years 2000-9999).
READING_INSERTS: dict[str, Any] = {
    "eventName": ["INSERT"],
    "dynamodb": {"Keys": {"sk": {"S": [{"prefix": str(d)} for d in range(2, 10)]}}},
}


def stream_sources(app: Any) -> list[tuple[str, str, str]]:
    """(name, function logical id, event logical id) of the table-stream handlers."""
    from chalice.app import DynamoDBEventConfig
    from chalice.utils import to_cfn_resource_name

    return [
        (
            source.name,
            to_cfn_resource_name(source.name),
            to_cfn_resource_name(f"{source.name}-dynamodb-event-source"),
        )
        for source in app.event_sources
        if isinstance(source, DynamoDBEventConfig)
    ]


def policy_document(stage: str) -> Json:
    """The Lambda role's least-privilege policy: the stage's table, bucket prefixes and queues."""
    names = resource_names(stage)
    table = f"arn:aws:dynamodb:*:*:table/{names['table']}"
    bucket = f"arn:aws:s3:::{names['bucket']}"

    def queue(name: str) -> str:
        return f"arn:aws:sqs:*:*:{names[name]}"

    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Table",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeTable",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:ConditionCheckItem",
                    "dynamodb:Query",
                    "dynamodb:PartiQLInsert",  # readings: INSERT fails on a key already stored
                ],
                "Resource": [table],
            },
            {
                "Sid": "TableIndexes",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": [f"{table}/index/*"],
            },
            {
                "Sid": "TableStream",  # the event source mapping reads it as the consumer's role
                "Effect": "Allow",
                "Action": [
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                ],
                "Resource": [f"{table}/stream/*"],
            },
            {
                "Sid": "BucketObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": [f"{bucket}/{prefix}*" for prefix in BUCKET_PREFIXES],
            },
            {
                "Sid": "ReportResultsDelete",  # a building deleted takes its reports along
                "Effect": "Allow",
                "Action": ["s3:DeleteObject"],
                "Resource": [f"{bucket}/{REPORTS_PREFIX}*"],
            },
            {
                # Without it a missing key answers 403, not 404. No s3:prefix condition: a
                # GetObject/HeadObject carries none, so S3 would not count a conditioned grant.
                # The role reads and writes every prefix of the bucket anyway.
                "Sid": "BucketListForMissingKeys",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket],
            },
            {
                "Sid": "WorkQueues",
                "Effect": "Allow",
                "Action": [
                    "sqs:GetQueueUrl",
                    "sqs:GetQueueAttributes",
                    "sqs:SendMessage",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                ],
                "Resource": [queue("ingest_queue"), queue("reports_queue"), queue("notify_queue")],
            },
            {
                "Sid": "DeadLetterQueues",
                "Effect": "Allow",
                "Action": ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"],
                "Resource": [
                    queue("ingest_dlq"),
                    queue("reports_dlq"),
                    queue("notify_dlq"),
                    queue("stream_failures"),
                ],
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [
                    f"arn:aws:logs:*:*:log-group:/aws/lambda/{names['functions']}*",
                    f"arn:aws:logs:*:*:log-group:/aws/lambda/{names['functions']}*:*",
                ],
            },
            {
                "Sid": "CursorSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                # Secrets Manager appends 6 random characters to a secret's name in its ARN.
                "Resource": [f"arn:aws:secretsmanager:*:*:secret:{names['cursor_secret']}-*"],
            },
            {
                # Alert notifications go to topics the tenants own, in their accounts and
                # regions: each topic's own policy must allow this role (docs/webhooks.md).
                # Never a topic of this account (the ops alarms' pager): tenants name the ARN.
                "Sid": "TenantAlertTopics",
                "Effect": "Allow",
                "Action": ["sns:Publish"],
                "Resource": ["arn:aws:sns:*:*:*"],
                "Condition": {
                    "StringNotEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}
                },
            },
            {
                "Sid": "Tracing",  # X-Ray has no resource-level permissions
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",
            },
        ],
    }


CHALICE_CONFIG = ROOT / ".chalice" / "config.json"


def with_numbers_table(page: str) -> str:
    """docs/operations.md with its numbers table regenerated from infra/operations.py."""
    head, begin, rest = page.partition(DOCS_BEGIN)
    _, end, tail = rest.partition(DOCS_END)
    if not begin or not end:
        raise ValueError(f"{DOCS} lacks the {DOCS_BEGIN.strip()} ... {DOCS_END} markers")
    return head + begin + operations.docs_table() + end + tail


def policy_path(stage: str) -> Path:
    """Where .chalice/config.json expects the stage's policy file."""
    return ROOT / ".chalice" / f"policy-{stage}.json"


def render(document: Json) -> str:
    """The JSON text written for a template or policy (stable, so diffs are readable)."""
    return json.dumps(document, indent=2) + "\n"


def load_app() -> Any:
    """The Chalice app object (to find its SQS handlers)."""
    sys.path.insert(0, str(ROOT))
    import app as app_module

    return app_module.app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.template", description=__doc__)
    parser.add_argument("what", choices=["infra", "merge", "policies", "config", "docs"])
    parser.add_argument("--stage", choices=STAGES, default="dev")
    parser.add_argument("--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.what == "policies":
        for stage in STAGES:
            policy_path(stage).write_text(render(policy_document(stage)))
        return
    if args.what == "config":
        CHALICE_CONFIG.write_text(render(operations.chalice_config()))
        return
    if args.what == "docs":
        DOCS.write_text(with_numbers_table(DOCS.read_text()))
        return
    document = (
        infra_template(args.stage)
        if args.what == "infra"
        else merge_template(args.stage, load_app())
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(document))
    else:
        sys.stdout.write(render(document))


if __name__ == "__main__":
    main()
