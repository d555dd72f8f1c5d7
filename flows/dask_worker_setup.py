"""Preloaded into each worker process of the local Dask cluster a command starts (``flows.fanout``).

The workers share the terminal's process group, so a Ctrl-C reaches them too. Each would print its own
KeyboardInterrupt traceback. They ignore it instead: the command stops the cluster itself when the stage
ends, and its watchdog ends whatever is left.
"""

import signal
import threading

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
