"""A tensor-parallel worker process (ranks 1..N-1): load this rank's shard, then run forward
passes exactly as rank 0 commands them, until told to stop or rank 0 goes away.

Started by `engine.parallel.workers` with a JSON spec and one end of a socket pair (the command
channel). It exits on its own when the channel closes or its parent process changes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any


def _watch_parent(parent: int) -> None:
    # The command channel closes when the parent dies, but a worker blocked in a collective
    # does not read it; polling the parent id covers that case (and survives thread exits,
    # unlike PR_SET_PDEATHSIG, which fires when the *thread* that spawned us ends).
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(3)


def serve(spec: dict[str, Any], conn: Connection) -> None:
    import torch

    from engine.checkpoint import resolve
    from engine.model import Transformer
    from engine.parallel.comm import join_store, make_group
    from engine.parallel.loader import load_shard
    from engine.parallel.shard import TPContext

    rank, size, timeout = spec["rank"], spec["size"], spec["timeout_s"]
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    store = join_store(spec["port"], size, timeout)
    conn.send(("joined", rank))
    group = make_group(store, rank, size, device, timeout)
    ckpt = resolve(spec["path"])
    dtype = getattr(torch, spec["dtype"])
    tp = TPContext(rank, size, group)
    model = Transformer(ckpt.config, spec["max_len"], dtype, device, tp, spec.get("quant"))
    load_shard(model, ckpt)
    caches: dict[int, Any] = {}  # twins of rank 0's caches, by key
    conn.send(("ready", rank))
    while True:
        try:
            cmd = conn.recv()
        except EOFError:
            return  # rank 0 closed the channel: the engine or its process is gone
        if cmd[0] == "shutdown":
            return
        _, ids, start, all_logits, capture, key, dropped = cmd
        for k in dropped:
            caches.pop(k, None)
        cache = caches.get(key) or caches.setdefault(key, model.new_cache())
        ids_t = torch.tensor(ids, dtype=torch.long, device=device)
        positions = torch.arange(start, start + len(ids), device=device)
        # Rank 0 may have rolled its cache back (prefix reuse, speculative rejection); the
        # forward overwrites from `start`, so only the bookkeeping needs to follow.
        cache.length = min(cache.length, start)
        model.forward(ids_t, positions, cache, all_logits=all_logits, capture_layers=capture)


def main() -> None:
    spec = json.loads(sys.argv[1])
    threading.Thread(target=_watch_parent, args=(spec["parent"],), daemon=True).start()
    conn = Connection(spec["fd"])
    try:
        serve(spec, conn)
    except Exception as exc:  # reported to rank 0 as one line; the traceback goes to the log
        import traceback

        from engine.errors import first_line

        traceback.print_exc()
        msg = first_line(exc)
        try:
            conn.send(("error", f"rank {spec['rank']}: {msg}"))
        except OSError:
            pass
        sys.stdout.flush()
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":
    main()
