"""`dataset fetch`: download a CSV of url,label rows into a class folder OUT/<label>/<file>.

What a row goes through, and where each decision is made:

- **Reading the CSV** (main thread, streamed): a header row naming `url` and `label` is allowed
  (in any column order; `class` is accepted for `label`), blank lines are skipped, extra columns
  ignored. A row without a URL or label, a URL that is not http/https, and a label that
  `labels.LabelSet` refuses (`../x`, `/abs`, empty...) are failed rows with the reason; nothing is
  requested for them.
- **Downloading** (worker threads, `stream.ordered_map`, at most `jobs` at once, so at most `jobs`
  connections): redirects followed by hand, at most MAX_REDIRECTS, each target checked again
  (http/https only, a loop is named). `timeout` bounds every read (no byte for that long) and
  `deadline` the whole download, so a slow drip cannot hang a worker. The size limit is enforced
  while streaming (a Content-Length over it is refused before reading; without one, reading
  stops one byte past the limit). Transient failures (timeouts, resets, HTTP 408/429/5xx) are
  retried `retries` times with exponential backoff and jitter; a 429/503 Retry-After is honoured
  up to `max_retry_after` seconds (over it, the row fails at once). A 404, a refused scheme or
  content that is not an acceptable image is not retried. Bytes go to a hidden partial folder
  (OUT/.mobilegen-fetch/partial/), then `imagefile.inspect_image` decides (decodable, an allowed
  format, under the size limit, at least `min_side`).
- **Committing** (main thread, in CSV order whatever the thread timing): duplicates by sha256 of
  the content; the first row in CSV order keeps the file, a later one is skipped as a duplicate,
  or reported as a label conflict when it carries another label. A kept file is moved in with
  os.replace (atomic, same file system) as OUT/<folder>/<sha256[:16]><suffix of the decoded
  format>, and only then recorded in the state log. Class folders never hold a partial file or one
  that failed the content check.
- **Resuming**: OUT/.mobilegen-fetch/state.jsonl has one line per finished row (fetched,
  duplicate or conflict) keyed by url and label. A re-run skips those rows without a request
  (unless their file was deleted) and touches no file in the class folders; failed rows are tried
  again. A run killed at any point leaves at worst files in the partial folder (cleared by the next
  run) and a kept file not yet logged (found in place, by content hash, on the re-run).

Memory: the CSV is never held; what grows with the number of rows is the state index (a 16-byte
key and a short path per finished row, a 32-byte hash per kept file) and the report's entries.
"""

from __future__ import annotations

import csv
import email.utils
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mobilegen import __version__
from mobilegen.dataset.imagefile import DEFAULT_MAX_BYTES, WEB_FORMATS, ImageFacts, ImageProblem, inspect_image
from mobilegen.dataset.labels import LabelError, LabelSet, inside
from mobilegen.dataset.stream import ordered_map
from mobilegen.errors import UserInputError

# Hidden bookkeeping folder under OUT (train ignores hidden entries), and what is in it.
STATE_DIR = ".mobilegen-fetch"
STATE_FILE = "state.jsonl"
PARTIAL_DIR = "partial"
LOCK_FILE = "lock"
# The report, directly in OUT (train ignores files in the root).
REPORT_FILE = "fetch-report.json"

DEFAULT_JOBS = 8
DEFAULT_TIMEOUT = 30.0  # seconds without a byte before a read gives up (then retried)
DEFAULT_DEADLINE = 120.0  # seconds for one download attempt, redirects included
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5  # first retry after about this many seconds, doubling each time
DEFAULT_MAX_RETRY_AFTER = 60.0  # a server asking for a longer wait fails the row instead
MAX_REDIRECTS = 5
READ_CHUNK = 64 * 1024
# Statuses worth another try: the server is overloaded or something on the way timed out.
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
SCHEMES = ("http", "https")
USER_AGENT = f"mobilegen/{__version__} (dataset fetch)"
# The summary lists this many failures, then counts the rest (the report file has them all).
SUMMARY_NAMES = 10


# --- the report -------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    row: int  # the CSV line the row starts on (1-based)
    url: str
    label: str  # as written in the CSV
    path: str | None = None  # relative to OUT (posix): the file kept for this row, or the one it duplicates
    reason: str | None = None  # why skipped or failed
    kind: str | None = None  # skipped: "done", "repeat", "duplicate", "label-conflict"
    attempts: int = 0  # requests made for this row in this run (0: none)

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) not in (None, 0) or k == "row"}


@dataclass
class FetchReport:
    csv: Path
    out: Path
    fetched: list[Entry] = field(default_factory=list)
    skipped: list[Entry] = field(default_factory=list)
    failed: list[Entry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def done(self) -> int:
        return len(self.fetched) + len(self.skipped) + len(self.failed)

    @property
    def label_conflicts(self) -> list[Entry]:
        return [e for e in self.skipped if e.kind == "label-conflict"]

    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for e in self.skipped:
            kinds[e.kind or "skipped"] = kinds.get(e.kind or "skipped", 0) + 1
        why = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        lines = [f"{self.out}: {len(self.fetched)} fetched, {len(self.skipped)} skipped"
                 + (f" ({why})" if why else "") + f", {len(self.failed)} failed"]
        for e in self.label_conflicts[:SUMMARY_NAMES]:
            lines.append(f"  label conflict: row {e.row} {e.url} ({e.label!r}): {e.reason}")
        for e in self.failed[:SUMMARY_NAMES]:
            lines.append(f"  failed: row {e.row} {e.url}: {e.reason}")
        if len(self.failed) > SUMMARY_NAMES:
            lines.append(f"  ... and {len(self.failed) - SUMMARY_NAMES} more failed")
        if self.failed or self.label_conflicts:
            lines.append(f"  every row with its reason: {self.out / REPORT_FILE}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "csv": str(self.csv),
            "out": str(self.out),
            "ok": self.ok,
            "counts": {"fetched": len(self.fetched), "skipped": len(self.skipped), "failed": len(self.failed),
                       "label_conflicts": len(self.label_conflicts)},
            "fetched": [e.to_json() for e in self.fetched],
            "skipped": [e.to_json() for e in self.skipped],
            "failed": [e.to_json() for e in self.failed],
        }


# --- reading the CSV --------------------------------------------------------------------------


@dataclass(slots=True)
class _Task:
    row: int
    url: str
    label: str
    folder: str | None = None
    key: bytes = b""
    decided: Entry | None = None  # set when no download is needed: (failed or skipped, entry)
    decided_as: str = ""  # "failed" or "skipped"


def _row_key(url: str, label: str) -> bytes:
    return hashlib.blake2b(f"{url}\0{label}".encode(), digest_size=16).digest()


def _url_problem(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as e:
        return f"not a URL ({e})"
    if parts.scheme.lower() not in SCHEMES:
        return f"scheme {parts.scheme + ':' if parts.scheme else '(none)'} refused: only http and https are fetched"
    if not parts.hostname:
        return "no host in the URL"
    return None


def _records(csv_path: Path) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(line the record starts on, cells or None, problem) for each non-blank record, streamed."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                yield start, None, f"malformed CSV: {e}"
                start = reader.line_num + 1
                continue
            except UnicodeDecodeError as e:
                raise UserInputError(f"{csv_path}: not UTF-8 text after line {reader.line_num} ({e.reason}); expected a UTF-8 CSV") from None
            if any(c.strip() for c in cells):
                yield start, cells, None
            start = reader.line_num + 1


def count_rows(csv_path: Path) -> int:
    """Rows in the CSV (blank lines and a header row not counted), for a progress bar; streamed."""
    n = 0
    for i, (_, cells, _) in enumerate(_records(csv_path)):
        if i == 0 and cells is not None and "url" in (c.strip().casefold() for c in cells):
            continue
        n += 1
    return n


def _tasks(csv_path: Path, labels: LabelSet, state: "_State", out: Path) -> Iterator[_Task]:
    url_col, label_col = 0, 1
    first = True
    this_run: dict[bytes, int] = {}
    for row, cells, problem in _records(csv_path):
        if problem is not None:
            yield _Task(row, "", "", decided=Entry(row, "", "", reason=problem), decided_as="failed")
            continue
        assert cells is not None
        if first:
            first = False
            names = [c.strip().casefold() for c in cells]
            if "url" in names:
                url_col = names.index("url")
                label_col = next((names.index(n) for n in ("label", "class") if n in names), -1)
                if label_col < 0:
                    raise UserInputError(f"{csv_path}: the header row names no 'label' column; expected url,label")
                continue
        if len(cells) <= max(url_col, label_col):
            raw = ",".join(cells)
            yield _Task(row, raw, "", decided=Entry(row, raw, "", reason=f"expected url,label; got {len(cells)} column(s)"),
                        decided_as="failed")
            continue
        url, label = cells[url_col].strip(), cells[label_col].strip()
        task = _Task(row, url, label)
        reason = "no URL" if not url else _url_problem(url)
        if reason is None:
            try:
                task.folder = labels.folder(label)
            except LabelError as e:
                reason = str(e)
        if reason is not None:
            task.decided, task.decided_as = Entry(row, url, label, reason=reason), "failed"
            yield task
            continue
        task.key = _row_key(url, label)
        done = state.done.get(task.key)
        if done is not None and (out / done[1]).is_file():
            status, path = done
            kind = "done" if status == "fetched" else status
            task.decided = Entry(row, url, label, path=path, kind="done",
                                 reason="fetched by an earlier run" if kind == "done" else f"{kind} of {path} (an earlier run)")
            task.decided_as = "skipped"
        elif task.key in this_run:
            task.decided = Entry(row, url, label, kind="repeat", reason=f"same url and label as row {this_run[task.key]}")
            task.decided_as = "skipped"
        else:
            this_run[task.key] = row
        yield task


# --- the state log ----------------------------------------------------------------------------


class _State:
    """OUT/.mobilegen-fetch/state.jsonl: one JSON line per finished row, appended after its file is
    in place. A torn last line (a kill mid-write) is ignored and the file continues on a new line."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[bytes, tuple[str, str]] = {}  # row key -> (status, path relative to OUT)
        self.by_hash: dict[bytes, str] = {}  # sha256 of a kept file -> its path relative to OUT
        torn = False
        if path.exists():
            with open(path, "rb") as f:
                for line in f:
                    torn = not line.endswith(b"\n")
                    try:
                        rec = json.loads(line)
                        key, status, rel, sha = bytes.fromhex(rec["key"]), rec["status"], rec["path"], bytes.fromhex(rec["sha256"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    self.done[key] = (status, rel)
                    if status == "fetched":
                        self.by_hash.setdefault(sha, rel)
        self._f = open(path, "ab")
        if torn:
            self._f.write(b"\n")

    def add(self, task: _Task, status: str, rel: str, sha: bytes) -> None:
        rec = {"key": task.key.hex(), "status": status, "path": rel, "sha256": sha.hex(), "url": task.url, "label": task.label}
        self._f.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
        self._f.flush()
        self.done[task.key] = (status, rel)
        if status == "fetched":
            self.by_hash[sha] = rel

    def close(self) -> None:
        self._f.close()


# --- downloading ------------------------------------------------------------------------------


class _Failure(Exception):
    """One attempt failed: reason, whether another attempt may help, the server's Retry-After."""

    def __init__(self, reason: str, transient: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.transient = transient
        self.retry_after = retry_after


class RowFailed(Exception):
    """A row's download failed for good (its reason, and the attempts made)."""

    def __init__(self, reason: str, attempts: int):
        super().__init__(reason)
        self.attempts = attempts


@dataclass(frozen=True)
class _Downloaded:
    partial: Path
    sha256: bytes
    size: int
    facts: ImageFacts
    attempts: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects come back as HTTPError 3xx: _attempt follows them itself, checking each target."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _request_url(url: str) -> str:
    """`url` as http.client will send it: spaces and non-ASCII in the path/query percent-encoded,
    an international host name IDNA-encoded."""
    p = urllib.parse.urlsplit(url)
    host = p.netloc
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        userinfo, _, hostport = host.rpartition("@")
        name, colon, port = hostport.partition(":")
        host = (userinfo + "@" if userinfo else "") + name.encode("idna").decode() + colon + port
    safe = "/:@!$&'()*+,;=%~-._?[]"
    return urllib.parse.urlunsplit((p.scheme, host, urllib.parse.quote(p.path, safe=safe),
                                    urllib.parse.quote(p.query, safe=safe + "?"), ""))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _network_failure(e: BaseException, timeout: float) -> _Failure:
    """A connect/read error as a reason, transient when another attempt may succeed."""
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        e = e.reason if isinstance(e.reason, BaseException) else OSError(str(e.reason))
    if isinstance(e, (TimeoutError, socket.timeout)):
        return _Failure(f"no data for {timeout:g} s (timeout)", transient=True)
    if isinstance(e, http.client.RemoteDisconnected):
        return _Failure("the server closed the connection without an answer", transient=True)
    if isinstance(e, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return _Failure("connection reset", transient=True)
    if isinstance(e, ConnectionRefusedError):
        return _Failure("connection refused", transient=True)
    if isinstance(e, http.client.IncompleteRead):
        return _Failure(f"connection closed after {len(e.partial)} bytes", transient=True)
    if isinstance(e, socket.gaierror):
        return _Failure(f"host not found ({e.strerror or e})", transient=e.errno == socket.EAI_AGAIN)
    if isinstance(e, http.client.InvalidURL):
        return _Failure(f"invalid URL ({e})")
    if isinstance(e, http.client.HTTPException):
        return _Failure(f"bad HTTP answer ({type(e).__name__}: {e})")
    import ssl

    if isinstance(e, ssl.SSLError):  # certificate problems are not transient
        return _Failure(f"TLS: {getattr(e, 'reason', None) or e}")
    if isinstance(e, OSError):
        return _Failure(f"network error: {e.strerror or e}", transient=True)
    return _Failure(f"{type(e).__name__}: {e}")


def _set_read_timeout(resp, seconds: float) -> None:
    """Tighten the socket timeout of a response being read (so the deadline is kept to the read)."""
    try:
        resp.fp.raw._sock.settimeout(max(seconds, 0.001))
    except AttributeError:
        pass


def _tracked(base: type, fetcher: "_Fetcher") -> type:
    """`base` (an http.client connection class) that hands each socket it opens to the fetcher."""

    class Tracked(base):
        def connect(self):
            super().connect()
            fetcher.track(self.sock)

    return Tracked


@dataclass
class _Fetcher:
    partial_dir: Path
    timeout: float
    deadline: float
    retries: int
    backoff: float
    max_retry_after: float
    max_bytes: int
    formats: tuple[str, ...]
    min_side: int
    cancel: threading.Event = field(default_factory=threading.Event)
    _opener: urllib.request.OpenerDirector = field(init=False)
    _live_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        # Only what http/https need (urllib's default opener also reads file:, ftp: and data:
        # URLs): a scheme check that was ever skipped still could not read a local file.
        self._sockets: weakref.WeakSet = weakref.WeakSet()  # every connection's socket, for abort()
        http_conn, https_conn = _tracked(http.client.HTTPConnection, self), _tracked(http.client.HTTPSConnection, self)

        class _HTTP(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(http_conn, req)

        class _HTTPS(urllib.request.HTTPSHandler):
            def https_open(self, req):
                kw = {"context": self._context}
                if getattr(self, "_check_hostname", None) is not None:  # Python < 3.12
                    kw["check_hostname"] = self._check_hostname
                return self.do_open(https_conn, req, **kw)

        self._opener = urllib.request.OpenerDirector()
        for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _HTTP(), _HTTPS(),
                        urllib.request.HTTPDefaultErrorHandler(), _NoRedirect(), urllib.request.HTTPErrorProcessor()):
            self._opener.add_handler(handler)

    def track(self, sock) -> None:
        with self._live_lock:
            self._sockets.add(sock)
        if self.cancel.is_set():
            self.abort()

    def abort(self) -> None:
        """Stop every download now (Ctrl-C): every open connection is shut down, so a worker
        waiting for a first byte or a slow body returns at once instead of at its deadline."""
        self.cancel.set()
        with self._live_lock:
            live = list(self._sockets)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __call__(self, task: _Task) -> _Downloaded | None:
        if task.decided is not None:
            return None
        partial = self.partial_dir / f"{task.row}-{task.key.hex()[:12]}.part"
        try:
            return self._fetch(task.url, partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def _fetch(self, url: str, partial: Path) -> _Downloaded:
        attempts = 0
        while True:
            attempts += 1
            try:
                sha, size = self._attempt(url, partial)
                break
            except _Failure as f:
                reason = str(f)
                if not f.transient or self.cancel.is_set():
                    raise RowFailed(reason + (f" (attempt {attempts})" if attempts > 1 else ""), attempts) from None
                if attempts > self.retries:
                    raise RowFailed(f"{reason} ({attempts} attempts)" if attempts > 1 else reason, attempts) from None
                wait = self.backoff * 2 ** (attempts - 1) * random.uniform(0.5, 1.5)
                if f.retry_after is not None:
                    if f.retry_after > self.max_retry_after:
                        raise RowFailed(f"{reason}; Retry-After {f.retry_after:g} s is over the "
                                        f"{self.max_retry_after:g} s cap", attempts) from None
                    wait = max(wait, f.retry_after)
                if self.cancel.wait(wait):
                    raise RowFailed("interrupted", attempts) from None
        try:
            facts = inspect_image(partial, formats=self.formats, max_bytes=self.max_bytes, min_side=self.min_side)
        except ImageProblem as e:
            raise RowFailed(f"content: {e}", attempts) from None
        return _Downloaded(partial, sha, size, facts, attempts)

    def _attempt(self, url: str, partial: Path) -> tuple[bytes, int]:
        """One download into `partial`, redirects included: (sha256, size) or _Failure."""
        end = time.monotonic() + self.deadline
        seen = {url}
        current = url
        for hops in range(MAX_REDIRECTS + 1):
            left = end - time.monotonic()
            if left <= 0:
                raise _Failure(f"over the {self.deadline:g} s deadline (redirects)")
            req = urllib.request.Request(_request_url(current), headers={"User-Agent": USER_AGENT, "Accept": "image/*,*/*;q=0.5"})
            try:
                resp = self._opener.open(req, timeout=min(self.timeout, left))
            except urllib.error.HTTPError as e:
                with e:
                    status, headers, msg = e.code, e.headers, e.reason
                if status in REDIRECT_STATUSES:
                    location = headers.get("Location")
                    if not location:
                        raise _Failure(f"HTTP {status} redirect without a Location") from None
                    target = urllib.parse.urljoin(current, location.strip())
                    problem = _url_problem(target)
                    if problem is not None:
                        raise _Failure(f"redirect to {target}: {problem}") from None
                    if target in seen:
                        raise _Failure(f"redirect loop: back to {target} after {hops + 1} redirect(s)") from None
                    seen.add(target)
                    current = target
                    continue
                reason = f"HTTP {status} {msg}".rstrip()
                if status in RETRY_STATUSES:
                    raise _Failure(reason, transient=True, retry_after=_retry_after(headers.get("Retry-After"))) from None
                raise _Failure(reason) from None
            except Exception as e:
                raise _network_failure(e, self.timeout) from None
            with resp:
                return self._read(resp, partial, end)
        raise _Failure(f"more than {MAX_REDIRECTS} redirects")

    def _read(self, resp, partial: Path, end: float) -> tuple[bytes, int]:
        length = resp.headers.get("Content-Length")
        try:
            length = int(length) if length is not None else None
        except ValueError:
            length = None
        if length is not None and length > self.max_bytes:
            raise _Failure(f"Content-Length {length} bytes, over the limit of {self.max_bytes}")
        digest = hashlib.sha256()
        size = 0
        with open(partial, "wb") as f:
            while True:
                if self.cancel.is_set():
                    raise _Failure("interrupted")
                left = end - time.monotonic()
                if left <= 0:
                    raise _Failure(f"over the {self.deadline:g} s deadline ({size} bytes by then)")
                _set_read_timeout(resp, min(self.timeout, left))
                try:
                    chunk = resp.read1(READ_CHUNK)
                except Exception as e:
                    if isinstance(e, (TimeoutError, socket.timeout)) and time.monotonic() >= end - 0.01:
                        raise _Failure(f"over the {self.deadline:g} s deadline ({size} bytes by then)") from None
                    raise _network_failure(e, self.timeout) from None
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise _Failure(f"over the limit of {self.max_bytes} bytes (stopped reading at {size})")
                digest.update(chunk)
                f.write(chunk)
        if self.cancel.is_set():  # abort() ends a body early: never take that for the whole file
            raise _Failure("interrupted")
        if length is not None and size < length:
            raise _Failure(f"connection closed after {size} of {length} bytes", transient=True)
        return digest.digest(), size


# --- the run ----------------------------------------------------------------------------------


def _sha256_file(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


class _Lock:
    """An exclusive lock on OUT/.mobilegen-fetch/lock, so two fetches never write one folder."""

    def __init__(self, path: Path, out: Path):
        self._f = open(path, "a+b")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock; the partial names still differ per row
            return
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.close()
            raise UserInputError(f"{out}: another `mobilegen dataset fetch` is writing into it; wait for it or pick another --out") from None

    def close(self) -> None:
        self._f.close()


def _check_options(jobs, timeout, deadline, retries, backoff, max_bytes, min_side) -> None:
    for name, value, ok, expected in (
        ("jobs", jobs, jobs >= 1, "at least 1"),
        ("timeout", timeout, timeout > 0, "seconds > 0"),
        ("deadline", deadline, deadline > 0, "seconds > 0"),
        ("retries", retries, retries >= 0, "0 or more"),
        ("backoff", backoff, backoff >= 0, "seconds >= 0"),
        ("max_bytes", max_bytes, max_bytes >= 1, "at least 1"),
        ("min_side", min_side, min_side >= 0, "0 or more"),
    ):
        if not ok:
            raise UserInputError(f"{name} {value}: expected {expected}")


def _commit(task: _Task, d: _Downloaded, out: Path, state: _State, report: FetchReport) -> None:
    """Keep or drop one checked download, in CSV order: dedup, move in, then log."""
    prior = state.by_hash.get(d.sha256)
    if prior is not None and not (out / prior).is_file():
        prior = None  # its file was deleted since: this row brings it back
    if prior is not None:
        d.partial.unlink(missing_ok=True)
        prior_folder = prior.split("/", 1)[0]
        if prior_folder == task.folder:
            entry = Entry(task.row, task.url, task.label, path=prior, kind="duplicate",
                          reason=f"same content as {prior}", attempts=d.attempts)
            state.add(task, "duplicate", prior, d.sha256)
        else:
            entry = Entry(task.row, task.url, task.label, path=prior, kind="label-conflict",
                          reason=f"same content as {prior}, labelled {prior_folder!r} there; kept under the first label only",
                          attempts=d.attempts)
            state.add(task, "label-conflict", prior, d.sha256)
        report.skipped.append(entry)
        return
    assert task.folder is not None
    name = d.sha256.hex()[:16] + d.facts.suffix
    rel = f"{task.folder}/{name}"
    try:
        target = inside(out, task.folder, name)
    except UserInputError as e:
        d.partial.unlink(missing_ok=True)
        report.failed.append(Entry(task.row, task.url, task.label, reason=str(e), attempts=d.attempts))
        return
    target.parent.mkdir(exist_ok=True)
    if target.exists():
        # Kept by a run killed before it logged the file: leave it as it is (same bytes, same mtime).
        d.partial.unlink(missing_ok=True)
        if not target.is_file() or _sha256_file(target) != d.sha256:
            report.failed.append(Entry(task.row, task.url, task.label, attempts=d.attempts,
                                       reason=f"{rel} already exists with other content; not overwritten"))
            return
    else:
        os.replace(d.partial, target)
    state.add(task, "fetched", rel, d.sha256)
    report.fetched.append(Entry(task.row, task.url, task.label, path=rel, attempts=d.attempts))


def _write_report(report: FetchReport) -> None:
    path = inside(report.out, REPORT_FILE)
    tmp = inside(report.out, STATE_DIR, REPORT_FILE + ".tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def fetch_urls(
    csv_path: Path,
    out: Path,
    *,
    jobs: int = DEFAULT_JOBS,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    max_bytes: int = DEFAULT_MAX_BYTES,
    formats: tuple[str, ...] = WEB_FORMATS,
    min_side: int = 0,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> FetchReport:
    """Fetch every url,label row of `csv_path` into `out` (see the module docstring); the report
    is also written to OUT/fetch-report.json. on_progress(rows done, rows in the CSV) after each
    row. UserInputError for a missing CSV, an OUT that is a file, bad options, a CSV that is not
    UTF-8 or whose header has no label column, or another fetch running into OUT."""
    _check_options(jobs, timeout, deadline, retries, backoff, max_bytes, min_side)
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserInputError(f"{csv_path}: no such file; expected a CSV of url,label rows")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: is a file; expected a folder for the class folders")
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    state_dir = inside(out, STATE_DIR)
    state_dir.mkdir(exist_ok=True)
    lock = _Lock(inside(out, STATE_DIR, LOCK_FILE), out)
    try:
        partial_dir = inside(out, STATE_DIR, PARTIAL_DIR)
        shutil.rmtree(partial_dir, ignore_errors=True)  # whatever an interrupted run left
        partial_dir.mkdir()
        state = _State(inside(out, STATE_DIR, STATE_FILE))
        try:
            total = count_rows(csv_path) if on_progress is not None else None
            labels = LabelSet([p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")])
            report = FetchReport(csv=csv_path, out=out)
            fetcher = _Fetcher(partial_dir, timeout, deadline, retries, backoff, max_retry_after, max_bytes,
                               tuple(formats), min_side)
            with _abort_on_interrupt(fetcher):
                for oc in ordered_map(fetcher, _tasks(csv_path, labels, state, out), jobs):
                    task = oc.item
                    if task.decided is not None:
                        getattr(report, task.decided_as).append(task.decided)
                    elif oc.error is not None:
                        if not isinstance(oc.error, RowFailed):
                            raise oc.error
                        report.failed.append(Entry(task.row, task.url, task.label, reason=str(oc.error),
                                                   attempts=oc.error.attempts))
                    else:
                        _commit(task, oc.value, out, state, report)
                    if on_progress is not None:
                        on_progress(report.done, total)
        finally:
            state.close()
        _write_report(report)
        shutil.rmtree(partial_dir, ignore_errors=True)
    finally:
        lock.close()
    return report


class _abort_on_interrupt:
    """While fetching in the main thread, Ctrl-C first shuts the workers' sockets, so the thread
    pool winds down at once instead of after each download's deadline; then KeyboardInterrupt."""

    def __init__(self, fetcher: _Fetcher):
        self.fetcher = fetcher
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                self.fetcher.abort()
                if callable(self.previous):
                    self.previous(signum, frame)
                else:
                    raise KeyboardInterrupt

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
