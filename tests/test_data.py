"""mobilegen.data: image folders (corrupt files, bad layouts), the validation split, the content
hash that keys caches, decoding identical to the simulator's input, the built-in rendered dataset
and the tf.data pipeline."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobilegen.data import folder as F
from mobilegen.data.folder import ImageFolder, Sample, content_hash, report_skipped, scan_folder, split
from mobilegen.data.images import load_batch, load_image
from mobilegen.errors import UserInputError
from mobilegen.inputs import image_to_input
from mobilegen.ir.graph import Tensor


def noise_image(seed: int, size=(24, 20), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)


def make_folder(root: Path, counts: dict[str, int], suffix=".png") -> Path:
    """root/<class>/<i><suffix>, each a different random image."""
    seed = 0
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            noise_image(seed).save(root / cls / f"{i:03d}{suffix}")
            seed += 1
    return root


def jpeg_bytes(seed=0, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    noise_image(seed, size).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


# -- scanning ---------------------------------------------------------------------------------------
def test_scan_sorted_classes_and_samples(tmp_path):
    make_folder(tmp_path, {"zebra": 3, "ant": 2, "moth": 4})
    (tmp_path / "moth" / "nested").mkdir()
    noise_image(99).save(tmp_path / "moth" / "nested" / "000.png")
    # ignored: a file in the root, non-image files, hidden files and folders
    (tmp_path / "README.txt").write_text("not data")
    (tmp_path / "ant" / "notes.txt").write_text("x")
    (tmp_path / "ant" / ".hidden.png").write_bytes(b"")
    (tmp_path / ".cache").mkdir()
    noise_image(98).save(tmp_path / ".cache" / "a.png")
    f = scan_folder(tmp_path)
    assert f.root == tmp_path.resolve()
    assert f.classes == ["ant", "moth", "zebra"]
    assert f.skipped == []
    names = [(s.label, s.path.relative_to(tmp_path).as_posix()) for s in f.samples]
    assert names == sorted(names)
    assert [s.label for s in f.samples] == [0] * 2 + [1] * 5 + [2] * 3
    assert all(s.path.is_absolute() for s in f.samples)
    assert (1, "moth/nested/000.png") in names


def test_corrupt_images_are_reported_counted_and_skipped(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 3})
    good_jpeg = jpeg_bytes()
    (tmp_path / "a" / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (tmp_path / "b" / "random.png").write_bytes(np.random.default_rng(0).bytes(500))
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    (tmp_path / "b" / "fine.jpg").write_bytes(good_jpeg)
    f = scan_folder(tmp_path)
    skipped = {p.name: reason for p, reason in f.skipped}
    assert set(skipped) == {"truncated.jpg", "random.png", "empty.jpg"}
    assert all(skipped.values())
    assert len(f.samples) == 7 and (tmp_path / "b" / "fine.jpg").resolve() in {s.path for s in f.samples}
    # What the scan keeps decodes, and what it skips is exactly what decoding would reject.
    load_batch([s.path for s in f.samples], 16)
    for p, _ in f.skipped:
        with pytest.raises(UserInputError, match="cannot decode image"):
            load_image(p, 16)
    lines = []
    report_skipped(f, lines.append)
    assert len(lines) == 1 and lines[0].startswith("skipped 3 corrupt images: ")
    for name in ("a/truncated.jpg", "b/random.png", "b/empty.jpg"):
        assert name in lines[0]
    # verify=False trusts the files: nothing is skipped
    assert len(scan_folder(tmp_path, verify=False).samples) == 10


def test_report_skipped_is_quiet_without_skips_and_counts_many(tmp_path):
    make_folder(tmp_path, {"a": 1, "b": 1})
    lines = []
    report_skipped(scan_folder(tmp_path), lines.append)
    assert lines == []
    for i in range(8):
        (tmp_path / "a" / f"bad{i}.png").write_bytes(b"nope")
    report_skipped(scan_folder(tmp_path), lines.append)
    assert len(lines) == 1 and "skipped 8 corrupt images" in lines[0] and "and 3 more" in lines[0]


def test_empty_class_folder_is_a_one_line_error_naming_it(tmp_path):
    make_folder(tmp_path, {"cat": 2, "dog": 2})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(UserInputError) as e:
        scan_folder(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path.resolve() / "empty") in msg and "empty class folder" in msg


def test_class_with_only_corrupt_images_is_an_error(tmp_path):
    make_folder(tmp_path, {"cat": 2})
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "x.jpg").write_bytes(b"")
    with pytest.raises(UserInputError) as e:
        scan_folder(tmp_path)
    msg = one_line_error(e)
    assert "dog" in msg and "no decodable image" in msg


def test_single_class_is_a_one_line_error(tmp_path):
    make_folder(tmp_path, {"only": 3})
    with pytest.raises(UserInputError) as e:
        scan_folder(tmp_path)
    msg = one_line_error(e)
    assert str(tmp_path.resolve()) in msg and "only one class folder (only)" in msg


@pytest.mark.parametrize("case", ["missing", "file", "no_classes"])
def test_bad_roots(tmp_path, case):
    root = tmp_path / "data"
    if case == "file":
        root.write_text("x")
    elif case == "no_classes":
        root.mkdir()
        noise_image(0).save(root / "loose.png")
    with pytest.raises(UserInputError) as e:
        scan_folder(root)
    msg = one_line_error(e)
    assert str(root) in msg
    assert ("no class folders" if case == "no_classes" else "no such directory") in msg


def test_resolve_data_takes_a_folder(tmp_path):
    make_folder(tmp_path, {"a": 2, "b": 2})
    assert F.resolve_data(tmp_path).classes == ["a", "b"]
    assert len(F.resolve_data(str(tmp_path)).samples) == 4


# -- split ------------------------------------------------------------------------------------------
def synthetic_folder(counts: list[int]) -> ImageFolder:
    """An ImageFolder without files (split only looks at names and labels)."""
    classes = [f"c{i}" for i in range(len(counts))]
    samples = [Sample(Path(f"/data/{classes[c]}/{i:04d}.png"), c) for c, n in enumerate(counts) for i in range(n)]
    return ImageFolder(Path("/data"), classes, samples, [])


def test_split_is_deterministic_stratified_and_disjoint():
    f = synthetic_folder([50, 20, 7, 2, 1])
    train, val = split(f, 0.2, seed=0)
    assert split(f, 0.2, seed=0) == (train, val)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(f.samples)
    assert sorted(train + val, key=f.samples.index) == f.samples
    per_class_val = [sum(s.label == c for s in val) for c in range(5)]
    assert per_class_val == [10, 4, 1, 1, 0]  # round(0.2 n), at least 1 when n >= 2, none from a single image
    assert {s.label for s in train} == set(range(5))
    # another seed picks other images (same counts)
    train1, val1 = split(f, 0.2, seed=1)
    assert set(val1) != set(val) and [sum(s.label == c for s in val1) for c in range(5)] == per_class_val
    # order within each list follows the folder
    assert train == [s for s in f.samples if s in set(train)]


def test_split_fractions():
    f = synthetic_folder([10, 10])
    assert split(f, 0.0) == (f.samples, [])
    assert len(split(f, 0.5)[1]) == 10
    assert len(split(f, 0.99)[0]) == 2  # every class keeps one training image
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(UserInputError, match="validation fraction"):
            split(f, bad)


# -- content hash -----------------------------------------------------------------------------------
def test_content_hash_tracks_bytes_names_and_labels(tmp_path):
    root = make_folder(tmp_path / "d", {"a": 3, "b": 3})

    def h(r=root):
        f = scan_folder(r)
        return content_hash(f.samples, f.classes)

    base = h()
    assert h() == base and len(base) == 64
    f = scan_folder(root)
    assert content_hash(list(reversed(f.samples)), f.classes) == base  # order does not matter
    # the same data elsewhere: same hash
    shutil.copytree(root, tmp_path / "moved")
    assert h(tmp_path / "moved") == base
    # one image's bytes
    noise_image(1000).save(root / "a" / "001.png")
    changed = h()
    assert changed != base
    shutil.rmtree(root)
    shutil.copytree(tmp_path / "moved", root)
    assert h() == base
    # a name
    (root / "a" / "001.png").rename(root / "a" / "001b.png")
    assert h() != base
    (root / "a" / "001b.png").rename(root / "a" / "001.png")
    assert h() == base
    # a removed image
    (root / "b" / "001.png").unlink()
    removed = h()
    assert removed != base
    # a label: the same file, same name, moved to the other class
    (root / "a" / "001.png").rename(root / "b" / "001.png")
    assert h() not in (base, removed)


# -- decoding ---------------------------------------------------------------------------------------
def reference_input(path: Path, resolution: int, mean=127.5, std=127.5) -> np.ndarray:
    """What the simulator is fed for a float model input [1][res][res][3]."""
    t = Tensor(index=0, name="input", shape=(1, resolution, resolution, 3), dtype="float32")
    return image_to_input(path, t, mean, std)


def test_load_image_equals_the_simulators_input(tmp_path):
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (50, 70, 4), dtype=np.uint8), "RGBA")
    images = {
        "rgb.png": noise_image(1, (37, 53)),
        "rgba.png": rgba,
        "grey.png": noise_image(2, (128, 96), "L"),
        "palette.png": noise_image(3, (90, 90)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
        "photo.jpg": noise_image(4, (300, 200)),
        "square.png": noise_image(5, (128, 128)),
    }
    for name, im in images.items():
        im.save(tmp_path / name)
    paths = [tmp_path / n for n in images]
    for res in (16, 128, 160, 224):
        for p in paths:
            for mean, std in ((127.5, 127.5), (128.0, 127.0), (0.0, 1.0)):
                got = load_image(p, res, mean, std)
                want = reference_input(p, res, mean, std)[0]
                assert got.dtype == np.float32 and got.shape == (res, res, 3)
                assert np.array_equal(got, want), (p.name, res, mean, std)
        batch = load_batch(paths, res)
        assert batch.shape == (len(paths), res, res, 3) and batch.dtype == np.float32
        assert np.array_equal(batch, np.stack([reference_input(p, res)[0] for p in paths]))
    # independent of image_to_input: at the image's own size nothing is resampled
    px = np.asarray(images["square.png"], dtype=np.float32)
    assert np.array_equal(load_image(paths[-1], 128, 0.0, 1.0), px)
    assert np.array_equal(load_image(paths[-1], 128), (px - 127.5) / 127.5)
    assert load_batch([], 32).shape == (0, 32, 32, 3)


# -- the built-in dataset ---------------------------------------------------------------------------
from mobilegen.data import builtin as B  # noqa: E402

SMALL = dict(per_class=6, size=48)


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_builtin_is_deterministic_per_seed(tmp_path):
    a = files_of(B.render_builtin(tmp_path / "a", **SMALL, seed=0))
    b = files_of(B.render_builtin(tmp_path / "b", **SMALL, seed=0))
    c = files_of(B.render_builtin(tmp_path / "c", **SMALL, seed=1))
    assert len(a) == 6 * len(B.builtin_classes()) and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    # more images per class keep the first ones
    d = files_of(B.render_builtin(tmp_path / "d", per_class=8, size=48, seed=0))
    assert all(d[k] == v for k, v in a.items()) and len(d) == 8 * len(B.builtin_classes())


def test_builtin_is_idempotent(tmp_path, monkeypatch):
    dest = B.render_builtin(tmp_path / "ds", **SMALL)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}

    def no_render(*a, **k):
        raise AssertionError("rendered again")

    monkeypatch.setattr(B, "render_image", no_render)
    assert B.render_builtin(tmp_path / "ds", **SMALL) == dest
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    # other parameters in the same folder: rendered again (and the stamp says so)
    with pytest.raises(AssertionError, match="rendered again"):
        B.render_builtin(tmp_path / "ds", per_class=7, size=48)
    assert files_of(dest).keys() == before_pngs(before, dest)  # the failed render left the old one intact


def before_pngs(before: dict, root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in before if p.suffix == ".png"}


def test_builtin_interrupted_render_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(cls, size, rng):
        calls.append(cls)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return Image.new("RGB", (size, size))

    monkeypatch.setattr(B, "render_image", failing)
    monkeypatch.setattr(B, "RENDER_THREADS", 1)
    with pytest.raises(KeyboardInterrupt):
        B.render_builtin(tmp_path / "ds", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_builtin_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(UserInputError, match="not a built-in dataset"):
        B.render_builtin(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "photo.jpg").read_bytes() == b"x"


def test_builtin_default_location_and_resolve_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILEGEN_CACHE", str(tmp_path / "cache"))
    assert B.default_dest(250, 128, 0) == tmp_path / "cache" / f"builtin-v{B.RENDER_VERSION}-250x128-s0"
    monkeypatch.delenv("MOBILEGEN_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert B.default_dest() == tmp_path / "home" / ".cache" / "mobilegen" / f"builtin-v{B.RENDER_VERSION}-{B.DEFAULT_PER_CLASS}x{B.DEFAULT_SIZE}-s0"
    # resolve_data("builtin") renders the default dataset (here made small) and scans it
    render = B.render_builtin
    small = lambda progress=None: render(B.default_dest(5, 32, 0), per_class=5, size=32, progress=progress)  # noqa: E731
    monkeypatch.setattr(B, "render_builtin", small)
    lines = []
    f = F.resolve_data("builtin", progress=lines.append)
    assert len(lines) == 2 and lines[0].startswith("rendering the built-in dataset (6 classes x 5, 32 px)")
    assert lines[1].startswith("rendered 30 images in ")
    assert f.root == B.default_dest(5, 32, 0).resolve() and f.classes == B.builtin_classes() and f.skipped == []
    assert [sum(s.label == c for s in f.samples) for c in range(len(f.classes))] == [5] * len(f.classes)
    assert F.resolve_data("builtin", progress=lines.append).samples == f.samples  # the second time from the cache
    assert len(lines) == 2
    with Image.open(f.samples[0].path) as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def test_builtin_classes_are_balanced_and_varied(tmp_path):
    per_class, size = 24, 64
    f = scan_folder(B.render_builtin(tmp_path / "ds", per_class=per_class, size=size))
    assert f.classes == B.builtin_classes() and len(f.classes) >= 5 and f.skipped == []
    x = load_batch([s.path for s in f.samples], size, 0.0, 1.0)
    y = np.array([s.label for s in f.samples])
    assert np.bincount(y).tolist() == [per_class] * len(f.classes)
    for c in range(len(f.classes)):
        xc = x[y == c]
        # no two images of a class are near-identical, and pixels vary a lot across the class
        d = np.abs(xc[:, None] - xc[None]).mean(axis=(2, 3, 4))
        assert d[~np.eye(len(xc), dtype=bool)].min() > 10, f.classes[c]
        assert xc.std(axis=0).mean() > 40, f.classes[c]
    # the figure moves, grows, turns and stretches
    figs = [B.draw_figure(cls, size, B._rng(0, label, i))[1] for label, cls in enumerate(B.builtin_classes()) for i in range(20)]
    for field_, spread in (("cx", 0.1 * size), ("cy", 0.1 * size), ("radius", 0.04 * size), ("rotation", 1.0), ("aspect", 0.1)):
        assert np.std([getattr(g, field_) for g in figs]) > spread, field_


def ridge_accuracy(xtr, ytr, xva, yva, lam) -> float:
    """Validation accuracy of a one-hot least-squares (ridge) classifier on the given features."""
    a = xtr.reshape(len(xtr), -1).astype(np.float64)
    b = xva.reshape(len(xva), -1).astype(np.float64)
    mu = a.mean(0)
    a, b = a - mu, b - mu
    targets = np.eye(ytr.max() + 1)[ytr]
    alpha = np.linalg.solve(a @ a.T + lam * np.eye(len(a)), targets - targets.mean(0))
    return float(np.mean((b @ (a.T @ alpha)).argmax(1) == yva))


def test_builtin_is_not_linearly_separable_or_colour_coded(tmp_path):
    """No shortcut: neither raw pixels (linear) nor colour statistics separate the classes; each
    would reach ~1.0 on a dataset where position, colour or background told the class."""
    f = scan_folder(B.render_builtin(tmp_path / "ds", per_class=60, size=32))
    train, val = split(f, 0.25, seed=0)
    xtr, xva = (load_batch([s.path for s in part], 32) for part in (train, val))
    ytr, yva = (np.array([s.label for s in part]) for part in (train, val))
    chance = 1 / len(f.classes)
    for lam in (1.0, 100.0):
        assert ridge_accuracy(xtr, ytr, xva, yva, lam) < chance + 0.15
    stats = lambda x: np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], 1)  # noqa: E731
    assert ridge_accuracy(stats(xtr), ytr, stats(xva), yva, 1.0) < chance + 0.2


# -- the tf.data pipeline ---------------------------------------------------------------------------
from tests.harness import require  # noqa: E402

RES = 32


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    """3 classes x 7 images of different sizes and modes (RGB, greyscale, JPEG)."""
    root = tmp_path_factory.mktemp("pipe")
    for c, cls in enumerate(("a", "b", "c")):
        (root / cls).mkdir()
        for i in range(7):
            im = noise_image(10 * c + i, (30 + 3 * i, 41 - 2 * i), "L" if i % 3 == 0 else "RGB")
            im.save(root / cls / f"{i}.{'jpg' if i % 3 == 1 else 'png'}")
    return scan_folder(root)


def epochs(ds, n=1):
    """n passes over ds: [(x, y)] per pass, concatenated across batches."""
    out = []
    for _ in range(n):
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        out.append((np.concatenate(xs), np.concatenate(ys)))
    return out


def test_pipeline_without_augmentation_gives_load_image_pixels(small_folder):
    require("tensorflow")
    from mobilegen.data.pipeline import tf_dataset

    s = small_folder.samples
    for mean, std in ((127.5, 127.5), (128.0, 64.0)):
        ds = tf_dataset(s, RES, batch_size=4, augment=False, shuffle=False, seed=0, mean=mean, std=std)
        shapes = [(tuple(x.shape), x.dtype.name, tuple(y.shape), y.dtype.name) for x, y in ds]
        assert shapes == [((4, RES, RES, 3), "float32", (4,), "int32")] * 5 + [((1, RES, RES, 3), "float32", (1,), "int32")]
        [(x, y)] = epochs(ds)
        assert np.array_equal(x, load_batch([q.path for q in s], RES, mean, std))
        assert y.tolist() == [q.label for q in s]


def test_pipeline_shuffles_per_epoch_deterministically(small_folder):
    require("tensorflow")
    from mobilegen.data.pipeline import tf_dataset

    s = small_folder.samples
    plain = load_batch([q.path for q in s], RES)
    make = lambda seed: tf_dataset(s, RES, batch_size=5, augment=False, shuffle=True, seed=seed)  # noqa: E731
    a, b = epochs(make(0), 2), epochs(make(0), 2)
    c = epochs(make(1), 1)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    orders = []
    for x, y in a + c:
        # each epoch is a permutation of the samples, with the labels kept to their images
        idx = [int(np.flatnonzero((plain == xi).all(axis=(1, 2, 3)))[0]) for xi in x]
        assert sorted(idx) == list(range(len(s))) and [s[i].label for i in idx] == y.tolist()
        orders.append(idx)
    assert orders[0] != orders[1] and orders[0] != orders[2]


def test_pipeline_augmentation(small_folder):
    require("tensorflow")
    from mobilegen.data.pipeline import tf_dataset

    s = small_folder.samples
    plain = load_batch([q.path for q in s], RES)
    make = lambda seed: tf_dataset(s, RES, batch_size=8, augment=True, shuffle=False, seed=seed)  # noqa: E731
    a, b = epochs(make(3), 2), epochs(make(3), 2)
    other = epochs(make(4), 1)[0]
    for (xa, ya), (xb, yb) in zip(a, b):  # the same seed: the same images, epoch by epoch
        assert np.array_equal(xa, xb) and ya.tolist() == yb.tolist() == [q.label for q in s]
    (x0, _), (x1, _) = a
    assert x0.shape == plain.shape and x0.dtype == np.float32
    # every image changed, differently in each epoch and for another seed
    assert all(not np.array_equal(x0[i], plain[i]) for i in range(len(s)))
    assert all(not np.array_equal(x0[i], x1[i]) for i in range(len(s)))
    assert all(not np.array_equal(x0[i], other[0][i]) for i in range(len(s)))
    # values stay those of real pixels, and images stay themselves (jitter, not noise)
    assert x0.min() >= -1.0 and x0.max() <= 1.0 and x0.std() > 0.2
    assert abs(float(x0.mean() - plain.mean())) < 0.15
    flipped = np.abs(x0 - plain[:, :, ::-1]).mean(axis=(1, 2, 3))
    straight = np.abs(x0 - plain).mean(axis=(1, 2, 3))
    assert (np.minimum(flipped, straight) < np.abs(x0 - np.roll(plain, 1, axis=0)).mean(axis=(1, 2, 3))).mean() > 0.5


def test_pipeline_streams_from_paths(small_folder, monkeypatch):
    """Taking one batch decodes a few images, not the dataset; repeat=True never ends."""
    require("tensorflow")
    from mobilegen.data import images
    from mobilegen.data.pipeline import tf_dataset

    decoded = []
    real = images.load_image

    def counting(path, *a, **k):
        decoded.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(images, "load_image", counting)
    many = small_folder.samples * 40  # 840 samples
    ds = tf_dataset(many, RES, batch_size=4, augment=True, shuffle=True, seed=0, repeat=True)
    it = iter(ds)
    x, y = next(it)
    assert x.shape == (4, RES, RES, 3)
    assert 4 <= len(decoded) < 200, len(decoded)
    for _ in range(300):  # past the end of one pass: repeat keeps going
        next(it)
