"""`dataset fetch` against a local server on 127.0.0.1 (tests/http_fixture.py): good images, bad
content, size limits, timeouts and deadlines, redirects, status codes and retries, duplicates,
labels, bounded connections, resume (also after a killed run), the report, the CLI and that
`train`'s scan_folder reads what it writes. Timeouts here are fractions of a second."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mobilegen.cli.app import app
from mobilegen.data.folder import scan_folder
from mobilegen.dataset import fetch as fetch_mod
from mobilegen.dataset.fetch import PARTIAL_DIR, READ_CHUNK, REPORT_FILE, STATE_DIR, STATE_FILE, fetch_urls
from mobilegen.dataset.imagefile import inspect_image
from mobilegen.errors import UserInputError
from tests.http_fixture import http_server  # noqa: F401  (the fixture)

REPO = Path(__file__).resolve().parents[1]
# Quick settings for a local server: a stalled read gives up after 0.4 s, a download after 1 s.
FAST = dict(jobs=4, timeout=0.4, deadline=1.0, retries=2, backoff=0.01)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Whatever proxy the environment names, 127.0.0.1 is reached directly."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def image(fmt: str = "PNG", seed: int = 0, size: tuple[int, int] = (16, 16)) -> bytes:
    """A small image, distinct per seed."""
    im = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53 + 7) % 256))
    im.putpixel((seed % size[0], 0), (255 - seed % 256, 0, 0))
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def sha_name(body: bytes, suffix: str) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()[:16] + suffix


def write_csv(path: Path, rows: list[tuple[str, str]], header: str | None = "url,label") -> Path:
    lines = ([header] if header else []) + [f"{u},{lab}" for u, lab in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def class_files(out: Path) -> dict[str, bytes]:
    """Every file under OUT's class folders (hidden ones excluded), relative path -> bytes."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.parent != out and not any(part.startswith(".") for part in p.relative_to(out).parts)
    }


def by_url(entries) -> dict[str, object]:
    return {e.url.rsplit("/", 1)[-1]: e for e in entries}


# --- good images and what train reads ---------------------------------------------------------


def test_good_images_land_in_class_folders_that_scan_folder_reads(http_server, tmp_path):
    jpg, png, png2 = image("JPEG", 1), image("PNG", 2), image("PNG", 3)
    http_server.add("/cat1.jpg", jpg, "image/jpeg")
    http_server.add("/cat2", png, "image/jpeg")  # a PNG served as JPEG: the decoded format names the file
    http_server.add("/dog1.png", png2, "image/png")
    http_server.add("/dog2.jpg", image("JPEG", 4, (24, 20)), "image/jpeg")
    csv_path = write_csv(tmp_path / "urls.csv", [(http_server.url("/cat1.jpg"), "cat"), (http_server.url("/cat2"), "cat"),
                                                 (http_server.url("/dog1.png"), "dog"), (http_server.url("/dog2.jpg"), "dog")])
    out = tmp_path / "out"
    seen = []
    report = fetch_urls(csv_path, out, **FAST, on_progress=lambda done, total: seen.append((done, total)))
    assert report.ok and len(report.fetched) == 4 and not report.skipped
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    files = class_files(out)
    assert files[f"cat/{sha_name(jpg, '.jpg')}"] == jpg
    assert files[f"cat/{sha_name(png, '.png')}"] == png
    assert files[f"dog/{sha_name(png2, '.png')}"] == png2
    assert len(files) == 4
    assert [e.row for e in report.fetched] == [2, 3, 4, 5]  # CSV lines, the header is line 1
    assert by_url(report.fetched)["cat2"].path == f"cat/{sha_name(png, '.png')}"
    # What train reads: two classes, every file decodable, nothing skipped.
    folder = scan_folder(out)
    assert folder.classes == ["cat", "dog"] and len(folder.samples) == 4 and not folder.skipped
    # Bookkeeping stays hidden or in the root; no partial folder after a finished run.
    assert sorted(p.name for p in out.iterdir()) == [STATE_DIR, "cat", "dog", REPORT_FILE]
    assert not (out / STATE_DIR / PARTIAL_DIR).exists()
    saved = json.loads((out / REPORT_FILE).read_text())
    assert saved == json.loads(json.dumps(report.to_json()))
    assert saved["counts"] == {"fetched": 4, "skipped": 0, "failed": 0, "label_conflicts": 0}
    assert report.summary().splitlines()[0].endswith("4 fetched, 0 skipped, 0 failed")
    assert all(n == 1 for n in http_server.hits.values())
    ua = {h.get("User-Agent") for _, _, h in http_server.requests}
    assert len(ua) == 1 and ua.pop().startswith("mobilegen/")


# --- content checks ---------------------------------------------------------------------------


def test_bad_content_is_refused_not_retried_and_never_reaches_a_class_folder(http_server, tmp_path):
    good = image("JPEG", 5, (32, 32))
    routes = {
        "corrupt": (os.urandom(300), "image/jpeg"),
        "truncated": (good[: len(good) // 2], "image/jpeg"),
        "html": (b"<!DOCTYPE html><html><body>Sign in to continue</body></html>", "image/jpeg"),
        "empty": (b"", "image/png"),
        "tiff": (image("TIFF", 6), "image/tiff"),  # decodes, but not a web format
        "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "image/svg+xml"),
        "tiny": (image("PNG", 7, (8, 8)), "image/png"),  # under --min-side
    }
    for name, (body, ctype) in routes.items():
        http_server.add("/" + name, body, ctype)
    http_server.add("/ok", good, "image/jpeg")
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/" + n), "x") for n in [*routes, "ok"]])
    out = tmp_path / "out"
    report = fetch_urls(csv_path, out, **FAST, min_side=12)
    failed = by_url(report.failed)
    assert set(failed) == set(routes)
    expect = {"corrupt": "not an image", "truncated": "content:", "html": "HTML, not an image", "empty": "empty",
              "tiff": "TIFF image; allowed", "svg": "XML/SVG", "tiny": "smaller than 12"}
    for name, words in expect.items():
        assert words in failed[name].reason, (name, failed[name].reason)
        assert failed[name].attempts == 1 and http_server.hits["/" + name] == 1  # content problems: no retry
    assert list(class_files(out)) == [f"x/{sha_name(good, '.jpg')}"]
    assert not (out / STATE_DIR / PARTIAL_DIR).exists()


def _unsized(body: bytes, ctype: str = "image/jpeg"):
    """A route that sends `body` without Content-Length (it ends when the connection closes)."""

    def answer(h, hit):
        h.send_head(200, ctype, None)
        h.wfile.write(body)

    return answer


def test_size_limit_is_enforced_while_streaming(http_server, tmp_path):
    limit = 100_000
    http_server.huge("/huge-sized", 50_000_000, content_length=True)
    http_server.huge("/huge-unsized", 50_000_000, content_length=False)
    at_limit = image("PNG", 8)
    http_server.route("/exact", _unsized(at_limit, "image/png"))
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/huge-sized"), "a"), (http_server.url("/huge-unsized"), "a"),
                                              (http_server.url("/exact"), "a")])
    report = fetch_urls(csv_path, tmp_path / "out", **FAST, max_bytes=limit)
    failed = by_url(report.failed)
    # Refused from the header, before reading the body.
    assert failed["huge-sized"].reason == f"Content-Length 50000000 bytes, over the limit of {limit}"
    # No header to go by: reading stops within one chunk of the limit, not at the end of 50 MB.
    reason = failed["huge-unsized"].reason
    assert reason.startswith(f"over the limit of {limit} bytes (stopped reading at ")
    stopped = int(reason.rsplit(" ", 1)[1].rstrip(")"))
    assert limit < stopped <= limit + READ_CHUNK
    assert http_server.hits["/huge-sized"] == http_server.hits["/huge-unsized"] == 1
    # A file of exactly the limit is accepted, one byte over is not.
    assert [e.url.rsplit("/", 1)[-1] for e in report.fetched] == ["exact"]
    r2 = fetch_urls(csv_path, tmp_path / "out2", **FAST, max_bytes=len(at_limit) - 1)
    assert "over the limit" in by_url(r2.failed)["exact"].reason


# --- timeouts, deadline, status codes, retries -------------------------------------------------


def test_slow_first_byte_times_out_and_is_retried(http_server, tmp_path):
    http_server.slow_first_byte("/slow", image("PNG", 9), "image/png", delay=5)
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/slow"), "a")])
    t0 = time.monotonic()
    report = fetch_urls(csv_path, tmp_path / "out", **{**FAST, "timeout": 0.3, "retries": 1})
    elapsed = time.monotonic() - t0
    (e,) = report.failed
    assert e.reason == "no data for 0.3 s (timeout) (2 attempts)" and e.attempts == 2
    assert http_server.hits["/slow"] == 2
    assert elapsed < 2.0


def test_slow_drip_is_cut_by_the_total_deadline(http_server, tmp_path):
    # One byte every 50 ms: every read is quick (under the 0.4 s timeout), the whole would take ~10 s.
    http_server.drip("/drip", image("PNG", 10) + b"\0" * 100, "image/png", interval=0.05)
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/drip"), "a")])
    t0 = time.monotonic()
    report = fetch_urls(csv_path, tmp_path / "out", **{**FAST, "deadline": 0.6})
    elapsed = time.monotonic() - t0
    (e,) = report.failed
    assert e.reason.startswith("over the 0.6 s deadline (") and e.reason.endswith(" bytes by then)")
    assert http_server.hits["/drip"] == 1  # a server that answers slowly is not hammered again
    assert elapsed < 1.5


def test_status_codes_and_connection_resets(http_server, tmp_path):
    http_server.add("/missing", b"no", "text/plain", status=404)
    http_server.add("/gone", b"no", "text/plain", status=410)
    http_server.add("/broken", b"oops", "text/plain", status=500)
    http_server.reset("/reset")
    http_server.flaky("/too-long", image("PNG", 11), "image/png", failures=1, status=429, retry_after=3600)
    http_server.add("/tls", image("PNG", 11), "image/png")
    rows = [(http_server.url(p), "a") for p in ["/missing", "/gone", "/broken", "/reset", "/too-long"]]
    rows.append((http_server.url("/tls").replace("http:", "https:"), "a"))  # TLS to a plain HTTP server
    csv_path = write_csv(tmp_path / "u.csv", rows)
    report = fetch_urls(csv_path, tmp_path / "out", **FAST)
    failed = by_url(report.failed)
    assert failed["missing"].reason == "HTTP 404 Not Found" and http_server.hits["/missing"] == 1
    assert failed["gone"].reason == "HTTP 410 Gone" and http_server.hits["/gone"] == 1
    # Transient: 1 + retries attempts, and the reason says so.
    assert failed["broken"].reason == "HTTP 500 Internal Server Error (3 attempts)" and http_server.hits["/broken"] == 3
    assert failed["reset"].reason == "connection reset (3 attempts)" and http_server.hits["/reset"] == 3
    # A Retry-After over the cap fails the row at once instead of sleeping an hour.
    assert failed["too-long"].reason == "HTTP 429 Too Many Requests; Retry-After 3600 s is over the 60 s cap"
    assert http_server.hits["/too-long"] == 1
    assert failed["tls"].reason.startswith("TLS: ") and failed["tls"].attempts == 1  # not retried


@pytest.mark.parametrize("status, retry_after", [(500, None), (503, None), (429, "1"), ("reset", None)])
def test_transient_failures_then_ok_are_retried(http_server, tmp_path, status, retry_after):
    body = image("PNG", 12)
    http_server.flaky("/flaky", body, "image/png", failures=2 if retry_after is None else 1, status=status, retry_after=retry_after)
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/flaky"), "a")])
    t0 = time.monotonic()
    report = fetch_urls(csv_path, tmp_path / "out", **FAST)
    elapsed = time.monotonic() - t0
    (e,) = report.fetched
    tries = 3 if retry_after is None else 2
    assert http_server.hits["/flaky"] == tries and e.attempts == tries
    assert class_files(tmp_path / "out") == {f"a/{sha_name(body, '.png')}": body}
    if retry_after is not None:
        assert elapsed >= 1.0  # the server's Retry-After, not the 10 ms backoff
    else:
        assert elapsed < 1.0


def test_redirects(http_server, tmp_path):
    body = image("JPEG", 13)
    http_server.add("/real.jpg", body, "image/jpeg")
    http_server.redirect("/one", "/two", status=301)
    http_server.redirect("/two", "real.jpg", status=307)  # a relative Location
    http_server.redirect("/loop-a", "/loop-b")
    http_server.redirect("/loop-b", "/loop-a")
    http_server.redirect("/to-file", "file:///etc/passwd")
    http_server.redirect("/to-ftp", "ftp://127.0.0.1/x.jpg")
    for i in range(7):
        http_server.redirect(f"/chain{i}", f"/chain{i + 1}")
    http_server.add("/chain7", body, "image/jpeg")
    names = ["one", "loop-a", "to-file", "to-ftp", "chain0"]
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/" + n), "a") for n in names])
    report = fetch_urls(csv_path, tmp_path / "out", **FAST)
    assert [e.url.rsplit("/", 1)[-1] for e in report.fetched] == ["one"]
    assert report.fetched[0].path == f"a/{sha_name(body, '.jpg')}"
    failed = by_url(report.failed)
    assert failed["loop-a"].reason == f"redirect loop: back to {http_server.url('/loop-a')} after 2 redirect(s)"
    assert failed["to-file"].reason == "redirect to file:///etc/passwd: scheme file: refused: only http and https are fetched"
    assert failed["to-ftp"].reason.startswith("redirect to ftp://127.0.0.1/x.jpg: scheme ftp: refused")
    assert failed["chain0"].reason == "more than 5 redirects"
    assert http_server.hits["/chain6"] == 0  # bounded: stops after five
    assert http_server.hits["/loop-a"] == http_server.hits["/loop-b"] == 1


# --- rows, labels, duplicates, connections -----------------------------------------------------


def test_rows_and_labels_that_are_refused_cause_no_request(http_server, tmp_path):
    http_server.add("/img", image("PNG", 14), "image/png")
    url = http_server.url("/img")
    text = "\n".join([
        "\ufeffLabel,URL,comment",  # BOM, header in another order and case, an extra column
        f"cat,{url},kept",
        "",
        f"../x,{url},",
        f"/abs,{url},",
        f",{url},",
        f".hidden,{url},",
        f"a/b,{url},",
        "onlyone",
        "cat,ftp://127.0.0.1/x.jpg,",
        "cat,file:///etc/passwd,",
        "cat,,",
        '"unterminated,quote',
    ]) + "\n"
    csv_path = tmp_path / "u.csv"
    csv_path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    report = fetch_urls(csv_path, out, **FAST)
    assert [e.row for e in report.fetched] == [2]
    reasons = {e.row: e.reason for e in report.failed}
    assert "path separator" in reasons[4] and "path separator" in reasons[5] and "path separator" in reasons[8]
    assert "empty" in reasons[6] and "hidden" in reasons[7]
    assert reasons[9] == "expected url,label; got 1 column(s)"
    assert reasons[10] == "scheme ftp: refused: only http and https are fetched"
    assert reasons[11] == "scheme file: refused: only http and https are fetched"
    assert reasons[12] == "no URL"
    assert len(report.failed) == 10  # the unterminated quote swallows the rest of the file into one bad row
    assert http_server.hits["/img"] == 1  # only the good row asked
    # Nothing written outside OUT, whatever the labels said.
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.iterdir()) == ["out", "u.csv"]
    assert [p.name for p in out.iterdir() if not p.name.startswith(".") and p.is_dir()] == ["cat"]


def test_header_without_a_label_column_is_a_user_error(tmp_path):
    csv_path = tmp_path / "u.csv"
    csv_path.write_text("url,name\nhttp://127.0.0.1:9/a,cat\n")
    with pytest.raises(UserInputError, match="names no 'label' column"):
        fetch_urls(csv_path, tmp_path / "out", **FAST)


def test_labels_differing_in_case_share_the_first_spelling(http_server, tmp_path):
    http_server.add("/a", image("PNG", 15), "image/png")
    http_server.add("/b", image("PNG", 16), "image/png")
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/a"), "Cat"), (http_server.url("/b"), " cat ")])
    report = fetch_urls(csv_path, tmp_path / "out", **FAST)
    assert [e.path.split("/")[0] for e in report.fetched] == ["Cat", "Cat"]


def test_duplicates_first_in_csv_order_wins_whatever_finishes_first(http_server, tmp_path):
    same = image("JPEG", 17)
    # The first row's copy answers late, so the second row's copy is downloaded first.
    http_server.slow_first_byte("/first", same, "image/jpeg", delay=0.25)
    http_server.add("/second", same, "image/jpeg")
    http_server.add("/third", same, "image/jpeg")
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/first"), "cat"), (http_server.url("/second"), "cat"),
                                              (http_server.url("/third"), "dog")])
    report = fetch_urls(csv_path, tmp_path / "out", **FAST)
    kept = f"cat/{sha_name(same, '.jpg')}"
    assert [(e.row, e.path) for e in report.fetched] == [(2, kept)]
    dup, conflict = report.skipped
    assert (dup.row, dup.kind, dup.path, dup.reason) == (3, "duplicate", kept, f"same content as {kept}")
    assert (conflict.row, conflict.kind, conflict.path) == (4, "label-conflict", kept)
    assert "labelled 'cat' there" in conflict.reason
    assert report.ok and "label conflict: row 4" in report.summary()
    assert list(class_files(tmp_path / "out")) == [kept]


def test_concurrent_requests_stay_within_jobs(http_server, tmp_path):
    for i in range(12):
        http_server.slow_first_byte(f"/{i}", image("PNG", 100 + i), "image/png", delay=0.1)
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url(f"/{i}"), "a") for i in range(12)])
    report = fetch_urls(csv_path, tmp_path / "out", **{**FAST, "jobs": 3})
    assert len(report.fetched) == 12
    assert http_server.max_in_flight == 3  # parallel, and never more than --jobs


def test_a_second_fetch_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    (out / STATE_DIR).mkdir(parents=True)
    holder = fetch_mod._Lock(out / STATE_DIR / "lock", out)
    try:
        csv_path = write_csv(tmp_path / "u.csv", [])
        with pytest.raises(UserInputError, match="another `mobilegen dataset fetch` is writing"):
            fetch_urls(csv_path, out, **FAST)
    finally:
        holder.close()


# --- resuming -----------------------------------------------------------------------------------


def _stat(out: Path) -> dict[str, tuple[bytes, int]]:
    return {rel: (body, (out / rel).stat().st_mtime_ns) for rel, body in class_files(out).items()}


def test_rerun_makes_no_request_for_done_rows_and_changes_no_file(http_server, tmp_path):
    imgs = {f"/{i}": image("PNG", 200 + i) for i in range(4)}
    for p, body in imgs.items():
        http_server.add(p, body, "image/png")
    http_server.add("/dup", imgs["/0"], "image/png")
    http_server.add("/later", b"not yet", "text/plain", status=404)
    rows = [(http_server.url(p), "a" if i % 2 else "b") for i, p in enumerate(imgs)]
    rows += [(http_server.url("/dup"), "b"), (http_server.url("/later"), "a")]
    csv_path = write_csv(tmp_path / "u.csv", rows)
    out = tmp_path / "out"
    first = fetch_urls(csv_path, out, **FAST)
    assert len(first.fetched) == 4 and len(first.skipped) == 1 and len(first.failed) == 1
    before = _stat(out)
    time.sleep(0.01)
    http_server.reset_counts()
    http_server.add("/later", image("PNG", 250), "image/png")  # what failed before works now
    second = fetch_urls(csv_path, out, **FAST)
    assert dict(http_server.hits) == {"/later": 1}  # only the failed row is asked again
    assert [e.url.rsplit("/", 1)[-1] for e in second.fetched] == ["later"]
    assert [(e.kind, e.path) for e in second.skipped] == [("done", e.path) for e in first.fetched] + [("done", first.skipped[0].path)]
    after = _stat(out)
    assert {k: after[k] for k in before} == before  # same bytes, same mtimes
    # A third run: nothing at all.
    http_server.reset_counts()
    third = fetch_urls(csv_path, out, **FAST)
    assert not http_server.hits and not third.fetched and len(third.skipped) == 6 and third.ok
    assert _stat(out) == after
    # A kept file deleted by hand is fetched again.
    victim = first.fetched[1].path
    (out / victim).unlink()
    fourth = fetch_urls(csv_path, out, **FAST)
    assert [e.path for e in fourth.fetched] == [victim] and sum(http_server.hits.values()) == 1


def test_torn_state_log_and_an_unlogged_kept_file(http_server, tmp_path):
    """What a kill can leave: a half-written last line, a file moved in but not logged, a stale
    partial file. The re-run copes with each and does not rewrite the kept file."""
    a, b = image("PNG", 300), image("PNG", 301)
    http_server.add("/a", a, "image/png")
    http_server.add("/b", b, "image/png")
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/a"), "x"), (http_server.url("/b"), "x")])
    out = tmp_path / "out"
    fetch_urls(csv_path, out, **FAST)
    log = out / STATE_DIR / STATE_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    assert len(lines) == 2
    log.write_bytes(lines[0] + lines[1][:25])  # b's line torn mid-write
    (out / STATE_DIR / PARTIAL_DIR).mkdir()
    (out / STATE_DIR / PARTIAL_DIR / "9-stale.part").write_bytes(b"\xff\xd8 half")
    before = _stat(out)
    http_server.reset_counts()
    report = fetch_urls(csv_path, out, **FAST)
    assert dict(http_server.hits) == {"/b": 1}
    assert [e.path for e in report.fetched] == [f"x/{sha_name(b, '.png')}"]
    assert _stat(out) == before  # b found in place with the same content: not replaced
    assert not (out / STATE_DIR / PARTIAL_DIR).exists()
    recs = [json.loads(line) for line in log.read_bytes().splitlines() if line.strip().startswith(b"{") and line.endswith(b"}")]
    assert [r["status"] for r in recs] == ["fetched", "fetched"]
    http_server.reset_counts()
    fetch_urls(csv_path, out, **FAST)
    assert not http_server.hits


def _mobilegen() -> Path:
    exe = Path(sys.executable).parent / "mobilegen"
    if not exe.exists():
        pytest.skip(f"{exe}: the console script is not installed (make setup)")
    return exe


def test_killed_run_resumes_cleanly(http_server, tmp_path):
    """A real `mobilegen dataset fetch` killed (SIGKILL) while two downloads are mid-body: class
    folders hold only the finished, checked files; the re-run fetches the rest without asking
    again for what was done."""
    fast = {f"/f{i}": image("PNG", 400 + i) for i in range(3)}
    for p, body in fast.items():
        http_server.add(p, body, "image/png")
    slow = {f"/s{i}": image("PNG", 410 + i) + b"\0" * 400 for i in range(2)}
    for p, body in slow.items():
        http_server.drip(p, body, "image/png", interval=0.02)  # ~8 s each
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url(p), "k") for p in [*fast, *slow]])
    out = tmp_path / "out"
    env = {**os.environ, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    proc = subprocess.Popen([str(_mobilegen()), "dataset", "fetch", str(csv_path), "--out", str(out), "--jobs", "5",
                             "--timeout", "5", "--deadline", "30"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = out / STATE_DIR / PARTIAL_DIR
    log = out / STATE_DIR / STATE_FILE
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end:
            done = log.read_bytes().count(b"\n") if log.exists() else 0
            if done == 3 and http_server.in_flight == 2:  # three kept, both drips mid-body
                break
            time.sleep(0.02)
        else:
            pytest.fail(f"the run never reached 3 done and 2 downloading: {proc.poll()=}")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    files = class_files(out)
    assert sorted(files) == sorted(f"k/{sha_name(b, '.png')}" for b in fast.values())
    assert len(list(partial.glob("*.part"))) == 2  # the interrupted downloads: hidden, cleared by the next run
    for rel in files:
        inspect_image(out / rel)  # each one complete and decodable
    before = _stat(out)
    http_server.reset_counts()
    for p, body in slow.items():
        http_server.add(p, body, "image/png")
    report = fetch_urls(csv_path, out, **FAST)
    assert dict(http_server.hits) == {p: 1 for p in slow}, (log.read_text(), report.to_json())
    assert len(report.fetched) == 2 and [e.kind for e in report.skipped] == ["done"] * 3 and report.ok
    assert {k: v for k, v in _stat(out).items() if k in before} == before
    assert not partial.exists()


def test_ctrl_c_stops_at_once_and_says_how_to_resume(http_server, tmp_path):
    """SIGINT while one download waits for its first byte and another drips: the open connections
    are shut down, so the command ends now, not when the 30 s timeout or deadline would."""
    http_server.add("/f", image("PNG", 420), "image/png")
    http_server.slow_first_byte("/wait", image("PNG", 421), "image/png", delay=30)
    http_server.drip("/drip", image("PNG", 422) + b"\0" * 2000, "image/png", interval=0.02)
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url(p), "k") for p in ["/f", "/wait", "/drip"]])
    out = tmp_path / "out"
    env = {**os.environ, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    proc = subprocess.Popen([str(_mobilegen()), "dataset", "fetch", str(csv_path), "--out", str(out),
                             "--timeout", "30", "--deadline", "60"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 15
        while not (http_server.hits["/wait"] and http_server.hits["/drip"] and http_server.hits["/f"]) and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert elapsed < 2.0
    assert "interrupted: run the same command again to resume" in stderr and "Traceback" not in stderr
    assert list(class_files(out)) == [f"k/{sha_name(image('PNG', 420), '.png')}"]


# --- CLI ----------------------------------------------------------------------------------------


def test_cli_exit_codes_json_and_summary(http_server, tmp_path):
    http_server.add("/a", image("PNG", 500), "image/png")
    http_server.add("/b", image("JPEG", 501), "image/jpeg")
    http_server.add("/404", b"", "text/plain", status=404)
    good = write_csv(tmp_path / "good.csv", [(http_server.url("/a"), "a"), (http_server.url("/b"), "b")])
    bad = write_csv(tmp_path / "bad.csv", [(http_server.url("/a"), "a"), (http_server.url("/404"), "b")])
    runner = CliRunner()
    r = runner.invoke(app, ["dataset", "fetch", str(good), "--out", str(tmp_path / "o1"), "--timeout", "0.5", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["counts"]["fetched"] == 2
    assert scan_folder(tmp_path / "o1").classes == ["a", "b"]
    r = runner.invoke(app, ["dataset", "fetch", str(bad), "--out", str(tmp_path / "o2"), "--timeout", "0.5", "--retries", "0"])
    assert r.exit_code == 1
    assert "1 fetched, 0 skipped, 1 failed" in r.stdout and "HTTP 404 Not Found" in r.stdout
    r = runner.invoke(app, ["dataset", "fetch", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o3")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(app, ["dataset", "fetch", str(good), "--out", str(tmp_path / "o4"), "--jobs", "0"])
    assert r.exit_code == 2
    (tmp_path / "afile").write_text("x")
    r = runner.invoke(app, ["dataset", "fetch", str(good), "--out", str(tmp_path / "afile")])
    assert r.exit_code == 2
    r = runner.invoke(app, ["dataset", "fetch", "--help"])
    assert r.exit_code == 0 and "Exit status" in r.stdout


def test_cli_subprocess(http_server, tmp_path):
    """The installed console script, as a user runs it: exit 1 with a failed row, JSON on stdout,
    nothing but the JSON there; stderr quiet (not a TTY)."""
    http_server.add("/a", image("PNG", 600), "image/png")
    http_server.add("/b", image("PNG", 601), "image/png")
    http_server.add("/html", b"<html></html>", "image/jpeg")
    csv_path = write_csv(tmp_path / "u.csv", [(http_server.url("/a"), "a"), (http_server.url("/b"), "b"),
                                              (http_server.url("/html"), "b")])
    env = {**os.environ, "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    r = subprocess.run([str(_mobilegen()), "dataset", "fetch", str(csv_path), "--out", str(tmp_path / "out"), "--json",
                        "--timeout", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["counts"] == {"fetched": 2, "skipped": 0, "failed": 1, "label_conflicts": 0}
    assert doc["failed"][0]["reason"] == "content: HTML, not an image" and doc["failed"][0]["row"] == 4
    assert r.stderr == ""
    assert scan_folder(tmp_path / "out").classes == ["a", "b"]
