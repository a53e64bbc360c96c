#!/usr/bin/env python3
"""Regenerates the captures in this folder from a real PostgreSQL 15 server.

Usage: capture.py PSQL_CONNINFO   (e.g. "host=127.0.0.1 port=54998 user=postgres")

Inputs are sent to the server as exact decimal texts (17 / 9 significant digits round-trip
exactly through strtod / strtof); what is kept is only what the server prints back with
extra_float_digits=3, plus COPY text and CSV captures of tricky strings.
"""
import math
import random
import struct
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def psql(conninfo, sql, stdin=None):
    return subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql],
                          input=stdin, capture_output=True, check=True).stdout


def f64(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def double_inputs(rng):
    vals = []
    for _ in range(12000):  # uniform over all bit patterns: every exponent, denormals
        vals.append(f64(rng.getrandbits(64)))
    for _ in range(4000):  # short decimals at every scale, as people type them
        digits = rng.randint(1, 17)
        vals.append(float(f"{rng.randint(1, 10**digits - 1)}e{rng.randint(-330, 310)}"))
    for _ in range(2000):  # integers around 2^53
        vals.append(float(rng.randint(2**52 - 10**6, 2**54)))
    for e in range(54, 64):  # integers spaced >= 4 apart: often the shortest digits are a
        for _ in range(300):  # midpoint, which PostgreSQL avoids (longer output)
            vals.append(f64(((1023 + e) << 52) | rng.getrandbits(52)))
    for e in range(-1074, 1024):  # powers of two: the gap below is half the gap above
        p = math.ldexp(1.0, e)
        vals += [p, math.nextafter(p, 0.0), math.nextafter(p, math.inf)]
    for e in range(-325, 310):
        for m in ("1", "1.5", "9.999999999999999", "2.2250738585072014", "5"):
            vals.append(float(f"{m}e{e}"))
    for e in range(-8, 22):
        vals.append(float(10**e) if e >= 0 else float(f"1e{e}"))
        vals.append(float(f"1e{e}") * (1 + 2**-52))
        vals.append(float(f"1e{e}") * (1 - 2**-53))
    special = [0.0, 1.0, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 100.0, 123456789012345.0, 1234567890123456.0,
               12345678901234567.0, 2**53 - 1.0, 2.0**53, 2.0**63, 2.0**64,
               f64(1), f64(2), f64(0x000FFFFFFFFFFFFF), f64(0x0010000000000000),
               f64(0x7FEFFFFFFFFFFFFF), 1e-4, 9.99e-5, 1e-5, 1e14, 99999999999999.9, 1e15, 1e16,
               5e-324, 1.7976931348623157e308, 2.2250738585072014e-308]
    vals += special
    vals += [-v for v in list(vals) if rng.random() < 0.3 or v in special]
    out = [repr(v) for v in vals]  # Python's repr round-trips exactly
    return out + ["NaN", "Infinity", "-Infinity", "-0"]


def to_f32(x):
    """x rounded to the nearest float, or None when it overflows."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return None


def float_inputs(rng):
    vals = []
    for _ in range(12000):  # uniform over all bit patterns
        v = f32(rng.getrandbits(32))
        if v == v and abs(v) != float("inf"):
            vals.append(v)
    for _ in range(4000):  # short decimals at every scale
        digits = rng.randint(1, 9)
        vals.append(to_f32(float(f"{rng.randint(1, 10**digits - 1)}e{rng.randint(-46, 38)}")))
    for e in range(-46, 39):
        for m in ("1", "1.5", "9.999999", "3.4028235", "1.1754944"):
            vals.append(to_f32(float(f"{m}e{e}")))
    for e in range(24, 40):  # integers spaced >= 2 apart: midpoint cases
        for _ in range(300):
            vals.append(f32(((127 + e) << 23) | rng.getrandbits(23)))
    for e in range(-149, 128):  # powers of two and their neighbours
        bits = struct.unpack("<I", struct.pack("<f", math.ldexp(1.0, e)))[0]
        vals += [f32(bits), f32(bits - 1), f32(bits + 1) if bits + 1 < 0x7F800000 else f32(bits)]
    for bits in (1, 2, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0x3DCCCCCD, 0x4B7FFFFF, 0x4B800000):
        vals.append(f32(bits))
    for e in range(-7, 12):
        vals.append(to_f32(float(f"1e{e}")))
    # text -> double -> float rounds twice and lands on the wrong float for these
    vals += [7.038531e-26, 7.038531308148791e-26]
    vals += [0.0, 1.0, 100000.0, 999999.0, 1000000.0, 16777215.0, 16777216.0, 0.0001, 0.00001,
             123456.0]
    vals = [v for v in vals if v is not None]
    vals += [-v for v in list(vals) if rng.random() < 0.3]
    out = ["%.9g" % v for v in vals]  # 9 significant digits round-trip a float exactly
    return out + ["NaN", "Infinity", "-Infinity", "-0"]


def capture_floats(conninfo, kind, inputs, path):
    psql(conninfo, f"DROP TABLE IF EXISTS cap_{kind}; CREATE TABLE cap_{kind} (id serial, v {kind})")
    psql(conninfo, f"COPY cap_{kind} (v) FROM STDIN", ("\n".join(inputs) + "\n").encode())
    out = subprocess.run(["psql", "-X", "-q", conninfo, "-c", "SET extra_float_digits = 3",
                          "-c", f"COPY (SELECT v FROM cap_{kind} ORDER BY id) TO STDOUT"],
                         capture_output=True, check=True).stdout
    path.write_bytes(out)


TRICKY = [
    "plain", "", " leading and trailing space ", "tab\there", "new\nline", "carriage\rreturn",
    "crlf\r\nend", "back\\slash", "\\N", "\\n", "\\", "\\\\", "\\.", ".", "NULL", "null",
    "comma,here", "quote\"here", "\"", "\"\"", "'single'", "unicode: é ß 中文 🎉", "\x01\x02\x1f\x7f",
    "bell\b form\f vtab\v", "trailing backslash\\", "#hash", "a,\"b\"\nc", " ", "\t", "\n",
]


def capture_texts(conninfo):
    psql(conninfo, "DROP TABLE IF EXISTS cap_text; CREATE TABLE cap_text (id int, a text, b text)")
    psql(conninfo, "DROP TABLE IF EXISTS cap_one; CREATE TABLE cap_one (a text)")
    rows = []
    for i, s in enumerate(TRICKY):
        rows.append((i, s, TRICKY[(i + 1) % len(TRICKY)]))
    rows.append((len(rows), None, ""))
    rows.append((len(rows), "", None))
    rows.append((len(rows), None, None))
    def lit(s):
        return "NULL" if s is None else "E'" + s.replace("\\", "\\\\").replace("'", "\\'") \
            .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace("\b", "\\b") \
            .replace("\f", "\\f").replace("\v", "\\x0b").replace("\x01", "\\x01").replace("\x02", "\\x02") \
            .replace("\x1f", "\\x1f").replace("\x7f", "\\x7f") + "'"
    values = ",".join(f"({i},{lit(a)},{lit(b)})" for i, a, b in rows)
    psql(conninfo, f"INSERT INTO cap_text VALUES {values}")
    psql(conninfo, "INSERT INTO cap_one SELECT a FROM cap_text ORDER BY id")
    for table, cols in (("cap_text", "id, a, b"), ("cap_one", "a")):
        order = "ORDER BY id" if table == "cap_text" else ""
        src = f"(SELECT {cols} FROM {table} {order})" if order else f"(SELECT {cols} FROM {table})"
        text = psql(conninfo, f"COPY {src} TO STDOUT")
        csv = psql(conninfo, f"COPY {src} TO STDOUT (FORMAT csv)")
        (HERE / f"{table}.copy").write_bytes(text)
        (HERE / f"{table}.csv").write_bytes(csv)
    # PostgreSQL's own JSON string escaping of the same values, as a COPY text capture.
    json = psql(conninfo, "COPY (SELECT to_json(a), to_json(b) FROM cap_text ORDER BY id) TO STDOUT")
    (HERE / "cap_text_json.copy").write_bytes(json)


def main():
    conninfo = sys.argv[1]
    rng = random.Random(20240615)
    capture_floats(conninfo, "float8", double_inputs(rng), HERE / "float8.txt")
    capture_floats(conninfo, "float4", float_inputs(rng), HERE / "float4.txt")
    capture_texts(conninfo)


if __name__ == "__main__":
    main()
