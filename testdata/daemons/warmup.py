"""A healthy Python daemon that warms up, for cmd/warmup_e2e_test.go.

For its first seconds it fills a cache to its bound; every tick it opens and
closes a file. Its resident memory rises in pages while the interpreter
settles, then holds. It runs until SIGTERM or SIGINT.
"""
import os
import signal
import sys
import tempfile
import time

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)

scratch = os.path.join(sys.argv[1] if len(sys.argv) > 1 else tempfile.gettempdir(), "warmup-py-scratch")
cache = {}
start = time.monotonic()
rounds = 0
while not stop:
    since = time.monotonic() - start
    want = 2000 if since > 3 else int(2000 * since / 3)
    while len(cache) < want:
        cache[len(cache)] = bytes(4096)
    with open(scratch, "w") as f:
        f.write(str(rounds))
    rounds += 1
    time.sleep(0.05)
print(f"warmup.py: stopping after {rounds} rounds, cache of {len(cache)}", file=sys.stderr)
