"""Tensor parallelism: shard the model over N devices of one host (NCCL on CUDA, gloo on CPU).

shard.py    TPContext: the sharding plan (column/row/vocab-parallel slices) and the collectives
loader.py   each rank reads only its slices of the checkpoint
comm.py     process groups on a free loopback port; TensorParallelError
workers.py  rank 0 (the caller) starts, drives, watches and stops ranks 1..N-1
worker_main.py  the worker process
"""
