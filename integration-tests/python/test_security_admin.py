"""ACLs, group configs and SCRAM credentials through confluent-kafka's AdminClient
(librdkafka) and kafka-python, against a Gregor with the StandardAuthorizer on.

Clients connect over PLAINTEXT, so the broker sees them as User:ANONYMOUS."""

import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from conftest import Broker

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
TIMEOUT_S = 30


@pytest.fixture(scope="module")
def secured_broker():
    b = Broker({"num.partitions": "1", "authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "true"})
    yield b
    b.close()


def admin_for(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def result_of(futures):
    return {key: future.result(timeout=TIMEOUT_S) for key, future in futures.items()}


def kafka_error_code(call):
    with pytest.raises(KafkaException) as raised:
        call()
    return raised.value.args[0].code()


def any_filter(**fields):
    defaults = dict(
        restype=ResourceType.ANY,
        name=None,
        resource_pattern_type=ResourcePatternType.ANY,
        principal=None,
        host=None,
        operation=AclOperation.ANY,
        permission_type=AclPermissionType.ANY,
    )
    defaults.update(fields)
    return AclBindingFilter(**defaults)


def test_acl_apis_answer_security_disabled_without_an_authorizer(broker):
    admin = admin_for(broker)
    binding = AclBinding(
        ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:a", "*", AclOperation.READ, AclPermissionType.ALLOW
    )
    [future] = admin.create_acls([binding]).values()
    code = kafka_error_code(lambda: future.result(timeout=TIMEOUT_S))
    assert code == KafkaError.SECURITY_DISABLED
    # librdkafka drops DescribeAcls' top-level error code, so kafka-python checks it.
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient
    from kafka.admin import ResourcePatternFilter
    from kafka.admin import ResourceType as KpResourceType
    from kafka.errors import SecurityDisabledError

    python_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        everything = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY),
        )
        with pytest.raises(SecurityDisabledError):
            python_admin.describe_acls(everything)
    finally:
        python_admin.close()


def test_acls_are_created_listed_and_deleted(secured_broker):
    admin = admin_for(secured_broker)
    prefix = f"acl-{uuid.uuid4().hex[:8]}"
    read = AclBinding(
        ResourceType.TOPIC,
        prefix,
        ResourcePatternType.PREFIXED,
        "User:reader",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    deny = AclBinding(
        ResourceType.GROUP,
        f"{prefix}-group",
        ResourcePatternType.LITERAL,
        "User:*",
        "10.0.0.1",
        AclOperation.ALL,
        AclPermissionType.DENY,
    )
    result_of(admin.create_acls([read, deny]))
    # A second creation of the same ACL adds nothing.
    result_of(admin.create_acls([read]))

    listed = admin.describe_acls(any_filter(name=prefix)).result(timeout=TIMEOUT_S)
    assert listed == [read]
    matching = admin.describe_acls(
        any_filter(restype=ResourceType.TOPIC, name=f"{prefix}-orders", resource_pattern_type=ResourcePatternType.MATCH)
    ).result(timeout=TIMEOUT_S)
    assert matching == [read]
    by_principal = admin.describe_acls(any_filter(principal="User:*")).result(timeout=TIMEOUT_S)
    assert deny in by_principal and read not in by_principal

    # An invalid ACL fails on its own: a cluster ACL must name kafka-cluster.
    bad = AclBinding(
        ResourceType.BROKER,
        "other",
        ResourcePatternType.LITERAL,
        "User:a",
        "*",
        AclOperation.ALTER,
        AclPermissionType.ALLOW,
    )
    [future] = admin.create_acls([bad]).values()
    assert kafka_error_code(lambda: future.result(timeout=TIMEOUT_S)) == KafkaError.INVALID_REQUEST

    deleted = result_of(admin.delete_acls([any_filter(name=prefix), any_filter(restype=ResourceType.GROUP)]))
    removed = [binding for bindings in deleted.values() for binding in bindings]
    assert sorted(map(str, removed)) == sorted(map(str, [read, deny]))
    assert admin.describe_acls(any_filter(name=prefix)).result(timeout=TIMEOUT_S) == []


def test_kafka_python_sees_the_same_acls(secured_broker):
    from kafka.admin import ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient
    from kafka.admin import ResourcePattern
    from kafka.admin import ResourcePatternFilter
    from kafka.admin import ResourceType as KpResourceType

    admin = KafkaAdminClient(bootstrap_servers=secured_broker.bootstrap)
    try:
        name = f"kp-{uuid.uuid4().hex[:8]}"
        acl = ACL(
            principal="User:writer",
            host="*",
            operation=ACLOperation.WRITE,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(KpResourceType.TOPIC, name),
        )
        created = admin.create_acls([acl])
        assert created["failed"] == [] and len(created["succeeded"]) == 1
        wanted = ACLFilter(
            principal=None,
            host=None,
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(KpResourceType.TOPIC, name, ACLResourcePatternType.LITERAL),
        )
        found, error = admin.describe_acls(wanted)
        assert error.errno == 0
        assert [(a.principal, a.operation) for a in found] == [("User:writer", ACLOperation.WRITE)]
        [(_, removed, delete_error)] = admin.delete_acls([wanted])
        assert delete_error.errno == 0 and len(removed) == 1
    finally:
        admin.close()


def test_authorized_operations_follow_the_acls(secured_broker, topic_name):
    admin = admin_for(secured_broker)
    result_of(admin.create_topics([NewTopic(topic_name, 1, 1)]))

    def topic_operations():
        [future] = admin.describe_topics(
            TopicCollection([topic_name]), include_authorized_operations=True, request_timeout=TIMEOUT_S
        ).values()
        return set(future.result(timeout=TIMEOUT_S).authorized_operations)

    every_topic_operation = {
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    }
    assert topic_operations() == every_topic_operation

    # Once an ACL names the topic, only what ANONYMOUS is allowed remains.
    allow = AclBinding(
        ResourceType.TOPIC,
        topic_name,
        ResourcePatternType.LITERAL,
        "User:ANONYMOUS",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    result_of(admin.create_acls([allow]))
    assert topic_operations() == {AclOperation.READ, AclOperation.DESCRIBE}

    cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=TIMEOUT_S)
    assert AclOperation.ALTER in set(cluster.authorized_operations)
    result_of(admin.delete_acls([any_filter(name=topic_name)]))
    assert topic_operations() == every_topic_operation


def test_group_configs_are_stored_validated_and_described(secured_broker):
    admin = admin_for(secured_broker)
    group = f"group-config-{uuid.uuid4().hex[:8]}"

    def alter(*entries):
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=list(entries))
        [future] = admin.incremental_alter_configs([resource]).values()
        return future.result(timeout=TIMEOUT_S)

    def described():
        [future] = admin.describe_configs([ConfigResource(ResourceType.GROUP, group)]).values()
        return future.result(timeout=TIMEOUT_S)

    before = described()
    assert before["consumer.session.timeout.ms"].value == "45000"
    assert before["consumer.session.timeout.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert before["consumer.heartbeat.interval.ms"].value == "5000"

    alter(ConfigEntry("consumer.session.timeout.ms", "50000", incremental_operation=AlterConfigOpType.SET))
    after = described()
    assert after["consumer.session.timeout.ms"].value == "50000"
    assert after["consumer.session.timeout.ms"].source == ConfigSource.GROUP_CONFIG.value

    # Below the broker's group.consumer.min.session.timeout.ms, or an unknown key.
    for entry in [
        ConfigEntry("consumer.session.timeout.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("share.session.timeout.ms", "45000", incremental_operation=AlterConfigOpType.SET),
    ]:
        assert kafka_error_code(lambda: alter(entry)) == KafkaError.INVALID_CONFIG
    assert described()["consumer.session.timeout.ms"].value == "50000"

    alter(ConfigEntry("consumer.session.timeout.ms", None, incremental_operation=AlterConfigOpType.DELETE))
    assert described()["consumer.session.timeout.ms"].value == "45000"


def test_scram_credentials_are_upserted_described_and_deleted(secured_broker):
    admin = admin_for(secured_broker)
    user = f"scram-{uuid.uuid4().hex[:8]}"

    def describe():
        [future] = admin.describe_user_scram_credentials([user]).values()
        return future.result(timeout=TIMEOUT_S)

    assert kafka_error_code(describe) == KafkaError.RESOURCE_NOT_FOUND

    upsert = [
        UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"pw", b"salt"),
        UserScramCredentialUpsertion(user + "-512", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"pw"),
    ]
    result_of(admin.alter_user_scram_credentials(upsert))
    description = describe()
    assert [(info.mechanism, info.iterations) for info in description.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 8192)
    ]

    too_few = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 100), b"pw", b"salt"
    )
    [future] = admin.alter_user_scram_credentials([too_few]).values()
    assert kafka_error_code(lambda: future.result(timeout=TIMEOUT_S)) == KafkaError.UNACCEPTABLE_CREDENTIAL

    deletions = [
        UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256),
        UserScramCredentialDeletion(user + "-512", ScramMechanism.SCRAM_SHA_512),
    ]
    result_of(admin.alter_user_scram_credentials(deletions))
    assert kafka_error_code(describe) == KafkaError.RESOURCE_NOT_FOUND
    [future] = admin.alter_user_scram_credentials([deletions[0]]).values()
    assert kafka_error_code(lambda: future.result(timeout=TIMEOUT_S)) == KafkaError.RESOURCE_NOT_FOUND


def test_producer_still_works_with_the_authorizer_on(secured_broker, topic_name):
    producer = Producer({"bootstrap.servers": secured_broker.bootstrap})
    delivered = []
    producer.produce(topic_name, b"v", on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(TIMEOUT_S)
    assert delivered == [None]


def deny(resource_type, name, operation):
    return AclBinding(
        resource_type, name, ResourcePatternType.LITERAL, "User:ANONYMOUS", "*", operation, AclPermissionType.DENY
    )


def test_denied_topics_refuse_produce_consume_and_describe(secured_broker, topic_name):
    from confluent_kafka import Consumer

    admin = admin_for(secured_broker)
    result_of(admin.create_topics([NewTopic(topic_name, 1, 1)]))
    producer = Producer({"bootstrap.servers": secured_broker.bootstrap})
    delivered = []
    producer.produce(topic_name, b"before", on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(TIMEOUT_S)
    assert delivered == [None]

    # Once an ACL names the topic, allow.everyone.if.no.acl.found no longer applies
    # to it: READ must be allowed explicitly.
    allow_read = AclBinding(
        ResourceType.TOPIC,
        topic_name,
        ResourcePatternType.LITERAL,
        "User:ANONYMOUS",
        "*",
        AclOperation.READ,
        AclPermissionType.ALLOW,
    )
    result_of(admin.create_acls([deny(ResourceType.TOPIC, topic_name, AclOperation.WRITE), allow_read]))
    refused = Producer({"bootstrap.servers": secured_broker.bootstrap, "message.timeout.ms": 10000})
    errors = []
    refused.produce(topic_name, b"after", on_delivery=lambda err, msg: errors.append(err))
    refused.flush(TIMEOUT_S)
    assert [error.code() for error in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    # The record written before is still consumable.
    consumer = Consumer(
        {
            "bootstrap.servers": secured_broker.bootstrap,
            "group.id": f"{topic_name}-reader",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic_name])
        message = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                break
        assert message is not None and message.value() == b"before"
    finally:
        consumer.close()

    result_of(admin.create_acls([deny(ResourceType.TOPIC, topic_name, AclOperation.DESCRIBE)]))
    assert topic_name not in admin.list_topics(timeout=TIMEOUT_S).topics
    [future] = admin.describe_topics(TopicCollection([topic_name])).values()
    assert kafka_error_code(lambda: future.result(timeout=TIMEOUT_S)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    result_of(admin.delete_acls([any_filter(name=topic_name)]))
    assert topic_name in admin.list_topics(timeout=TIMEOUT_S).topics


def test_denied_group_and_transactional_id_are_refused(secured_broker, topic_name):
    from confluent_kafka import Consumer

    admin = admin_for(secured_broker)
    group = f"{topic_name}-denied"
    transactional_id = f"{topic_name}-txn"
    result_of(
        admin.create_acls(
            [
                deny(ResourceType.GROUP, group, AclOperation.READ),
                deny(ResourceType.TRANSACTIONAL_ID, transactional_id, AclOperation.WRITE),
            ]
        )
    )
    consumer = Consumer(
        {"bootstrap.servers": secured_broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([topic_name])
        codes = set()
        for _ in range(30):
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                codes.add(message.error().code())
                if KafkaError.GROUP_AUTHORIZATION_FAILED in codes:
                    break
        assert KafkaError.GROUP_AUTHORIZATION_FAILED in codes
    finally:
        consumer.close()

    producer = Producer({"bootstrap.servers": secured_broker.bootstrap, "transactional.id": transactional_id})
    with pytest.raises(KafkaException) as raised:
        producer.init_transactions(TIMEOUT_S)
    assert raised.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    result_of(admin.delete_acls([any_filter(name=group), any_filter(name=transactional_id)]))


def test_denied_configs_and_deletion(secured_broker, topic_name):
    admin = admin_for(secured_broker)
    result_of(admin.create_topics([NewTopic(topic_name, 1, 1)]))
    result_of(
        admin.create_acls(
            [
                deny(ResourceType.TOPIC, topic_name, AclOperation.DESCRIBE_CONFIGS),
                deny(ResourceType.TOPIC, topic_name, AclOperation.DELETE),
            ]
        )
    )
    [future] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic_name)]).values()
    assert kafka_error_code(lambda: future.result(timeout=TIMEOUT_S)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    [future] = admin.delete_topics([topic_name], operation_timeout=TIMEOUT_S).values()
    assert kafka_error_code(lambda: future.result(timeout=TIMEOUT_S)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    result_of(admin.delete_acls([any_filter(name=topic_name)]))
    result_of(admin.delete_topics([topic_name], operation_timeout=TIMEOUT_S))


def anonymous(resource_type, name, operation, permission, pattern=ResourcePatternType.LITERAL):
    return AclBinding(resource_type, name, pattern, "User:ANONYMOUS", "*", operation, permission)


PREFIXED = ResourcePatternType.PREFIXED


def test_idempotent_producer_needs_a_topic_write_no_deny_covers(topic_name):
    """KIP-679: without IDEMPOTENT_WRITE on the cluster, an idempotent producer needs
    WRITE on some topic, judged as Kafka's authorizeByResourceType does: an ALLOW
    pattern covered by a DENY pattern does not count. Also: a client without DESCRIBE
    on the cluster still describes it (authorized operations empty)."""
    broker = Broker(
        {"num.partitions": "1", "authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "true"}
    )
    try:
        admin = admin_for(broker)
        topic = f"a-{topic_name}"
        result_of(admin.create_topics([NewTopic(topic, 1, 1)]))
        result_of(
            admin.create_acls(
                [
                    anonymous(ResourceType.TOPIC, "a", AclOperation.WRITE, AclPermissionType.ALLOW, PREFIXED),
                    # An ACL on every topic name (for someone else), so that
                    # allow.everyone.if.no.acl.found no longer lets ANONYMOUS write to
                    # topics no ACL names.
                    AclBinding(
                        ResourceType.TOPIC,
                        "*",
                        ResourcePatternType.LITERAL,
                        "User:someone-else",
                        "*",
                        AclOperation.READ,
                        AclPermissionType.ALLOW,
                    ),
                    anonymous(
                        ResourceType.BROKER, "kafka-cluster", AclOperation.IDEMPOTENT_WRITE, AclPermissionType.DENY
                    ),
                    # ANONYMOUS keeps administering the ACLs until the end of the test.
                    anonymous(ResourceType.BROKER, "kafka-cluster", AclOperation.ALTER, AclPermissionType.ALLOW),
                ]
            )
        )

        def idempotent_producer():
            errors = []
            producer = Producer(
                {
                    "bootstrap.servers": broker.bootstrap,
                    "enable.idempotence": True,
                    "message.timeout.ms": 15000,
                    "error_cb": lambda error: errors.append((error.code(), error.fatal())),
                }
            )
            return producer, errors

        # WRITE on prefix "a" is allowed: the producer gets its id and writes.
        producer, errors = idempotent_producer()
        delivered = []
        producer.produce(topic, b"v", on_delivery=lambda err, msg: delivered.append(err))
        producer.flush(TIMEOUT_S)
        assert (delivered, errors) == ([None], [])

        # The same prefix denied cancels that ALLOW: no topic is left to write to, and
        # the producer's id is refused (a fatal error for an idempotent producer).
        deny_prefix = anonymous(ResourceType.TOPIC, "a", AclOperation.WRITE, AclPermissionType.DENY, PREFIXED)
        result_of(admin.create_acls([deny_prefix]))
        producer, errors = idempotent_producer()
        deadline = time.monotonic() + TIMEOUT_S
        with pytest.raises(KafkaException) as raised:
            while time.monotonic() < deadline:
                producer.poll(0.2)
        fatal = raised.value.args[0]
        assert (fatal.code(), fatal.fatal()) == (KafkaError.CLUSTER_AUTHORIZATION_FAILED, True)

        # Without ALTER (which implies DESCRIBE) on the cluster, ANONYMOUS still
        # describes it, with no authorized operations.
        result_of(
            admin.delete_acls(
                [
                    any_filter(
                        restype=ResourceType.BROKER,
                        principal="User:ANONYMOUS",
                        operation=AclOperation.ALTER,
                        permission_type=AclPermissionType.ALLOW,
                    )
                ]
            )
        )
        cluster = admin.describe_cluster(include_authorized_operations=True).result(timeout=TIMEOUT_S)
        assert cluster.cluster_id and len(cluster.nodes) == 1
        assert not cluster.authorized_operations
    finally:
        broker.close()

