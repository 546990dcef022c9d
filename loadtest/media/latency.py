#!/usr/bin/env python3
"""Added one-way latency of a media relay, from a capture on lo.

usage: latency.py CAPTURE.pcap RELAY_LO RELAY_HI  ->  "median p99 pairs" (µs)

Every RTP packet crosses lo twice on a relayed path: into the relay (to a
port in RELAY_LO..RELAY_HI, from the caller's 6100 or the callee's 6000)
and out of it (from a relay port, to 6000 or 6100). A relay that does not
rewrite RTP (the edge's, when a leg's source never changes, and rtpengine
without transcoding) sends the same SSRC, sequence number and timestamp:
each packet in is paired with the first packet out with the same header
and direction within 50 ms. The capture timestamps are the kernel's, so
this is the time a packet spends in the relay (socket queue, wake-up,
forwarding), not counting the generator's.
"""
import bisect
import struct
import sys
from collections import defaultdict

path, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
if magic in (0xA1B2C3D4, 0xA1B23C4D):
    end, nano = "<", magic == 0xA1B23C4D
else:
    end, nano = ">", struct.unpack(">I", data[:4])[0] == 0xA1B23C4D
link = struct.unpack(end + "I", data[20:24])[0]
l2 = {1: 14, 113: 16, 276: 20, 0: 4, 101: 0}.get(link)
if l2 is None:
    sys.exit(f"link type {link} not handled")
ins, outs = [], defaultdict(list)
off = 24
while off + 16 <= len(data):
    sec, frac, caplen, _ = struct.unpack(end + "IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + caplen]
    off += 16 + caplen
    t = sec + frac / (1e9 if nano else 1e6)
    ip = pkt[l2:]
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
        continue
    udp = ip[(ip[0] & 15) * 4:]
    if len(udp) < 20:
        continue
    sport, dport = struct.unpack("!HH", udp[:4])
    rtp = udp[8:20]
    if rtp[0] >> 6 != 2 or 72 <= rtp[1] & 0x7F <= 76:  # not RTP, or RTCP
        continue
    key = rtp[2:12]  # sequence, timestamp, SSRC
    if dport in (6000, 6100) and lo <= sport <= hi:
        outs[(key, dport)].append(t)
    elif sport in (6000, 6100) and lo <= dport <= hi:
        ins.append((t, key, 6000 if sport == 6100 else 6100))
lat = []
for t, key, to in ins:
    ts = outs.get((key, to))
    if not ts:
        continue
    i = bisect.bisect_left(ts, t)
    if i < len(ts) and ts[i] - t < 0.05:
        lat.append(ts[i] - t)
if not lat:
    print("- - 0")
    sys.exit(0)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e6
print(f"{q(0.5):.0f} {q(0.99):.0f} {len(lat)}")
