"""record_signals: the signal log the test daemons keep, so that a test can
check that nobody signalled them."""

import signal
import sys

WATCHED = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGALRM"]

def record_signals(path):
    log = open(path, "a", buffering=1)

    def handler(signum, frame):
        log.write(signal.Signals(signum).name + "\n")
        if signum in (signal.SIGTERM, signal.SIGINT):
            sys.exit(0)

    for name in WATCHED:
        signal.signal(getattr(signal, name), handler)
