"""The modules of `benches/python_bench.py`, the Python-to-Python benchmark of shmx.

- `common`: the payloads, their iteration counts and checks, and the `Endpoint` interface;
- `contenders_stdlib`: multiprocessing.Pipe, a Unix socket, multiprocessing.shared_memory + Lock;
- `contenders_shmx`: shmx and its variants;
- `contenders_iox2`: iceoryx2;
- `contenders`: the table of contenders (`CONTENDERS`);
- `measure`: what the two child processes of a measurement do (latency and throughput);
- `cleanup`: the run's leftovers (children, segments, /dev/shm files) and their removal;
- `runner`: the parent's side of one measurement (`run_job`);
- `report`: the table, the notes, the targets, and the facts of the header.

The command line and the run itself are in `benches/python_bench.py`, which puts `benches/`
on `sys.path` so that `pybench` imports (in the child processes too, fork or spawn).
"""
