#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets into fuzz/corpus/<target>/ (gitignored) from the
reference vectors in ../shared/spec/vectors/ (or the directory given as the first argument).

    python3 fuzz/gen_seeds.py [VECTORS_DIR]

Every seed is derived from the vectors at run time; nothing is committed. See README.md for the
input layout (control byte etc.) each target expects.
"""
import hashlib
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VEC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "spec", "vectors")
OUT = os.path.join(HERE, "corpus")


def load(name):
    with open(os.path.join(VEC, name)) as f:
        return json.load(f)


def h(s):
    return bytes.fromhex(s)


def be16(b):
    return struct.pack(">H", len(b)) + b


counts = {}


def seed(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1


keys = load("keys.json")
xk = load("noise_xk.json")
kk = load("noise_kk.json")
objs = load("dmsg_objects.json")
disc = load("disc_entry.json")
trace = load("live_trace.json")

# --- gob_decode: gob values, signed objects, pty captures (one stream per session direction).
for o in objs["objects"]:
    seed("gob_decode", h(o["gob"]))
    seed("gob_decode", h(o["signed_object"]))
for fname in ("pty-gob-capture-2023.txt", "pty-gob-shapes-2026.txt"):
    streams = {}
    with open(os.path.join(VEC, fname)) as f:
        for line in f:
            m = re.match(r"^(?:(S\d+) )?(C>H|H>C) ([0-9a-f]+)\s*$", line)
            if m:
                key = (m.group(1), m.group(2))
                streams.setdefault(key, b"")
                streams[key] += h(m.group(3))
                seed("gob_decode", h(m.group(3)))
    for data in streams.values():
        seed("gob_decode", data)

# --- noise_frame: control byte || frames (see the target's doc for the control bits).
def frames(vec, sender):
    return b"".join(h(f["wire_bytes"]) for f in vec["transport_frames"] if f["from"] == sender)

for ctl_base, data in ((0x00, frames(xk, "initiator")), (0x20, frames(kk, "initiator"))):
    for shift in (0, 3, 17):
        seed("noise_frame", bytes([ctl_base | shift]) + data)
        seed("noise_frame", bytes([ctl_base | 0x80 | shift]) + data)
hops = [h(r["wire_bytes"]) for r in objs["relay_wire_sequence"]]
for ctl_base, data in ((0x40, hops[0]), (0x60, hops[1])):
    for shift in (0, 5, 17):
        seed("noise_frame", bytes([ctl_base | shift]) + data)

# --- noise_handshake: control byte || BE16-prefixed messages (then transport frames).
def msgs(vec, sender):
    return [h(m["noise_message"]) for m in vec["handshake_messages"] if m["from"] == sender]

seed("noise_handshake", bytes([0]) + b"".join(be16(m) for m in msgs(xk, "initiator")) + frames(xk, "initiator"))
seed("noise_handshake", bytes([1]) + b"".join(be16(m) for m in msgs(kk, "initiator")) + frames(kk, "initiator"))
seed("noise_handshake", bytes([2]) + b"".join(be16(m) for m in msgs(xk, "responder")) + frames(xk, "responder"))
seed("noise_handshake", bytes([3]) + b"".join(be16(m) for m in msgs(kk, "responder")) + frames(kk, "responder"))
seed("noise_handshake", bytes([4]) + msgs(xk, "initiator")[0])
seed("noise_handshake", bytes([5]) + msgs(kk, "initiator")[0])
seed("noise_handshake", bytes([6]) + msgs(xk, "responder")[0])
seed("noise_handshake", bytes([7]) + msgs(kk, "responder")[0])

# --- yamux_frame: control byte || the plaintext yamux bytes of each live-trace TCP direction
# (the segments after the noise XK handshake frames).
for conn in trace["connections"]:
    for direction in ("c2s", "s2c"):
        data = b"".join(h(seg["hex"]) for seg in conn["tcp_segments_in_order"] if seg["dir"] == direction)
        skip = sum(2 + it["len_prefix"] for it in conn["parsed"].get(direction, []) if "noise_handshake_frame" in it)
        data = data[skip:]
        if data:
            seed("yamux_frame", bytes([0x11]) + data)
            seed("yamux_frame", bytes([0x03]) + data)
seed("yamux_frame", bytes([0x11, 0, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3]) + b"abc")

# --- disc_entry: entry JSON texts.
for e in disc["entries"] + disc["edge_cases"]:
    seed("disc_entry", e["entry_json"].encode())
for v in trace["redis_snapshot"].values():
    if v["type"] == "string":
        seed("disc_entry", v["value"].encode())

# --- cipher_keys: keys, sig || hash, addresses.
for k in keys["keys"]:
    seed("cipher_keys", h(k["public_key"]))
    seed("cipher_keys", k["public_key"].encode())
    seed("cipher_keys", (k["public_key"] + ":80").encode())
    seed("cipher_keys", h(k["secret_key"]))
for s in keys["signatures"]:
    seed("cipher_keys", h(s["signature_rfc6979"]) + h(s["sha256"]))
for s in keys["negative_signatures"]:
    seed("cipher_keys", h(s["signature"]) + h(s["sha256"]))

for t in sorted(counts):
    print(f"{t}: {counts[t]} seeds")
