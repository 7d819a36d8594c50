#!/usr/bin/env python3
"""Fake single-node Kafka broker that records every request frame it receives.

Used only to capture golden request bytes from real clients (librdkafka,
kafka-python) for Gregor's protocol tests; see crates/protocol/tests/golden/README.md.

For every request frame it writes the frame body -- the bytes after the 4-byte
size prefix, i.e. starting with the request header -- to
``<out>/<api_name_snake>_v<version>_<nnn>.bin`` (nnn counts per api+version) and
appends one JSON line per frame to ``<out>/index.jsonl`` (file, api, version,
correlation id, client id, connection number, time).

It then answers just enough for the client to go on. Responses are built with
kafka-python's schema-driven message classes (``kafka.protocol.*``, which
are generated from Apache Kafka's JSON message definitions), so every version
advertised in ApiVersions is one those classes can encode. Behaviour:

* one node (id 1, 127.0.0.1:<port>), which leads every partition, coordinates
  every group and is the controller;
* every topic a client asks for exists, with ``--partitions`` partitions and a
  deterministic topic id (uuid5 of the name);
* Produce appends the record batches to an in-memory log (offsets assigned by
  rewriting each batch's baseOffset; the CRC does not cover it), and Fetch serves
  them back, so a consumer that runs after a producer receives its records;
* classic consumer groups: JoinGroup (v4+ two-step MEMBER_ID_REQUIRED flow),
  SyncGroup returns the leader's assignment, Heartbeat/LeaveGroup/OffsetCommit
  succeed, OffsetFetch reports no committed offset;
* InitProducerId hands out producer ids 1000, 1001, ...

Only the standard library and kafka-python are needed.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import struct
import sys
import time
import uuid

import kafka.protocol.admin  # noqa: F401  (registers the message classes)
import kafka.protocol.consumer  # noqa: F401
import kafka.protocol.metadata  # noqa: F401
import kafka.protocol.producer  # noqa: F401
from kafka.protocol.api_message import ApiMessage

log = logging.getLogger("fake_broker")

NODE_ID = 1
HOST = "127.0.0.1"
CLUSTER_ID = "gregor-golden-cluster"
LEADER_EPOCH = 0

# Kafka error codes used here.
NONE = 0
UNSUPPORTED_VERSION = 35
MEMBER_ID_REQUIRED = 79

# API key -> name (Kafka's own names, as in the JSON message definitions).
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 18: "ApiVersions", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch",
}


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _message_classes():
    """api_key -> (RequestClass, ResponseClass) from kafka-python's registry."""
    req, resp = {}, {}
    stack = list(ApiMessage.__subclasses__())
    while stack:
        c = stack.pop()
        stack.extend(c.__subclasses__())
        if getattr(c, "_class_version", 1) is not None:
            continue  # a per-version wrapper, not a primary class
        (req if c.type == "request" else resp)[c.API_KEY] = c
    return {k: (req[k], resp[k]) for k in req if k in resp}


CLASSES = _message_classes()


def topic_uuid(name):
    return uuid.uuid5(uuid.NAMESPACE_URL, "gregor-golden/" + name)


class Log:
    """In-memory partition log: a list of (base_offset, record_count, batch_bytes)."""

    def __init__(self):
        self.batches = []
        self.next_offset = 0

    def append(self, records):
        """Split a Produce records blob into v2 record batches and append them."""
        base = self.next_offset
        pos = 0
        while pos + 61 <= len(records):
            batch_len = struct.unpack_from(">i", records, pos + 8)[0]
            end = pos + 12 + batch_len
            batch = bytearray(records[pos:end])
            magic = batch[16]
            if magic != 2:
                log.warning("ignoring message set with magic %d", magic)
                break
            last_delta = struct.unpack_from(">i", batch, 23)[0]
            count = last_delta + 1
            struct.pack_into(">q", batch, 0, self.next_offset)
            self.batches.append((self.next_offset, count, bytes(batch)))
            self.next_offset += count
            pos = end
        return base

    def read(self, offset, max_bytes):
        out = bytearray()
        for base, count, batch in self.batches:
            if base + count <= offset:
                continue
            if out and len(out) + len(batch) > max_bytes:
                break
            out += batch
        return bytes(out)


class Broker:
    def __init__(self, args):
        self.port = args.port
        self.out = args.out
        self.partitions = args.partitions
        self.caps = args.caps
        self.max_per_api = args.max_per_api
        self.logs = {}  # (topic, partition) -> Log
        self.known_topics = set()  # every topic a client has asked about
        self.counts = {}  # (api_key, version) -> next nnn
        self.conn_seq = 0
        self.member_seq = 0
        self.producer_seq = 1000
        self.groups = {}  # group_id -> dict(generation, assignments)
        self.index = open(os.path.join(self.out, "index.jsonl"), "a", buffering=1)
        self.api_versions = []
        for key in sorted(API_NAMES):
            req_cls, _ = CLASSES[key]
            max_v = min(req_cls.max_version, self.caps.get(key, req_cls.max_version))
            self.api_versions.append((key, 0, max_v))
        self.supported = {k: mx for k, _, mx in self.api_versions}

    # ------------------------------------------------------------------ I/O
    async def serve(self):
        server = await asyncio.start_server(self.handle_conn, HOST, self.port)
        self.port = server.sockets[0].getsockname()[1]
        log.info("fake broker listening on %s:%d, writing to %s", HOST, self.port, self.out)
        print(f"LISTENING {self.port}", flush=True)
        async with server:
            await server.serve_forever()

    async def handle_conn(self, reader, writer):
        self.conn_seq += 1
        conn = self.conn_seq
        peer = writer.get_extra_info("peername")
        log.info("conn %d from %s", conn, peer)
        try:
            while True:
                size_bytes = await reader.readexactly(4)
                (size,) = struct.unpack(">i", size_bytes)
                body = await reader.readexactly(size)
                resp = await self.handle_frame(conn, body)
                if resp is not None:
                    writer.write(struct.pack(">i", len(resp)) + resp)
                    await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        except ConnectionError:
            pass
        except Exception:
            log.exception("conn %d: error, closing", conn)
        finally:
            log.info("conn %d closed", conn)
            writer.close()

    def record(self, conn, body, key, version, corr, client_id):
        name = snake(API_NAMES.get(key, f"api{key}"))
        n = self.counts.get((key, version), 0)
        self.counts[(key, version)] = n + 1
        fname = f"{name}_v{version}_{n:03d}.bin"
        if n >= self.max_per_api:
            return None  # runaway client: stop filling the disk
        with open(os.path.join(self.out, fname), "wb") as f:
            f.write(body)
        self.index.write(json.dumps({
            "file": fname, "api_key": key, "api": API_NAMES.get(key, f"api{key}"),
            "version": version, "correlation_id": corr, "client_id": client_id,
            "conn": conn, "size": len(body), "time": time.time(),
        }) + "\n")
        return fname

    async def handle_frame(self, conn, body):
        key, version, corr = struct.unpack_from(">hhi", body, 0)
        (cid_len,) = struct.unpack_from(">h", body, 8)
        client_id = None if cid_len < 0 else body[10:10 + cid_len].decode("utf-8", "replace")
        fname = self.record(conn, body, key, version, corr, client_id)
        log.info("conn %d: %s v%d corr=%d client=%s -> %s", conn,
                 API_NAMES.get(key, key), version, corr, client_id, fname)

        if key == 18 and version > self.supported[18]:
            # KIP-511: answer an ApiVersions request of an unknown version with
            # a v0 response carrying UNSUPPORTED_VERSION and our ranges.
            return self.encode(18, 0, corr, self.api_versions_body(UNSUPPORTED_VERSION))
        if key not in self.supported or version > self.supported[key]:
            log.error("conn %d: unsupported %s v%d; closing", conn, key, version)
            raise ConnectionError("unsupported request")

        req_cls, _ = CLASSES[key]
        req = req_cls[version].decode(body, header=True)
        handler = getattr(self, "on_" + snake(API_NAMES[key]))
        result = handler(req, version, client_id)
        if asyncio.iscoroutine(result):
            result = await result
        if result is None:  # e.g. Produce with acks=0
            return None
        return self.encode(key, version, corr, result)

    def encode(self, key, version, corr, resp):
        _, resp_cls = CLASSES[key]
        # Response header v1 (with tagged fields) for flexible versions, except
        # ApiVersions whose response header is always v0.
        flexible = resp_cls.flexible_version_q(version) and key != 18
        header = struct.pack(">i", corr) + (b"\x00" if flexible else b"")
        return header + bytes(resp.encode(version=version))

    def resp(self, key, version, **fields):
        return CLASSES[key][1][version](**fields)

    # ------------------------------------------------------------- helpers
    def log_for(self, topic, partition):
        return self.logs.setdefault((topic, partition), Log())

    def topic_name(self, name, topic_id):
        if name:
            return name
        for (t, _p) in self.logs:
            if topic_uuid(t) == topic_id:
                return t
        for t in self.known_topics:
            if topic_uuid(t) == topic_id:
                return t
        return None

    # ------------------------------------------------------------ handlers
    def api_versions_body(self, error=NONE):
        R = CLASSES[18][1]
        return R[0](error_code=error, api_keys=[
            R.ApiVersion(api_key=k, min_version=mn, max_version=mx) for k, mn, mx in self.api_versions])

    def on_api_versions(self, req, v, cid):
        R = CLASSES[18][1]
        return self.resp(18, v, error_code=NONE, throttle_time_ms=0, api_keys=[
            R.ApiVersion(api_key=k, min_version=mn, max_version=mx) for k, mn, mx in self.api_versions])

    def on_metadata(self, req, v, cid):
        R = CLASSES[3][1]
        if req.topics is None:  # all topics
            names = sorted(self.known_topics | {t for t, _ in self.logs})
        else:
            names = [self.topic_name(t.name, t.topic_id) for t in req.topics]
        topics = []
        for name in names:
            self.known_topics.add(name)
            topics.append(R.MetadataResponseTopic(
                error_code=NONE, name=name, topic_id=topic_uuid(name), is_internal=False,
                partitions=[R.MetadataResponseTopic.MetadataResponsePartition(
                    error_code=NONE, partition_index=p, leader_id=NODE_ID, leader_epoch=LEADER_EPOCH,
                    replica_nodes=[NODE_ID], isr_nodes=[NODE_ID], offline_replicas=[])
                    for p in range(self.partitions)]))
        return self.resp(3, v, throttle_time_ms=0,
                         brokers=[R.MetadataResponseBroker(node_id=NODE_ID, host=HOST, port=self.port, rack=None)],
                         cluster_id=CLUSTER_ID, controller_id=NODE_ID, topics=topics, error_code=NONE)

    def on_init_producer_id(self, req, v, cid):
        self.producer_seq += 1
        return self.resp(22, v, throttle_time_ms=0, error_code=NONE,
                         producer_id=self.producer_seq - 1, producer_epoch=0)

    def on_produce(self, req, v, cid):
        R = CLASSES[0][1]
        responses = []
        for td in req.topic_data:
            name = self.topic_name(td.name, td.topic_id)
            parts = []
            for pd in td.partition_data:
                records = pd.records
                if records is not None and not isinstance(records, (bytes, bytearray, memoryview)):
                    records = records.buffer() if hasattr(records, "buffer") else bytes(records)
                base = self.log_for(name, pd.index).append(bytes(records or b""))
                parts.append(R.TopicProduceResponse.PartitionProduceResponse(
                    index=pd.index, error_code=NONE, base_offset=base, log_append_time_ms=-1,
                    log_start_offset=0, record_errors=[], error_message=None))
            responses.append(R.TopicProduceResponse(name=td.name, topic_id=td.topic_id,
                                                    partition_responses=parts))
        if req.acks == 0:
            return None
        return self.resp(0, v, responses=responses, throttle_time_ms=0)

    async def on_fetch(self, req, v, cid):
        R = CLASSES[1][1]
        T = R.FetchableTopicResponse

        def build():
            have_data = False
            responses = []
            for ft in req.topics:
                name = self.topic_name(ft.topic, ft.topic_id)
                parts = []
                for fp in ft.partitions:
                    plog = self.log_for(name, fp.partition)
                    data = plog.read(fp.fetch_offset, fp.partition_max_bytes)
                    have_data = have_data or bool(data)
                    parts.append(T.PartitionData(
                        partition_index=fp.partition, error_code=NONE,
                        high_watermark=plog.next_offset, last_stable_offset=plog.next_offset,
                        log_start_offset=0, aborted_transactions=[], preferred_read_replica=-1,
                        records=data))
                responses.append(T(topic=ft.topic, topic_id=ft.topic_id, partitions=parts))
            return have_data, responses

        have_data, responses = build()
        if not have_data and req.max_wait_ms > 0:
            # Long poll, bounded so the capture finishes quickly.
            await asyncio.sleep(min(req.max_wait_ms, 500) / 1000.0)
            have_data, responses = build()
        return self.resp(1, v, throttle_time_ms=0, error_code=NONE, session_id=0,
                         responses=responses, node_endpoints=[])

    def on_list_offsets(self, req, v, cid):
        R = CLASSES[2][1]
        topics = []
        for t in req.topics:
            parts = []
            for p in t.partitions:
                plog = self.log_for(t.name, p.partition_index)
                # -2 = earliest, -1 = latest, -3 = max timestamp, else by time: give 0.
                offset = plog.next_offset if p.timestamp == -1 else 0
                parts.append(R.ListOffsetsTopicResponse.ListOffsetsPartitionResponse(
                    partition_index=p.partition_index, error_code=NONE, old_style_offsets=[offset],
                    timestamp=-1, offset=offset, leader_epoch=LEADER_EPOCH))
            topics.append(R.ListOffsetsTopicResponse(name=t.name, partitions=parts))
        return self.resp(2, v, throttle_time_ms=0, topics=topics)

    def on_offset_for_leader_epoch(self, req, v, cid):
        R = CLASSES[23][1]
        T = R.OffsetForLeaderTopicResult
        topics = [T(topic=t.topic, partitions=[T.EpochEndOffset(
            error_code=NONE, partition=p.partition, leader_epoch=LEADER_EPOCH,
            end_offset=self.log_for(t.topic, p.partition).next_offset) for p in t.partitions])
            for t in req.topics]
        return self.resp(23, v, throttle_time_ms=0, topics=topics)

    def on_find_coordinator(self, req, v, cid):
        R = CLASSES[10][1]
        keys = req.coordinator_keys if v >= 4 else [req.key]
        return self.resp(10, v, throttle_time_ms=0, error_code=NONE, error_message=None,
                         node_id=NODE_ID, host=HOST, port=self.port,
                         coordinators=[R.Coordinator(key=k, node_id=NODE_ID, host=HOST, port=self.port,
                                                     error_code=NONE, error_message=None) for k in keys])

    def on_join_group(self, req, v, cid):
        R = CLASSES[11][1]
        if not req.member_id and v >= 4:
            # KIP-394: first join without a member id gets one assigned.
            self.member_seq += 1
            member_id = f"{cid or 'member'}-{self.member_seq:08d}-0000-0000-0000-000000000000"
            return self.resp(11, v, throttle_time_ms=0, error_code=MEMBER_ID_REQUIRED, generation_id=-1,
                             protocol_type=None, protocol_name=None, leader="", skip_assignment=False,
                             member_id=member_id, members=[])
        member_id = req.member_id
        if not member_id:
            self.member_seq += 1
            member_id = f"{cid or 'member'}-{self.member_seq:08d}-0000-0000-0000-000000000000"
        group = self.groups.setdefault(req.group_id, {"generation": 0, "assignments": {}})
        group["generation"] += 1
        proto = req.protocols[0]
        return self.resp(11, v, throttle_time_ms=0, error_code=NONE, generation_id=group["generation"],
                         protocol_type=req.protocol_type, protocol_name=proto.name, leader=member_id,
                         skip_assignment=False, member_id=member_id,
                         members=[R.JoinGroupResponseMember(member_id=member_id,
                                                            group_instance_id=req.group_instance_id,
                                                            metadata=proto.metadata)])

    def on_sync_group(self, req, v, cid):
        group = self.groups.setdefault(req.group_id, {"generation": 0, "assignments": {}})
        for a in req.assignments:
            group["assignments"][a.member_id] = a.assignment
        assignment = group["assignments"].get(req.member_id, b"")
        return self.resp(14, v, throttle_time_ms=0, error_code=NONE, protocol_type=req.protocol_type,
                         protocol_name=req.protocol_name, assignment=assignment)

    def on_heartbeat(self, req, v, cid):
        return self.resp(12, v, throttle_time_ms=0, error_code=NONE)

    def on_leave_group(self, req, v, cid):
        R = CLASSES[13][1]
        members = [R.MemberResponse(member_id=m.member_id, group_instance_id=m.group_instance_id,
                                    error_code=NONE) for m in (req.members or [])]
        return self.resp(13, v, throttle_time_ms=0, error_code=NONE, members=members)

    def on_offset_commit(self, req, v, cid):
        R = CLASSES[8][1]
        T = R.OffsetCommitResponseTopic
        topics = [T(name=t.name, topic_id=t.topic_id, partitions=[
            T.OffsetCommitResponsePartition(partition_index=p.partition_index, error_code=NONE)
            for p in t.partitions]) for t in req.topics]
        return self.resp(8, v, throttle_time_ms=0, topics=topics)

    def on_offset_fetch(self, req, v, cid):
        R = CLASSES[9][1]
        if v >= 8:
            G = R.OffsetFetchResponseGroup
            T = G.OffsetFetchResponseTopics
            groups = [G(group_id=g.group_id, error_code=NONE, topics=[
                T(name=t.name, topic_id=t.topic_id, partitions=[T.OffsetFetchResponsePartitions(
                    partition_index=p, committed_offset=-1, committed_leader_epoch=-1, metadata="",
                    error_code=NONE) for p in t.partition_indexes]) for t in (g.topics or [])])
                for g in req.groups]
            return self.resp(9, v, throttle_time_ms=0, groups=groups)
        T = R.OffsetFetchResponseTopic
        topics = [T(name=t.name, partitions=[T.OffsetFetchResponsePartition(
            partition_index=p, committed_offset=-1, committed_leader_epoch=-1, metadata="",
            error_code=NONE) for p in t.partition_indexes]) for t in (req.topics or [])]
        return self.resp(9, v, throttle_time_ms=0, topics=topics, error_code=NONE)


def parse_caps(text):
    caps = {}
    for item in filter(None, (text or "").split(",")):
        name, ver = item.split("=")
        key = {snake(n): k for k, n in API_NAMES.items()}[name.strip()]
        caps[key] = int(ver)
    return caps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0, help="TCP port (0 = pick a free one)")
    ap.add_argument("--out", required=True, help="directory for captured frames")
    ap.add_argument("--partitions", type=int, default=1, help="partitions per topic")
    ap.add_argument("--cap", dest="caps", type=parse_caps, default={},
                    help="max versions to advertise, e.g. 'produce=9,fetch=12'")
    ap.add_argument("--max-per-api", type=int, default=100,
                    help="stop saving frames of one api+version after this many")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s fake_broker %(message)s", stream=sys.stderr)
    try:
        asyncio.run(Broker(args).serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
