"""Write the seed corpus (``tests/fuzz/corpus/NAME/*``): small valid and near-valid inputs.

    python tests/fuzz/make_corpus.py      # rewrites the seed files (deterministic)

Kept small on purpose (a few dozen files of under 1 KiB per harness): the fuzzer grows
its own corpus under ``$FUZZ_WORKDIR``; only seeds and pinned findings are committed.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import msgpack

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harnesses import encode_input  # noqa: E402

EVENTS = [
    {"message": "My first event", "nested": {"values": 123}},
    {"dt": "2022-12-31T13:45:59.123456Z", "level": "info", "msg": "h\u00e9llo \u2713"},
    {"dt": 1672490759123, "a": [1, 2.5, None, True, False], "s": "\\\"\n\t\u0000"},
    {"dt": 1672490759.5, "x": {"y": {"z": []}}, "e": "\ud83d\ude00"},
]
JSON_BODIES = [
    b'{"message":"My first event","nested":{"values":123}}',
    b'[{"a":1},{"b":"2","dt":"2023-08-09 07:03:30+00:00"}]',
    b' \r\n[ {"dt" : 1672490759 , "k":[1,-2.5e3,true,null,{}]} ]\n',
    b'\xef\xbb\xbf{"bom":1}',
    b'[{"esc":"\\u00e9\\ud83d\\ude00\\n\\\\\\"","n":-0.0e-1}]',
    b'{"deep":[[[[[[[[{"a":[[]]}]]]]]]]]}',
    b'[]',
    b'{"a":1,"a":2,"dt":"x","dt":"20221231T134559Z"}',
]
NDJSON_BODIES = [
    b'{"message":"A","dt":"2023-08-09 07:03:30+00:00"}\n{"message":"B","dt":1672490759123}\n',
    b'{"a":1}\r\n\r\n  \n{"b":[1,{"c":null}]}',
    b'{"a":1}\n{"b":tru}\n{"c":3}\n',
    b'',
    b'\xef\xbb\xbf{"x":"\\u0041"}\n',
]
MSGPACK_BODIES = [
    msgpack.packb(EVENTS[:2]),
    msgpack.packb(EVENTS[0]),
    msgpack.packb([{"dt": msgpack.Timestamp(1672490759, 123456789), "b": b"\x00\xff"}],
                  use_bin_type=True),
    msgpack.packb([{"dt": msgpack.Timestamp(1672490759, 0)}, {"dt": msgpack.Timestamp(2**34, 1)},
                   {"e": msgpack.ExtType(5, b"xyz"), "f": 1.5, "i": -2**63, "u": 2**64 - 1}]),
    b"\x91\xc1", b"\x81\xa2dt\xcb\x41\xd8\xec\x5f\x51\xc0\x00\x00",
    msgpack.packb([{"k": [[[[[1]]]]]}] * 3),
]
DT_VALUES = [b"2022-12-31T13:45:59.123456789Z", b"2022-12-31 13:45:59+02:00", b"20221231T134559Z",
             b"2022-12-31T13:45:59,5+0530", b"2016-12-31T23:59:60Z", b"1672490759123",
             b"-1672490759.123456", b"2022-12-31", b" 2022-12-31T24:00:00z ", b"1e9", b"9" * 30]


JSON_BUILDER_SEEDS = [
    b'{"dt":"2024-05-06T07:08:09.123Z","level":"info","n":-12,"f":1.5e-3,"ok":true,"x":null}',
    b'[1, -0, -0.0, 1e400, 18446744073709551615, 18446744073709551616, 0.1, 5e-324]',
    b'{"a":"\\u00e9\\ud83d\\ude00\\n","a":"last","b":["\xc3\xa9", {"c": {}}]}',
    b'"\\ud800" ',
    b' \t[[[[[[[[[[{"deep":[]}]]]]]]]]]] ',
    b'{"k":"\xff","m":01}',
]


def write(name: str, inputs) -> None:
    folder = HERE / "corpus" / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name.startswith("seed-"):
            old.unlink()
    for data in inputs:
        (folder / ("seed-" + hashlib.sha1(data).hexdigest()[:12])).write_bytes(data)


def main() -> None:
    cuts = [(), (1,), (3, 9, 10), (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)]
    write("decode_json", [encode_input(b, opt) for b in JSON_BODIES for opt in (0, 1)])
    write("decode_ndjson", [encode_input(b, opt) for b in NDJSON_BODIES for opt in (0, 8, 13)])
    write("decode_msgpack", [encode_input(b, opt) for b in MSGPACK_BODIES for opt in (0, 2)])
    for enc, (i, ctype_bits) in zip(("gzip", "deflate", "zstd", "br"), enumerate((0, 1, 2, 0))):
        from harnesses import _compress
        seeds = []
        for body, bits in [(JSON_BODIES[1], 0), (NDJSON_BODIES[0], 1), (MSGPACK_BODIES[0], 2)]:
            opt = bits << 5
            seeds.append(encode_input(body, opt | 16, cuts[1]))              # compressed here
            seeds.append(encode_input(_compress(enc, body, 1), opt, cuts[2]))  # compressed bytes
        seeds.append(encode_input(_compress(enc, NDJSON_BODIES[1], 0), (1 << 5) | 3))
        write(f"decode_{enc}", seeds)
    stream = []
    for bits, bodies in ((0, JSON_BODIES), (1, NDJSON_BODIES), (2, MSGPACK_BODIES)):
        for j, body in enumerate(bodies[:4]):
            stream.append(encode_input(body, (bits << 5) | (j & 4) | (8 if bits == 1 else 0),
                                       cuts[j % 4]))
    write("stream", stream)
    split = []
    for bits, bodies in ((0, JSON_BODIES), (1, NDJSON_BODIES), (2, MSGPACK_BODIES)):
        for j, body in enumerate(bodies[:4]):
            split.append(encode_input(body, (bits << 5) | 16 | (j & 1), cuts[j % 3]))
    write("split", split)
    dts = [bytes([0]) + v for v in DT_VALUES] + [bytes([1]) + DT_VALUES[0]]
    dts += [bytes([2]) + (1672490759123456789).to_bytes(16, "little", signed=True),
            bytes([3]) + b"\x00\x00\x00\x1f\xa7\xec\xd8\x41",
            bytes([4]) + (1672490759).to_bytes(8, "little") + (5).to_bytes(4, "little")]
    write("parse_dt", dts)
    val = []
    for b in JSON_BODIES[:6]:
        val.append(bytes([0, 255]) + b.strip())
    for b in MSGPACK_BODIES[1:4]:
        val.append(bytes([16, 255]) + b)
    val.append(bytes([16, 2]) + b"\x81\xa1a\x91\x91\x01")
    write("validators", val)
    write("json_builder", JSON_BUILDER_SEEDS)
    ex = [
        bytes([0, 2, 0, 8]) + b'[{"message":"x"}]',
        bytes([0, 2, 1, 8]) + b'{"a":1}\n{"b":2}\n',
        bytes([0, 2, 2, 8]) + msgpack.packb([{"a": 1}]),
        bytes([1, 2, 0, 10]) + b'[{"timestamp":1672490759123,"sourceId":"s","eventName":"e","x":1}]',
        bytes([1, 1, 0]) + b'[{"timestamp":"1","sourceId":3}]',
        bytes([3, 1, 0]) + b'{"status":"offline"}',
        bytes([2, 0, 0]), bytes([5, 0, 0]), bytes([6, 0, 0]),
        bytes([1, 0xA9, 0]) + b"not-a-number\n[]",
    ]
    write("exchange", ex)
    deep: object = {"leaf": b"\x00"}
    for _ in range(300):
        deep = {b"k": [deep]}
    rows = [
        encode_input(b"\x81\xc4\x01k\x01", 2 << 5),                             # a bin key
        encode_input(b"\x81\xa1a\xc7\x0c\xff" + (0).to_bytes(4, "big")              # year 31690
                     + (10**12).to_bytes(8, "big", signed=True), 2 << 5),
        encode_input(msgpack.packb([{"t": msgpack.Timestamp(-62135596800, 0)},      # 0001-01-01
                                    {"t": msgpack.Timestamp(-62135596801, 999999999)},
                                    {"t": msgpack.Timestamp(253402300799, 1)},     # 9999-12-31
                                    {"t": msgpack.Timestamp(253402300800, 0)}]), 2 << 5),
        encode_input(msgpack.packb({"aw==": 1, b"k": 2, "x": msgpack.ExtType(1, b"\xff"),
                                    "f": float("nan"), "i": float("-inf")}, use_bin_type=True),
                     2 << 5, (3,)),
        encode_input(msgpack.packb(deep, use_bin_type=True), (2 << 5) | 16),
        encode_input(JSON_BODIES[5], 16),
        encode_input(NDJSON_BODIES[0], 1 << 5),
        encode_input(MSGPACK_BODIES[3], 2 << 5),
    ]
    write("stored_row", rows)
    shipper_seeds()


def shipper_seeds() -> None:
    """Seeds of the shipper-protocol harnesses (shipper_harnesses.py)."""
    import gzip
    import json
    import sys
    sys.path.insert(0, str(HERE.parent))
    from helpers import field, loki_entry, loki_push
    from fastingest.snappy import compress_block

    kv = lambda k, v: field(1, k) + field(2, field(1, v))  # noqa: E731
    record = (field(1, (1796544182426450500).to_bytes(8, "little"), 1) + field(2, 9, 0)
              + field(3, "INFO") + field(5, field(1, "hello")) + field(6, kv("k", "v"))
              + field(8, 1, 5) + field(9, bytes(range(16))) + field(10, bytes(range(8))))
    nested = field(5, field(6, field(1, kv("a", "b")) + field(1, field(1, "n") + field(2, field(3, 5, 0)))))
    otlp = field(1, field(1, field(1, kv("service.name", "svc")))
                 + field(2, field(1, field(1, "lib") + field(2, "1")) + field(2, record)
                         + field(2, field(5, nested))))
    write("otlp_protobuf", [bytes([0, 0]) + otlp, bytes([1, 0]) + otlp, bytes([6, 0]) + otlp[:40],
                            bytes([0, 0]) + b"\x0a\x02\x12\x00", bytes([3, 0]) + field(1, field(2, field(2, b"\x0b")))])
    push = loki_push([('{app="web", env="prod"}', [loki_entry(1796544182, 5, "line", [("k", "v")]),
                                                   loki_entry(0, 0, "x")]), ('{a="b"}', [])])
    write("loki_protobuf", [bytes([0, 0]) + push, bytes([1, 0]) + push, bytes([0, 0]) + push[:25],
                            bytes([0, 0]) + loki_push([("{}", [])]), bytes([2, 0]) + loki_push([('{a="1"}', [loki_entry(1, 0, "y" * 80)])])])
    write("snappy", [bytes([0, 0]) + compress_block(push), bytes([2, 0]) + compress_block(b"a" * 500),
                     bytes([0, 0]) + b"\x05abc", bytes([0, 0]) + b"\xff\xff\xff\xff\x0f", bytes([0, 0])])
    otlp_json = json.dumps({"resourceLogs": [{"resource": {"attributes": [{"key": "s", "value": {"stringValue": "v"}}]},
                                             "scopeLogs": [{"scope": {"name": "n"}, "logRecords": [
                                                 {"timeUnixNano": "1796544182426450500", "body": {"kvlistValue": {"values": [
                                                     {"key": "a", "value": {"arrayValue": {"values": [{"intValue": "5"}]}}}]}},
                                                  "traceId": "000102030405060708090A0B0C0D0E0F", "severityNumber": 9}]}]}]}).encode()
    loki_json = json.dumps({"streams": [{"stream": {"app": "x", "n": 5}, "values": [["1", "l", {"k": "v"}], None]},
                                        {"labels": '{a="b"}', "entries": [{"ts": "2026-12-06T08:02:58Z", "line": "x"}]}]}).encode()
    write("shipper_json", [bytes([0, 0]) + otlp_json, bytes([1, 0]) + otlp_json, bytes([0, 0]) + loki_json,
                           bytes([2, 0]) + loki_json, bytes([0, 0]) + b'{"streams":[]}'])
    hec = b'{"event": "a", "time": 1796544182.4264505}{"event": {"x": 1}, "fields": {"f": "v"}} {"event": "b"}'
    write("hec", [bytes([0, 20]) + hec, bytes([1, 7]) + hec, bytes([0, 3]) + b'{"event":""}',
                  bytes([128, 5]) + b"line one\r\nline two\n\nthree", bytes([0, 0]) + b"[1]",
                  # the concatenated-JSON scanner's edges: a BOM, "}{" inside a string,
                  # escapes and nesting across objects, an object cut off at the end
                  bytes([0, 9]) + b'\xef\xbb\xbf{"event":"}{"}\r\n{"event":["\\"",{"a":[]}]}',
                  bytes([1, 30]) + b'{"event":{"a":{"b":[1]}}}{"event":"' + b"x" * 30 + b'"}',
                  bytes([0, 12]) + b'{"event":"a"} {"event":"b\\u00e9"}{"event":'])
    bulk = (b'{"index":{"_index":"logs","_id":"x"}}\n{"@timestamp":"2026-12-06T08:02:58Z","m":1}\n'
            b'{"create":{}}\n{"m":2}\n{"delete":{"_id":"1"}}\n{"update":{"_id":"1"}}\n{"doc":{}}\n')
    write("bulk", [bytes([0, 30]) + bulk, bytes([1, 9]) + bulk, bytes([0, 0]) + b'{"index":{}}\n"x"\n',
                   bytes([2, 4]) + b'{"foo":{}}\n', bytes([0, 2]) + b'{"index":{}}\n{}'])
    gz = gzip.compress(bulk)
    write("shipper_exchange", [
        bytes([0, 2, 4, 0]) + otlp, bytes([1, 2, 2, 6]) + bulk, bytes([3, 2, 2, 5]) + loki_json,
        bytes([3, 2, 2, 4]) + compress_block(push), bytes([5, 1, 1]) + hec, bytes([6, 1, 1]) + b"raw line\n",
        bytes([7, 1, 2]), bytes([1, 3, 2, 6, 7]) + gz, bytes([9, 0, 0]), bytes([0x5B, 1, 1]) + b"x\n"])


if __name__ == "__main__":
    main()
