"""A fast parse of the common count table: every data cell a whole number of up to 10 digits.

:func:`read_uint32_body` reads the body of a csv/tsv table (the bytes after the header row) whose
first column holds the row names and whose other columns hold non-negative integers that fit
uint32, and returns what ``parse_text_table``'s pyarrow read with uint32 column types returns for
the same bytes: the row names as a string column, the values as uint32 columns. It declines
(returns None) on anything else, and the caller then reads the file with pyarrow as before, so
errors and messages never come from here. It declines on:

- a cell that is not 1-10 ASCII digits (empty, NA and the other missing tokens, signs, spaces,
  decimals, exponents, hex), or a value above 4294967295;
- a row with fewer or more fields than ``n_fields`` (a trailing delimiter included);
- a carriage return that is not part of CRLF, a row name that is not ASCII or has a quote (in
  a cell a quote is a non-digit);
- no data row at all, or a body of 2 GiB or more.

It takes what pyarrow takes: LF or CRLF line ends, empty lines (skipped, as pyarrow does), a
last line without a line end, leading zeros, any ASCII row name without the delimiter.

The tokenizer is compiled by numba (``nogil``): the body is cut at line ends into parts read on
``pa.cpu_count()`` threads, each part into its own column-major block, so every column comes out
as one zero-copy uint32 chunk per part. A cell is read 8 bytes at a time (SWAR): the first
non-digit is found with bit operations and the digits are combined with three multiplications,
no branch per digit. Measured on bench/bench_validation.py's 60,000 x 500 counts (74 MB): ~0.15 s
of CPU on one thread, against ~0.8 s of CPU for pyarrow's read with uint32 types. (The reads of
one thread form one dependency chain, ~13 cycles a cell: load, mask, count zeros, advance.)

The first fast parse of a process imports numba (~0.2-0.4 s) and loads the compiled tokenizer
from numba's cache (~0.3-0.4 s, most of it numba setting up its compiler), or compiles it when
the cache is cold (~1 s); bench/bench_validation.py prints both. Hence ``FAST_PARSE_MIN_BYTES``
in tables.py: small files never pay it.

Compiled code is cached on disk by numba: next to this file when its ``__pycache__`` is writable,
else in numba's user-wide cache directory; when neither is writable (a read-only install, a
home-less service user), under ``$MEV_DATA_DIR/cache/numba``, else a private directory of the
temporary directory, else not at all (each process then compiles once). If numba cannot be
imported, or compiling fails, or the compiled code misreads a sample, :func:`read_uint32_body`
always declines (logged once).
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

try:
    import numba
    from llvmlite import ir
    from numba import types as nbtypes
    from numba.extending import intrinsic
except ImportError:  # pragma: no cover - numba is a dependency; without it the fast parse declines
    numba = None

logger = logging.getLogger(__name__)

# The body is cut into parts of at least this size, up to PARTS_PER_THREAD per thread (several
# parts per thread even out threads slowed down by a busy machine).
MIN_PART_BYTES = 1 << 22
PARTS_PER_THREAD = 4
# Each part makes one chunk per column (~2 µs of Python each): wide tables get fewer parts.
MAX_COLUMN_CHUNKS = 20_000
_MAX_BYTES = (1 << 31) - 1  # int32 string offsets

_lock = threading.Lock()
_kernel = None  # the compiled tokenizer, once built
_unavailable = False  # numba missing or compiling failed: always decline


@dataclass
class FastBody:
    """What :func:`read_uint32_body` read."""

    names: pa.ChunkedArray  # string, one chunk per part
    columns: list[pa.ChunkedArray]  # uint32, one chunk per part (zero-copy views of its block)
    blank_lines: int  # empty lines skipped (as pyarrow skips them)


def read_uint32_body(
    data: bytes, body_start: int, n_fields: int, delimiter: str, *, threads: int | None = None
) -> FastBody | None:
    """Row names and ``n_fields - 1`` uint32 columns of ``data[body_start:]``, or None (declined)."""
    size = len(data)
    if n_fields < 2 or size - body_start <= 0 or size > _MAX_BYTES or len(delimiter) != 1:
        return None
    kernel = _get_kernel()
    if kernel is None:
        return None
    n_values = n_fields - 1
    buf = np.frombuffer(data, dtype=np.uint8)
    if threads is None:
        threads = pa.cpu_count()
    parts = _split(data, body_start, max(1, threads), n_values)
    stop = np.zeros(1, dtype=np.uint8)  # set by the first part that declines: the others give up
    delim = ord(delimiter)

    def run(bounds: tuple[int, int]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, int] | None:
        start, end = bounds
        # Each row takes at least two bytes per value (digit + delimiter or line end).
        capacity = (end - start) // (2 * n_values) + 1
        values = np.empty((n_values, capacity), dtype=np.uint32)
        names = np.empty(end - start, dtype=np.uint8)
        offsets = np.empty(capacity + 1, dtype=np.int32)
        offsets[0] = 0
        blank = np.zeros(1, dtype=np.int64)
        rows = kernel(buf, start, end, delim, values, names, offsets, stop, blank)
        if rows < 0:
            return None
        return rows, values, names, offsets, int(blank[0])

    if len(parts) == 1:
        results = [run(parts[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(parts)), thread_name_prefix="fastparse") as pool:
            results = list(pool.map(run, parts))
    if any(result is None for result in results):
        return None
    name_chunks: list[pa.Array] = []
    value_chunks: list[list[pa.Array]] = [[] for _ in range(n_values)]
    blank_lines = 0
    for result in results:
        assert result is not None
        rows, values, names, offsets, blank = result
        blank_lines += blank
        if rows == 0:
            continue
        n_bytes = int(offsets[rows])
        name_chunks.append(
            pa.Array.from_buffers(
                pa.string(),
                rows,
                # Copies of the used bytes: the blocks were sized for the worst case.
                [None, pa.py_buffer(offsets[: rows + 1].copy()), pa.py_buffer(names[:n_bytes].copy())],
            )
        )
        for j in range(n_values):
            value_chunks[j].append(pa.Array.from_buffers(pa.uint32(), rows, [None, pa.py_buffer(values[j, :rows])]))
    if not name_chunks:
        return None
    return FastBody(
        names=pa.chunked_array(name_chunks, type=pa.string()),
        columns=[pa.chunked_array(chunks, type=pa.uint32()) for chunks in value_chunks],
        blank_lines=blank_lines,
    )


def _split(data: bytes, body_start: int, threads: int, n_values: int) -> list[tuple[int, int]]:
    """``[start, end)`` parts of the body, each ending right after a line end (the last: at the end)."""
    size = len(data)
    most = max(threads, min(threads * PARTS_PER_THREAD, MAX_COLUMN_CHUNKS // n_values))
    n_parts = max(1, min(most, (size - body_start) // MIN_PART_BYTES))
    if threads == 1:
        n_parts = 1
    bounds = []
    start = body_start
    for i in range(1, n_parts):
        target = body_start + (size - body_start) * i // n_parts
        if target <= start:
            continue
        cut = data.find(b"\n", target)
        if cut == -1:
            break
        bounds.append((start, cut + 1))
        start = cut + 1
    if start < size:
        bounds.append((start, size))
    return bounds


def _get_kernel():
    """The compiled tokenizer, compiled (or loaded from the cache) and tried on the first call;
    None when numba is missing or fails, logged once."""
    global _kernel, _unavailable
    if _kernel is not None or _unavailable:
        return _kernel
    with _lock:  # one thread compiles; the others wait for it
        if _kernel is None and not _unavailable:
            try:
                kernel = _build_kernel()
                _try(kernel)
            except Exception:  # numba missing or broken: the pyarrow path does the work
                logger.warning("The fast count-table parse is unavailable; using pyarrow", exc_info=True)
                _unavailable = True
            else:
                _kernel = kernel
    return _kernel


def _try(kernel) -> None:
    """Compile (or load) ``kernel`` for the argument types of :func:`read_uint32_body` and check
    it on a sample, so that a broken build is found here and not in the middle of a parse."""
    sample = b"g1\t1\t22\r\n\ng2\t333\t4294967295\n"
    values = np.zeros((2, 8), dtype=np.uint32)
    names = np.empty(len(sample), dtype=np.uint8)
    offsets = np.zeros(9, dtype=np.int32)
    blank = np.zeros(1, dtype=np.int64)
    stop = np.zeros(1, dtype=np.uint8)
    rows = kernel(np.frombuffer(sample, dtype=np.uint8), 0, len(sample), 9, values, names, offsets, stop, blank)
    if (rows, blank[0], values[:, :2].tolist(), bytes(names[: offsets[2]])) != (
        2, 1, [[1, 333], [22, 4294967295]], b"g1g2"
    ):  # fmt: skip
        raise RuntimeError(f"the compiled tokenizer misreads its sample (rows={rows})")


def warm_up() -> float:
    """Import numba and load (or compile) the tokenizer now; returns the seconds it took."""
    start = time.perf_counter()
    _get_kernel()
    return time.perf_counter() - start


def cache_directories() -> list[Path]:
    """Where the compiled code may be cached if numba's own places are not writable, in order."""
    places = []
    data_dir = os.environ.get("MEV_DATA_DIR")
    if data_dir:
        places.append(Path(data_dir) / "cache" / "numba")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    places.append(Path(tempfile.gettempdir()) / f"webmev-numba-{uid}")
    return places


def _private_directory(path: Path) -> bool:
    """Create ``path`` (mode 0700) if needed; True if it is ours alone and writable.

    numba's cache holds pickled code, so it must never sit where another user could write.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode):
            return False
        if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
            return False
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _build_kernel():
    if numba is None:
        raise ImportError("numba is not installed")
    options = {"nogil": True, "boundscheck": False}
    try:
        return numba.njit(cache=True, **options)(_parse_part)
    except RuntimeError:
        pass  # "cannot cache function ...: no locator available": neither __pycache__ nor ~/.cache
    for place in cache_directories():
        if not _private_directory(place):
            continue
        saved = numba.config.CACHE_DIR
        numba.config.CACHE_DIR = str(place)  # read once, when the dispatcher picks its cache locator
        try:
            return numba.njit(cache=True, **options)(_parse_part)
        except RuntimeError:
            continue
        finally:
            numba.config.CACHE_DIR = saved
    logger.info("No writable cache directory for the fast parse; it is compiled in each process")
    return numba.njit(cache=False, **options)(_parse_part)


# --------------------------------------------------------------------------- the tokenizer

# Return codes of the tokenizer below 0: why it declined (only tests look at them).
DECLINED_LINE_END = -1  # a carriage return not followed by a line feed
DECLINED_FIELDS = -2  # a row with too few or too many fields
DECLINED_CELL = -3  # a cell that is not 1-10 digits, or a value above 4294967295
DECLINED_NAME = -4  # a row name that is not ASCII or has a quote
DECLINED_CAPACITY = -5  # more rows than the block holds (cannot happen; checked anyway)
DECLINED_ELSEWHERE = -6  # another part declined first

_BIG_ENDIAN = sys.byteorder == "big"
_ZEROS = 0x3030303030303030
_HIGH_BITS = 0x8080808080808080
_TO_HIGH_BIT = 0x7676767676767676  # a byte 0x0A-0x89 plus this sets its high bit; 0x00-0x09 do not
_LOW_DIGITS = 0x000000FF000000FF
_MUL_100 = 100 + (1000000 << 32)
_MUL_1 = 1 + (10000 << 32)

if numba is not None:

    @intrinsic
    def _cttz64(typingctx, value):
        """Count of trailing zero bits (LLVM's cttz; the value is never 0 here)."""

        def codegen(context, builder, signature, args):
            return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

        return nbtypes.uint64(nbtypes.uint64), codegen

    @intrinsic
    def _load_u64(typingctx, array, index):
        """The 8 bytes of a uint8 array from ``index`` as one little-endian uint64 (unaligned load)."""

        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
            value = builder.load(pointer, align=1)
            return builder.bswap(value) if _BIG_ENDIAN else value

        return nbtypes.uint64(array, nbtypes.intp), codegen

    _u64 = numba.uint64
    _u32 = numba.uint32
    _intp = numba.intp
else:  # pragma: no cover
    _cttz64 = _load_u64 = _u64 = _u32 = _intp = None



def _parse_part(buf, start, end, delim, values, names, offsets, stop, blank):
    """Read the rows of ``buf[start:end]`` into ``values`` (column-major), ``names`` and ``offsets``.

    Returns the number of rows, or a negative DECLINED_* code; ``blank[0]`` counts the empty lines. ``end`` is the end of ``buf`` or
    right after a line feed, so every cell of the part ends inside it; the 8-byte reads may look
    past ``end`` (never past ``buf``), at bytes that only matter after a non-digit.
    """
    n_values = values.shape[0]
    capacity = values.shape[1]
    size = buf.shape[0]
    pos = start
    row = 0
    n_bytes = 0
    high = 0
    while pos < end:
        c = buf[pos]
        if c == 10:  # an empty line: pyarrow skips it
            pos += 1
            blank[0] += 1
            continue
        if c == 13:
            if pos + 1 < end and buf[pos + 1] == 10:
                pos += 2
                blank[0] += 1
                continue
            stop[0] = 1
            return DECLINED_LINE_END
        if stop[0] != 0:
            return DECLINED_ELSEWHERE
        if row >= capacity:
            stop[0] = 1
            return DECLINED_CAPACITY
        # The row name: every byte up to the first delimiter.
        while True:
            if pos >= end:
                stop[0] = 1
                return DECLINED_FIELDS
            c = buf[pos]
            if c == delim:
                break
            if c == 10 or c == 13:
                stop[0] = 1
                return DECLINED_FIELDS
            if c == 34:  # a quote: pyarrow may read the field differently
                stop[0] = 1
                return DECLINED_NAME
            high |= c
            names[n_bytes] = c
            n_bytes += 1
            pos += 1
        offsets[row + 1] = n_bytes
        pos += 1
        for j in range(n_values):
            mask = _u64(0)
            if pos + 8 <= size:
                x = _load_u64(buf, pos) ^ _u64(_ZEROS)  # digits become the bytes 0-9
                mask = (x | (x + _u64(_TO_HIGH_BIT))) & _u64(_HIGH_BITS)  # high bit of each non-digit
            if mask != 0:
                n = _intp(_cttz64(mask) >> _u64(3))  # digits before the first non-digit
                if n == 0:
                    stop[0] = 1
                    return DECLINED_CELL
                # The n digits, most significant first, moved to the top as if led by zeros, then
                # combined pairwise: 8 digits -> 4 two-digit -> 2 four-digit -> 1 number.
                v = x << _u64(64 - 8 * n)
                v = v * _u64(10) + (v >> _u64(8))
                v = (
                    (v & _u64(_LOW_DIGITS)) * _u64(_MUL_100)
                    + ((v >> _u64(16)) & _u64(_LOW_DIGITS)) * _u64(_MUL_1)
                ) >> _u64(32)
                pos += n
            else:  # 8 digits or more, or the last bytes of the buffer: one digit at a time
                first = pos
                v = _u64(0)
                while pos < end:
                    d = _u64(buf[pos]) - _u64(48)
                    if d > 9:
                        break
                    v = v * _u64(10) + d
                    pos += 1
                    if pos - first > 10:
                        break
                if pos == first or pos - first > 10 or v > _u64(4294967295):
                    stop[0] = 1
                    return DECLINED_CELL
            values[j, row] = _u32(v)
            if pos >= end:  # the last line has no line end
                if j == n_values - 1:
                    break
                stop[0] = 1
                return DECLINED_FIELDS
            c = buf[pos]
            pos += 1
            if j < n_values - 1:
                if c != delim:
                    stop[0] = 1
                    return DECLINED_CELL if c != 10 and c != 13 else DECLINED_FIELDS
            elif c != 10:
                if c == 13 and pos < end and buf[pos] == 10:
                    pos += 1
                else:
                    stop[0] = 1
                    return DECLINED_FIELDS if c == delim else DECLINED_CELL
        row += 1
    if high >= 128:
        stop[0] = 1
        return DECLINED_NAME
    return row
