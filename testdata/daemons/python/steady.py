"""A busy daemon that leaks nothing, for the end-to-end tests of
`leakcheck watch` in cmd/watch_e2e_test.go: every tick it opens, writes and
closes a file. Usage: steady.py DIR SIGNALS [TICK_SECONDS]. It writes the name
of every signal it receives to SIGNALS, and exits on SIGTERM or SIGINT."""

import os
import sys
import time

from record import record_signals

def main():
    directory, signals = sys.argv[1], sys.argv[2]
    tick = float(sys.argv[3]) if len(sys.argv) > 3 else 0.02
    record_signals(signals)
    scratch = os.path.join(directory, "scratch.log")
    while True:
        with open(scratch, "w") as f:
            f.write("steady\n")
        time.sleep(tick)

main()
