"""A daemon that leaks a file every tick, for the end-to-end tests of
`leakcheck watch` in cmd/watch_e2e_test.go: the same leak as testdata/daemons/leaky,
in another language. Usage: leaky.py DIR SIGNALS [TICK_SECONDS]. It writes the
name of every signal it receives to SIGNALS, and exits on SIGTERM or SIGINT."""

import os
import signal
import sys
import time

from record import record_signals

def main():
    directory, signals = sys.argv[1], sys.argv[2]
    tick = float(sys.argv[3]) if len(sys.argv) > 3 else 0.02
    record_signals(signals)
    files = []  # never closed
    n = 0
    while True:
        files.append(open(os.path.join(directory, "leak-%d.log" % n), "w"))
        n += 1
        time.sleep(tick)

main()
