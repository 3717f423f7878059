"""`fresco serve` stopped by SIGTERM in the middle of a load: it exits 0 within 5 s, and
every prediction id a client received with a 200 is in the published Parquet log.

    python3 .ci/serve_sigterm.py FRESCO_BIN CONFIG SCRATCH_DIR
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pyarrow.dataset as ds

fresco, config, scratch = sys.argv[1:4]
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
root = os.path.join(scratch, "sigterm-log")
env = dict(os.environ, FRESCO_LISTEN=f"127.0.0.1:{port}", FRESCO_LOG_ROOT=root)
server = subprocess.Popen([fresco, "serve", "--config", config], env=env, stdout=subprocess.PIPE, text=True)
print(server.stdout.readline().strip())
body = open("examples/serve/predict.json", "rb").read()

received, failures, stop = [], [], threading.Event()


def load():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while not stop.is_set():
        try:
            conn.request("POST", "/v1/models/eta/predict", body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            text = answer.read()
        except (OSError, http.client.HTTPException):
            # The server closed the connection: it is stopping.
            return
        if answer.status == 200:
            received.append(json.loads(text)["prediction_id"])
        else:
            failures.append((answer.status, text))


threads = [threading.Thread(target=load) for _ in range(16)]
for t in threads:
    t.start()
time.sleep(2.0)
stopped_at = time.monotonic()
server.send_signal(signal.SIGTERM)
code = server.wait(timeout=30)
took = time.monotonic() - stopped_at
stop.set()
for t in threads:
    t.join()
print(server.stdout.read().strip())
assert code == 0, f"exit code {code}"
assert took < 5.0, f"took {took:.1f} s to stop"
assert not failures, failures[:3]
logged = set(ds.dataset(os.path.join(root, "predictions"), format="parquet", partitioning="hive")
             .to_table(columns=["prediction_id"]).column("prediction_id").to_pylist())
missing = [i for i in received if i not in logged]
assert not missing, f"{len(missing)} answered predictions are not in the log, e.g. {missing[:3]}"
assert len(received) > 100, len(received)
print(f"SIGTERM under load: exit 0 in {took:.2f} s; {len(received)} predictions answered with 200, "
      f"all {len(received)} in the published log ({len(logged)} rows)")
