#!/usr/bin/env python3
"""Pick golden fixtures out of a fake-broker capture and describe them.

  select_fixtures.py select --raw PROFILE=RAWDIR... --client NAME --dest GOLDENDIR
      Reads each RAWDIR/index.jsonl (written by fake_broker.py), keeps a few frames
      per api+version (one Produce per client id, i.e. per codec; the whole
      JoinGroup/SyncGroup sequence; otherwise distinct bodies only), copies them
      to GOLDENDIR/NAME/<api>_v<version>_<nnn>.bin renumbered in capture order,
      and writes GOLDENDIR/NAME/manifest.json describing each one: request
      header, kafka-python's decoding of the body, and for Produce the record
      batches parsed and decompressed independently here (CRC-32C checked).
      Fails if a Produce fixture does not hold exactly the records the capture
      clients were asked to send, with the codec they were asked to use.

  select_fixtures.py readme --dest GOLDENDIR --versions VERSIONS.json
      Writes GOLDENDIR/README.md from the manifests.
"""

import argparse
import gzip
import hashlib
import json
import os
import shutil
import struct
import sys
import uuid

import cramjam
import kafka.protocol.admin  # noqa: F401
import kafka.protocol.consumer  # noqa: F401
import kafka.protocol.metadata  # noqa: F401
import kafka.protocol.producer  # noqa: F401

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_broker import CLASSES, topic_uuid  # noqa: E402

# What the capture clients were asked to send (must match capture_kafka_python.py
# and integration-tests/golden-capture/src/main.rs).
TOPIC = "golden-topic"
PARTITION = 0
RECORDS = [(b"key-%d" % i, b"value-%d" % i) for i in range(1, 11)]
HEADER = (b"golden-header", b"header-value")
TIMESTAMP_MS = 1700000000000
GROUP = "golden-group"
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}

KEEP = {  # api -> max fixtures per version (default 2)
    "Produce": 5, "JoinGroup": 3, "SyncGroup": 2, "Fetch": 3, "Metadata": 3,
}


# ----------------------------------------------------------------- helpers
def crc32c(data):
    table = crc32c.table
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_table():
    poly = 0x82F63B78
    out = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        out.append(c)
    return out


crc32c.table = _crc_table()


def read_varint(buf, pos):
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos  # zigzag


def read_varbytes(buf, pos):
    n, pos = read_varint(buf, pos)
    if n < 0:
        return None, pos
    return bytes(buf[pos:pos + n]), pos + n


def decompress(codec, data):
    """Returns (plain bytes, framing description)."""
    if codec == 0:
        return data, None
    if codec == 1:
        return gzip.decompress(data), "gzip member (RFC 1952)"
    if codec == 2:
        if data[:8] == b"\x82SNAPPY\x00":
            out, pos = b"", 16
            while pos < len(data):
                (n,) = struct.unpack_from(">i", data, pos)
                out += bytes(cramjam.snappy.decompress_raw(data[pos + 4:pos + 4 + n]))
                pos += 4 + n
            return out, "xerial snappy framing (16-byte header, then [int32 len][raw snappy block]...)"
        return bytes(cramjam.snappy.decompress_raw(data)), "raw snappy block (no framing)"
    if codec == 3:
        return bytes(cramjam.lz4.decompress(data)), "LZ4 frame format"
    if codec == 4:
        return bytes(cramjam.zstd.decompress(data)), "zstd frame"
    raise ValueError(f"unknown codec {codec}")


def parse_batches(records):
    """Parses a v2 RecordBatch sequence (Kafka's documented on-wire format)."""
    out = []
    pos = 0
    while pos < len(records):
        (base_offset, batch_len, leader_epoch, magic, crc, attrs, last_delta, base_ts, max_ts,
         pid, pepoch, base_seq, count) = struct.unpack_from(">qiibIhiqqqhii", records, pos)
        end = pos + 12 + batch_len
        body = records[pos + 61:end]
        codec = attrs & 0x07
        plain, framing = decompress(codec, bytes(body))
        recs, rpos = [], 0
        for _ in range(count):
            length, rpos = read_varint(plain, rpos)
            rend = rpos + length
            rattrs = plain[rpos]
            ts_delta, p = read_varint(plain, rpos + 1)
            off_delta, p = read_varint(plain, p)
            key, p = read_varbytes(plain, p)
            value, p = read_varbytes(plain, p)
            nh, p = read_varint(plain, p)
            headers = []
            for _ in range(nh):
                hk, p = read_varbytes(plain, p)
                hv, p = read_varbytes(plain, p)
                headers.append([hk.decode(), None if hv is None else hv.decode()])
            assert p == rend, "record length mismatch"
            recs.append({"length": length, "attributes": rattrs, "timestamp_delta": ts_delta,
                         "offset_delta": off_delta, "key": key.decode() if key is not None else None,
                         "value": value.decode() if value is not None else None, "headers": headers})
            rpos = rend
        assert rpos == len(plain), "trailing bytes after records"
        out.append({
            "base_offset": base_offset, "batch_length": batch_len,
            "partition_leader_epoch": leader_epoch, "magic": magic,
            "crc": crc, "crc_ok": crc32c(records[pos + 21:end]) == crc,
            "attributes": attrs, "compression": CODEC_NAMES[codec],
            "compression_framing": framing,
            "timestamp_type": "LogAppendTime" if attrs & 0x08 else "CreateTime",
            "is_transactional": bool(attrs & 0x10), "is_control": bool(attrs & 0x20),
            "last_offset_delta": last_delta, "base_timestamp": base_ts, "max_timestamp": max_ts,
            "producer_id": pid, "producer_epoch": pepoch, "base_sequence": base_seq,
            "record_count": count, "compressed_size": len(body) if codec else None,
            "uncompressed_size": len(plain), "records": recs,
        })
        pos = end
    return out


def jsonable(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"hex": bytes(v).hex()}
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set)):
        return [jsonable(x) for x in v]
    return v


class _Reader:
    def __init__(self, data):
        self.data, self.pos = bytes(data), 0

    def unpack(self, fmt):
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self):
        n = self.unpack(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes_(self):
        n = self.unpack(">i")
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def array(self, item):
        n = self.unpack(">i")
        return None if n < 0 else [item() for _ in range(n)]

    def done(self):
        return self.pos >= len(self.data)


def consumer_protocol(kind, data):
    """Decodes the classic consumer protocol's Subscription / Assignment bytes
    (JoinGroup protocol metadata, SyncGroup assignment), per Kafka's
    ConsumerProtocolSubscription / ConsumerProtocolAssignment definitions."""
    if not data:
        return None
    r = _Reader(data)
    topic_partitions = lambda: {"topic": r.string(), "partitions": r.array(lambda: r.unpack(">i"))}
    try:
        out = {"version": r.unpack(">h")}
        if kind == "subscription":
            out["topics"] = r.array(r.string)
            out["user_data"] = r.bytes_()
            if out["version"] >= 1 and not r.done():
                out["owned_partitions"] = r.array(topic_partitions)
            if out["version"] >= 2 and not r.done():
                out["generation_id"] = r.unpack(">i")
            if out["version"] >= 3 and not r.done():
                out["rack_id"] = r.string()
        else:
            out["assigned_partitions"] = r.array(topic_partitions)
            out["user_data"] = r.bytes_()
        out["trailing_bytes"] = len(r.data) - r.pos
        return jsonable(out)
    except Exception as e:  # keep going: the hex is still in the manifest
        return {"error": repr(e)}


def decode(entry, body):
    req_cls, _ = CLASSES[entry["api_key"]]
    v = entry["version"]
    req = req_cls[v].decode(body, header=True)
    # Cross-check: kafka-python must re-encode its decoding to the very same bytes,
    # so the decoded values in the manifest account for every byte of the frame.
    reencoded = bytes(req.encode(header=True))
    if reencoded != bytes(body):
        raise SystemExit(f"{entry['file']}: kafka-python re-encodes to different bytes "
                         f"({len(reencoded)} vs {len(body)})")
    d = req.to_dict(json=False)
    if entry["api"] == "Produce":
        for td in d["topic_data"]:
            for pd in td["partition_data"]:
                pd["record_batches"] = parse_batches(bytes(pd.pop("records")))
    if entry["api"] == "JoinGroup":
        for p in d["protocols"]:
            p["metadata_decoded"] = consumer_protocol("subscription", p["metadata"])
    if entry["api"] == "SyncGroup":
        for a in d["assignments"]:
            a["assignment_decoded"] = consumer_protocol("assignment", a["assignment"])
    header = {
        "request_header_version": 2 if req_cls.flexible_version_q(v) else 1,
        "request_api_key": req.header.request_api_key,
        "request_api_version": req.header.request_api_version,
        "correlation_id": req.header.correlation_id,
        "client_id": req.header.client_id,
    }
    return header, jsonable(d)


def normalized(body):
    """Body without correlation id and client id (to spot duplicates)."""
    (n,) = struct.unpack_from(">h", body, 8)
    return body[:4] + body[10 + max(n, 0):]


# ------------------------------------------------------------------ select
def select(args):
    entries = []
    for spec in args.raw:
        profile, raw = spec.split("=", 1)
        for line in open(os.path.join(raw, "index.jsonl")):
            e = json.loads(line)
            path = os.path.join(raw, e["file"])
            if os.path.exists(path):
                entries.append(dict(e, profile=profile, path=path))
    keep, seen, per_version, produce_clients = [], set(), {}, set()
    for e in entries:
        body = open(e["path"], "rb").read()
        api, v = e["api"], e["version"]
        limit = KEEP.get(api, 2)
        if per_version.get((api, v), 0) >= limit:
            continue
        if api == "Produce":
            if (e["profile"], e["client_id"]) in produce_clients:
                continue
            produce_clients.add((e["profile"], e["client_id"]))
        elif api not in ("JoinGroup", "SyncGroup"):
            norm = (api, v, normalized(body))
            if norm in seen:
                continue
            seen.add(norm)
        per_version[(api, v)] = per_version.get((api, v), 0) + 1
        keep.append((e, body))

    dest = os.path.join(args.dest, args.client)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    manifest, counts, problems = [], {}, []
    for e, body in keep:
        api, v = e["api"], e["version"]
        n = counts.get((api, v), 0)
        counts[(api, v)] = n + 1
        name = e["file"].rsplit("_", 1)[0] + f"_{n:03d}.bin"
        with open(os.path.join(dest, name), "wb") as f:
            f.write(body)
        header, decoded = decode(e, body)
        item = {"file": name, "api": api, "api_key": e["api_key"], "api_version": v,
                "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                "broker_profile": e["profile"], "scenario": e["client_id"], **header, "body": decoded}
        manifest.append(item)
        if api == "Produce":
            problems += check_produce(item)
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump({"client": args.client, "topic_ids": {TOPIC: str(topic_uuid(TOPIC))},
                   "fixtures": manifest}, f, indent=1)
        f.write("\n")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    missing = []
    for profile in {e["profile"] for e in entries}:
        codecs = {item["scenario"].rsplit("-", 1)[1] for item in manifest
                  if item["api"] == "Produce" and item["broker_profile"] == profile}
        missing += [f"{profile}/{c}" for c in sorted(set(CODEC_IDS) - codecs)]
    if missing:
        print(f"PROBLEM: {args.client}: no Produce fixture for {missing}", file=sys.stderr)
    print(f"{args.client}: kept {len(manifest)} of {len(entries)} frames in {dest}")
    return 1 if problems or missing else 0


def check_produce(item):
    codec = item["scenario"].rsplit("-", 1)[1]
    probs = []
    tds = item["body"]["topic_data"]
    pds = [pd for td in tds for pd in td["partition_data"]]
    if len(tds) != 1 or len(pds) != 1 or pds[0]["index"] != PARTITION:
        probs.append("expected one topic with one partition 0")
    batches = pds[0]["record_batches"]
    if len(batches) != 1:
        return probs + [f"{item['file']}: {len(batches)} batches, expected 1"]
    b = batches[0]
    if b["compression"] != codec:
        probs.append(f"{item['file']}: codec {b['compression']}, expected {codec}")
    if not b["crc_ok"]:
        probs.append(f"{item['file']}: bad CRC")
    got = [(r["key"].encode(), r["value"].encode()) for r in b["records"]]
    if got != RECORDS:
        probs.append(f"{item['file']}: records {got}")
    for i, r in enumerate(b["records"]):
        if (r["offset_delta"], r["timestamp_delta"]) != (i, i) or b["base_timestamp"] != TIMESTAMP_MS:
            probs.append(f"{item['file']}: record {i} deltas/timestamp unexpected")
        if r["headers"] != [[HEADER[0].decode(), HEADER[1].decode()]]:
            probs.append(f"{item['file']}: record {i} headers {r['headers']}")
    return probs


# ------------------------------------------------------------------ readme
def summary(item):
    """One line of the values a test would assert, per api."""
    b = item["body"]
    api = item["api"]

    def topics_of(lst, key="name"):
        return ",".join(str(t.get(key) or t.get("topic_id")) for t in lst or [])

    if api == "ApiVersions":
        return f"client_software_name={b.get('client_software_name')!r} client_software_version={b.get('client_software_version')!r}" if item["api_version"] >= 3 else "(empty body)"
    if api == "Metadata":
        t = b["topics"]
        ts = "null (all topics)" if t is None else "[" + ", ".join(x["name"] or x["topic_id"] for x in t) + "]"
        return f"topics={ts} allow_auto_topic_creation={b.get('allow_auto_topic_creation')}"
    if api == "Produce":
        pd = b["topic_data"][0]["partition_data"][0]
        bt = pd["record_batches"][0]
        size = f", {bt['uncompressed_size']}→{bt['compressed_size']} bytes" if bt["compressed_size"] else ""
        return (f"acks={b['acks']} timeout_ms={b['timeout_ms']} topic={b['topic_data'][0].get('name') or b['topic_data'][0].get('topic_id')} "
                f"partition={pd['index']}; 1 batch, **{bt['compression']}**{size}, {bt['record_count']} records "
                f"key-1/value-1..key-10/value-10, producer_id={bt['producer_id']} epoch={bt['producer_epoch']} "
                f"base_sequence={bt['base_sequence']}, base_timestamp={bt['base_timestamp']}")
    if api == "Fetch":
        parts = [f"{t.get('topic') or t.get('topic_id')}/{p['partition']}@{p['fetch_offset']}"
                 for t in b["topics"] for p in t["partitions"]]
        return (f"max_wait_ms={b['max_wait_ms']} min_bytes={b['min_bytes']} isolation_level={b.get('isolation_level')} "
                f"session_id={b.get('session_id')} epoch={b.get('session_epoch')} fetch={parts}")
    if api == "ListOffsets":
        parts = [f"{t['name']}/{p['partition_index']} timestamp={p['timestamp']}" for t in b["topics"] for p in t["partitions"]]
        return f"replica_id={b['replica_id']} isolation_level={b.get('isolation_level')} {parts}"
    if api == "FindCoordinator":
        keys = b.get("coordinator_keys") if item["api_version"] >= 4 else [b.get("key")]
        return f"key_type={b.get('key_type')} keys={keys}"
    if api == "JoinGroup":
        protos = [p["name"] for p in b["protocols"]]
        return (f"group_id={b['group_id']} member_id={b['member_id']!r} protocol_type={b['protocol_type']} "
                f"protocols={protos} session_timeout_ms={b['session_timeout_ms']} rebalance_timeout_ms={b.get('rebalance_timeout_ms')}")
    if api == "SyncGroup":
        asg = []
        for a in b["assignments"]:
            d = a.get("assignment_decoded") or {}
            asg.append(f"{a['member_id']}→{[(t.get('topic'), t.get('partitions')) for t in d.get('assigned_partitions', [])]}")
        return f"group_id={b['group_id']} generation_id={b['generation_id']} member_id={b['member_id']!r} assignments={asg}"
    if api == "OffsetFetch":
        if item["api_version"] >= 8:
            g = b["groups"]
            return "groups=" + str([(x["group_id"], [(t.get("name") or t.get("topic_id"), t["partition_indexes"]) for t in x["topics"] or []]) for x in g])
        return f"group_id={b['group_id']} topics={[(t['name'], t['partition_indexes']) for t in b['topics'] or []]}"
    if api == "OffsetCommit":
        parts = [f"{t.get('name') or t.get('topic_id')}/{p['partition_index']}={p['committed_offset']}" for t in b["topics"] for p in t["partitions"]]
        return f"group_id={b['group_id']} generation={b.get('generation_id_or_member_epoch')} member_id={b.get('member_id')!r} {parts}"
    if api == "Heartbeat":
        return f"group_id={b['group_id']} generation_id={b['generation_id']} member_id={b['member_id']!r}"
    if api == "LeaveGroup":
        if item["api_version"] >= 3:
            return f"group_id={b['group_id']} members={[m['member_id'] for m in b['members']]}"
        return f"group_id={b['group_id']} member_id={b['member_id']!r}"
    if api == "InitProducerId":
        return f"transactional_id={b['transactional_id']} transaction_timeout_ms={b['transaction_timeout_ms']}"
    return ""


README_HEAD = """\
# Golden request frames

Raw Kafka **request frames captured from real clients**, for Gregor's protocol
tests: decode each file and assert the values below.

Each `.bin` file is one request frame body exactly as the client wrote it on the
socket, minus the 4-byte size prefix: it starts with the request header
(`request_api_key` int16, `request_api_version` int16, `correlation_id` int32,
`client_id` nullable string, then — header v2, i.e. flexible versions — a tagged
field section), followed by the request body. The file name is
`<api>_v<version>_<nnn>.bin`; `nnn` counts fixtures of that api and version in
capture order.

Generated by `scripts/golden-capture/run.sh` (do not edit by hand; rerun it).
Regenerating produces somewhat different files (which duplicate of a frame is
kept depends on timing; gzip members carry a modification time; the order of
connections moves correlation ids), so tests should take the expected values
from the fixture's `manifest.json` entry or this README, not hard-code hashes
or compressed bytes.

## How they were captured

There is no Kafka here, so `scripts/golden-capture/fake_broker.py` plays a
single-node cluster on 127.0.0.1: it saves every request frame, then answers
just enough for the client to carry on (responses are encoded with
kafka-python's message classes; ApiVersions advertises, for the 14 APIs it
answers, the highest versions those classes define, or less: see broker
profiles below). It is node 1, leader of
every partition, coordinator of every group; every requested topic exists
with 1 partition; produced batches are kept in memory and served back to
fetches, so the consumers really receive the records the producers sent.
JoinGroup v4+ goes through the MEMBER_ID_REQUIRED step first (KIP-394), so
the first JoinGroup of a member has an empty `member_id` and the second
carries the one the broker assigned (`<client_id>-<8 digits>-0000-0000-0000-000000000000`).

```sh
scripts/golden-capture/run.sh   # venv + build + capture + select + this README
```

which does, per client and broker profile (below):

```sh
python3 -m venv target/golden-venv
target/golden-venv/bin/pip install kafka-python==3.0.12 cramjam python-snappy lz4 zstandard
target/golden-venv/bin/python scripts/golden-capture/fake_broker.py --port 0 --out RAW [--cap api=version,...]
#   kafka-python:
target/golden-venv/bin/python scripts/golden-capture/capture_kafka_python.py --bootstrap 127.0.0.1:PORT
#   librdkafka (built from the sources bundled in rdkafka-sys; needs cmake and the curl headers):
(cd integration-tests/golden-capture && cargo build --release)
target/release/golden-capture --bootstrap 127.0.0.1:PORT
#   then, for the client's two captures:
target/golden-venv/bin/python scripts/golden-capture/select_fixtures.py select \\
    --raw latest=RAW1 --raw pre-flexible=RAW2 --client <client> --dest crates/protocol/tests/golden
target/golden-venv/bin/python scripts/golden-capture/select_fixtures.py readme \\
    --dest crates/protocol/tests/golden --versions crates/protocol/tests/golden/versions.json
```

Each client runs twice, against two **broker profiles** (the `broker` column
below):

- `latest`: ApiVersions advertises the highest version of each API that
  kafka-python's message classes define (Produce 13, Fetch 18, Metadata 13,
  ...), so each client uses the newest version it implements: flexible
  versions, request header v2, compact strings, tagged fields.
- `pre-flexible`: every API is capped at its newest non-flexible version
  (ApiVersions 2, Metadata 8, Produce 8, Fetch 11, ListOffsets 5,
  OffsetCommit 7, OffsetFetch 5, FindCoordinator 2, JoinGroup 5, Heartbeat 3,
  LeaveGroup 3, SyncGroup 3, InitProducerId 1, OffsetForLeaderEpoch 3; about a
  Kafka 2.3 broker), so the same scenarios come out in request header v1 and
  classic encodings. The clients first send their newest ApiVersions, get
  UNSUPPORTED_VERSION (answered as a v0 response, as Kafka does) and retry with
  an older one (kafka-python v2, librdkafka v0).

`select` keeps one Produce per codec and a few distinct frames of every other
api+version (duplicates that differ only in correlation id or client id are
dropped), and checks every fixture: kafka-python must decode it and re-encode
its decoding to the identical bytes (so the decoded values in `manifest.json`
account for every byte), and each Produce fixture must hold exactly the records
below, with the requested codec and a valid CRC-32C (the record batches are
parsed and decompressed by `select_fixtures.py` itself, not by kafka-python).

{versions}

## What the clients were asked to send (expected values)

Both clients run the same scenarios, each with its own client id (the
`client_id` in every request header says which scenario sent the frame):

| client id | scenario |
| --- | --- |
| `kp-produce-<codec>` / `rdk-produce-<codec>` | a producer with compression `<codec>` ∈ none, gzip, snappy, lz4, zstd sends 10 records to topic **`golden-topic`**, partition **0**, acks=all, in one batch (linger 500 ms): record *i* (1..10) has key **`key-<i>`**, value **`value-<i>`**, timestamp **1700000000000 + i − 1** (CreateTime) and one header **`golden-header` = `header-value`**. So in the batch: base_timestamp 1700000000000, offset_delta = timestamp_delta = i − 1, last_offset_delta 9. |
| `kp-fetch` / `rdk-fetch` | a consumer assigned (no subscribe) to `golden-topic` partition 0, offset reset earliest, fetch max wait 200 ms, polls until it gets records (it gets the 50 produced ones). librdkafka will not `assign` without a group id, so `rdk-fetch` has `group.id=golden-fetch-group` (it only sends FindCoordinator for it, never JoinGroup); `kp-fetch` has no group. |
| `kp-group` / `rdk-group` | a consumer with group id **`golden-group`** subscribes to `golden-topic` (session timeout 10000 ms, heartbeat interval 1000 ms, auto commit off, offset reset earliest), polls until it gets records, commits synchronously, then closes (LeaveGroup). kafka-python receives all 50 records in its first poll and stays 2.5 s more (Heartbeat), so it commits offset **50**; librdkafka stops after the first record and commits offset **1**. kafka-python's first JoinGroup/SyncGroup round happens before it has the topic's metadata, so its first SyncGroup assigns nothing and it rejoins (generation 2). |

Why 10 records and not one: kafka-python sends a batch uncompressed when
compression does not make it smaller, which is always the case for one tiny
record; ten records with repeated header strings compress with every codec.

Topic ids: Fetch v13+ and Metadata v10+ carry topic ids. The fake broker gives
`golden-topic` the id **`{topic_id}`** (uuid5 of
`gregor-golden/golden-topic` in the URL namespace), so librdkafka's Fetch v16
requests name the topic by that id.

Worth knowing when asserting:

- kafka-python's producer is idempotent by default: it sends InitProducerId
  first, and its batches carry producer_id 1000.. (one per producer, handed out
  by the fake broker in order), epoch 0, base_sequence 0. librdkafka's is not
  (`enable.idempotence=false` by default): producer_id −1, epoch −1,
  base_sequence −1.
- Produce `timeout_ms` is the client's request timeout: 10000 for kafka-python
  (set by the capture script), 30000 for librdkafka (its default).
- librdkafka fetches with isolation_level 1 (read_committed, its default),
  kafka-python with 0. kafka-python asks for a new fetch session (session_id 0,
  session_epoch 0), which the fake broker declines (it answers session_id 0), so
  every kafka-python Fetch looks like that; librdkafka sends session_id 0,
  session_epoch −1 (full fetch, no session).
- Even against the `latest` broker librdkafka uses non-flexible versions (so
  request header v1) for FindCoordinator v2, JoinGroup v5, SyncGroup v3,
  Heartbeat v3 and LeaveGroup v1: that is all it implements.
- ApiVersions v3+ requests use request header v2 although the response header
  of ApiVersions is always v0.

Each `<client>/manifest.json` has, per fixture: the header fields, size,
sha256, kafka-python's decoding of the whole body (bytes as hex) and, for
Produce, the record batches parsed and decompressed (every record's key, value,
headers, deltas; the batch's attributes, producer id/epoch, base sequence,
CRC). For JoinGroup/SyncGroup the consumer-protocol subscription/assignment
bytes are decoded too.
"""


def readme(args):
    versions = json.load(open(args.versions))
    vlines = ["## Client versions", ""]
    for k, v in versions.items():
        vlines.append(f"- {k}: {v}")
    parts = [README_HEAD.replace("{versions}", "\n".join(vlines))
             .replace("{topic_id}", str(topic_uuid(TOPIC)))]
    for client in sorted(os.listdir(args.dest)):
        mpath = os.path.join(args.dest, client, "manifest.json")
        if not os.path.exists(mpath):
            continue
        m = json.load(open(mpath))
        parts.append(f"\n## `{client}/` fixtures\n")
        parts.append("| file | broker | header v | corr id | client id | what is in it |")
        parts.append("| --- | --- | --- | --- | --- | --- |")
        for it in m["fixtures"]:
            parts.append(f"| `{it['file']}` | {it['broker_profile']} | {it['request_header_version']} | "
                         f"{it['correlation_id']} | `{it['client_id']}` | {summary(it).replace('|', '/')} |")
        notes = client_notes(m)
        if notes:
            parts.append("")
            parts.extend(notes)
    with open(os.path.join(args.dest, "README.md"), "w") as f:
        f.write("\n".join(parts) + "\n")
    print(f"wrote {os.path.join(args.dest, 'README.md')}")


def client_notes(m):
    notes = []
    framings = {}
    for it in m["fixtures"]:
        if it["api"] != "Produce":
            continue
        b = it["body"]["topic_data"][0]["partition_data"][0]["record_batches"][0]
        if b["compression_framing"]:
            framings[b["compression"]] = b["compression_framing"]
    if framings:
        notes.append("Compression framing inside the batches: " +
                     "; ".join(f"{k}: {v}" for k, v in framings.items()) + ".")
    versions = sorted({(it["api"], it["api_version"]) for it in m["fixtures"]})
    notes.append("")
    notes.append("Versions this client chose against the fake broker: " +
                 ", ".join(f"{a} v{v}" for a, v in versions) + ".")
    return notes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("select")
    s.add_argument("--raw", required=True, action="append",
                   help="PROFILE=DIR, a fake-broker output dir (repeatable)")
    s.add_argument("--client", required=True)
    s.add_argument("--dest", required=True)
    r = sub.add_parser("readme")
    r.add_argument("--dest", required=True)
    r.add_argument("--versions", required=True)
    args = ap.parse_args()
    return select(args) if args.cmd == "select" else readme(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
