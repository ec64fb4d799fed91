"""samkit.io: lazy reading of TIFF / OME-TIFF / SVS / GeoTIFF / zarr / OME-Zarr / PNG, with metadata."""

import os
import threading

import numpy as np
import pytest
import tifffile

from samkit.errors import InvalidImageError
from samkit.io import Image, imread, open_image

zarr = pytest.importorskip("zarr")

SVS = "slide/cmu_small_region.svs"


def examplehuman(real_data) -> np.ndarray:
    """The three ExampleHuman channels (DNA, pH3, cytoplasm) as a (3, 512, 512) uint8 stack."""
    folder = real_data / "cells" / "examplehuman"
    return np.stack([tifffile.imread(next(folder.glob(f"*d{i}.tif"))) for i in range(3)])


def vm_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


# -- TIFF family ---------------------------------------------------------------
def test_ome_tiff_round_trip(real_data, tmp_path):
    stack = examplehuman(real_data)
    path = tmp_path / "human.ome.tif"
    metadata = {
        "axes": "CYX", "PhysicalSizeX": 0.65, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.65,
        "PhysicalSizeYUnit": "µm", "Channel": {"Name": ["DNA", "pH3", "cytoplasm"]},
    }  # fmt: skip
    tifffile.imwrite(path, stack, ome=True, tile=(128, 128), photometric="minisblack", metadata=metadata)

    image = open_image(path)
    assert isinstance(image, Image) and image.path == path
    assert image.shape == (3, 512, 512) and image.dtype == np.uint8 and image.ndim == 3
    assert image.axes == "CYX"
    assert image.spacing == {"Y": 0.65, "X": 0.65} and image.unit == "µm"
    assert image.channel_names == ["DNA", "pH3", "cytoplasm"]
    assert image.levels[0].shape == (3, 512, 512) and image.level_shapes == [(3, 512, 512)]
    np.testing.assert_array_equal(np.asarray(image), stack)
    np.testing.assert_array_equal(image[1, 100:140, ::-3], stack[1, 100:140, ::-3])
    region = image.read(100, 50, 300, 261)
    assert region.shape == (200, 211, 3) and region.flags.c_contiguous
    np.testing.assert_array_equal(region, stack[:, 100:300, 50:261].transpose(1, 2, 0))
    dna = image.plane(C=0)
    assert dna.axes == "YX" and dna.channel_names == ["DNA"] and dna.spacing == image.spacing
    np.testing.assert_array_equal(dna.read(0, 0, 512, 512)[..., 0], stack[0])


def test_svs_slide(real_data):
    path = real_data / SVS
    with open_image(path) as image:
        # level 0 is 2220 wide and 2967 high ("2220x2967" in its description)
        assert image.shape == (2967, 2220, 3) and image.axes == "YXS"
        assert image.spacing == {"Y": 0.499, "X": 0.499} and image.unit == "µm"
        # this small slide has no reduced pyramid level, only a thumbnail, label and macro image
        assert len(image.levels) == 1
        expected = tifffile.imread(path)[1200:1700, 300:1000]
        np.testing.assert_array_equal(image.read(1200, 300, 1700, 1000), expected)
        np.testing.assert_array_equal(image[1200:1700, 300:1000], expected)


def test_pyramidal_tiff_levels(real_data, tmp_path):
    level0 = tifffile.imread(real_data / SVS)[:2048, :2048]
    pyramid = [level0, level0[::2, ::2], level0[::4, ::4]]
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        options = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib"}
        tif.write(pyramid[0], subifds=2, metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}, **options)
        for level in pyramid[1:]:
            tif.write(level, subfiletype=1, **options)

    image = open_image(path)
    assert len(image.levels) == 3
    assert image.level_shapes == [(2048, 2048, 3), (1024, 1024, 3), (512, 512, 3)]
    assert image.spacing == {"Y": 0.5, "X": 0.5}
    for level, expected in enumerate(pyramid):
        np.testing.assert_array_equal(image.read(100, 30, 400, 330, level=level), expected[100:400, 30:330])
    with pytest.raises(InvalidImageError, match="level 3 does not exist"):
        image.read(0, 0, 10, 10, level=3)
    with pytest.raises(InvalidImageError, match="outside level 2"):
        image.read(0, 0, 600, 10, level=2)


def test_large_tiled_tiff_reads_only_the_region(tmp_path):
    size, tile = 20_000, 512

    def pattern(y0, x0, height, width):
        y = np.arange(y0, y0 + height, dtype=np.uint32)[:, None]
        x = np.arange(x0, x0 + width, dtype=np.uint32)[None, :]
        return ((y * 7 + x * 13 + (y // 97) * (x // 89)) % 251).astype(np.uint8)

    tiles = (pattern(y, x, tile, tile) for y in range(0, size, tile) for x in range(0, size, tile))
    path = tmp_path / "large.tif"
    try:
        tifffile.imwrite(path, tiles, shape=(size, size), dtype=np.uint8, tile=(tile, tile))
        open_image(path).read(0, 0, 10, 10)  # imports and first-use allocations, outside the measure
        before = vm_rss()
        with open_image(path) as image:
            assert image.shape == (size, size)
            region = image.read(12_345, 6_789, 13_345, 7_789)
            grown = vm_rss() - before
        np.testing.assert_array_equal(region[..., 0], pattern(12_345, 6_789, 1000, 1000))
        assert grown < 50e6, f"RSS grew by {grown / 1e6:.0f} MB reading 1 MB of a 400 MB image"
    finally:
        path.unlink(missing_ok=True)  # 400 MB


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_uncompressed_contiguous_tiff(tmp_path, byteorder):
    data = np.random.default_rng(0).integers(0, 60_000, (3, 600, 700), dtype=np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, byteorder=byteorder, photometric="minisblack", metadata={"axes": "ZYX"})
    image = open_image(path)
    assert image.axes == "ZYX" and image.dtype == np.uint16
    got = image.plane(Z=2).read(10, 20, 310, 520)
    assert got.dtype.isnative
    np.testing.assert_array_equal(got[..., 0], data[2, 10:310, 20:520])
    np.testing.assert_array_equal(image[:, 5, ::7], data[:, 5, ::7])


def test_imagej_tiff(tmp_path):
    data = np.random.default_rng(1).integers(0, 4000, (6, 80, 90), dtype=np.uint16)
    path = tmp_path / "imagej.tif"
    metadata = {"spacing": 2.0, "unit": "um", "axes": "ZYX"}
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata=metadata)
    image = open_image(path)
    assert image.axes == "ZYX"
    assert image.spacing == {"Z": 2.0, "Y": 0.25, "X": 0.25} and image.unit == "µm"
    assert open_image(path, plane={"z": 4}).axes == "YX"
    plane = image.plane(Z=-2)
    assert plane.axes == "YX" and plane.spacing == {"Y": 0.25, "X": 0.25} and plane.unit == "µm"
    np.testing.assert_array_equal(np.asarray(plane), data[4])


@pytest.mark.parametrize(
    "resolution, unit, expected",
    [((2.0, 2.0), "CENTIMETER", 5000.0), ((25_400, 25_400), "INCH", 1.0), ((72, 72), "INCH", None), (None, None, None)],
)
def test_resolution_tags(tmp_path, resolution, unit, expected):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.zeros((32, 48), np.uint8), resolution=resolution, resolutionunit=unit)
    image = open_image(path)
    if expected is None:  # no resolution, or an editor's default 72 dpi: unknown
        assert image.spacing == {} and image.unit is None
    else:
        assert image.spacing == pytest.approx({"Y": expected, "X": expected}) and image.unit == "µm"


def test_geotiff(real_data):
    image = open_image(real_data / "ecology" / "deepforest" / "OSBS_029.tif")
    assert image.shape == (400, 400, 3) and image.axes == "YXS"
    assert image.spacing == pytest.approx({"Y": 0.1, "X": 0.1}) and image.unit == "m"


def test_thread_safe_reads(real_data):
    path = real_data / SVS
    expected = tifffile.imread(path)
    image = open_image(path)
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(15):
            y, x = int(rng.integers(0, 2700)), int(rng.integers(0, 2000))
            h, w = int(rng.integers(1, 260)), int(rng.integers(1, 210))
            if not np.array_equal(image.read(y, x, y + h, x + w), expected[y : y + h, x : x + w]):
                errors.append((y, x, h, w))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_close_and_reopen(tmp_path):
    path = tmp_path / "a.tif"
    data = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    tifffile.imwrite(path, data, tile=(32, 32), compression="zlib")
    with open_image(path) as image:
        np.testing.assert_array_equal(image[3:9, 40:50], data[3:9, 40:50])
    np.testing.assert_array_equal(image[3:9, 40:50], data[3:9, 40:50])  # opened again on demand
    image.close()
    image.close()


def test_tiff_without_zarr_is_read_whole_with_a_warning(tmp_path, monkeypatch):
    path = tmp_path / "tiled.tif"
    data = np.arange(256 * 256, dtype=np.uint16).reshape(256, 256)
    tifffile.imwrite(path, data, tile=(64, 64), compression="zlib")
    monkeypatch.setitem(__import__("sys").modules, "zarr", None)  # import zarr raises ImportError
    image = open_image(path)
    with pytest.warns(UserWarning, match="zarr is not installed.*read whole"):
        np.testing.assert_array_equal(image.read(10, 20, 30, 40)[..., 0], data[10:30, 20:40])


# -- PNG and zarr --------------------------------------------------------------
def test_png(real_data):
    from PIL import Image as PILImage

    path = next((real_data / "nuclei" / "dsb2018").glob("*_img.png"))
    image = imread(path)
    expected = np.asarray(PILImage.open(path))
    assert image.shape == expected.shape and image.axes == ("YXS" if expected.ndim == 3 else "YX")
    np.testing.assert_array_equal(np.asarray(image), expected)
    assert image.yxc().shape[:2] == expected.shape[:2]


def test_zarr_array_directory_and_object(tmp_path):
    data = np.random.default_rng(2).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    array = zarr.create_array(tmp_path / "plain.zarr", shape=data.shape, dtype=data.dtype, chunks=(64, 64, 3))
    array[:] = data
    for source in (tmp_path / "plain.zarr", array):
        image = open_image(source)
        assert image.axes == "YXS" and image.spacing == {} and len(image.levels) == 1
        np.testing.assert_array_equal(image.read(10, 20, 210, 330), data[10:210, 20:330])


@pytest.mark.parametrize("zarr_format", [3, 2])
def test_ome_zarr(tmp_path, zarr_format):
    data = np.random.default_rng(3).integers(0, 4000, (2, 5, 64, 80), dtype=np.uint16)
    path = tmp_path / "image.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    group.create_array("0", data=data, chunks=(1, 1, 32, 32))
    group.create_array("1", data=data[:, :, ::2, ::2], chunks=(1, 1, 32, 32))
    space = {"type": "space", "unit": "micrometer"}
    multiscales = [{
        "axes": [{"name": "c", "type": "channel"}, {"name": "z", "type": "space", "unit": "nanometer"},
                 {"name": "y", **space}, {"name": "x", **space}],
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1500, 0.5, 0.5]}]},
            {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1500, 1.0, 1.0]}]},
        ],
    }]  # fmt: skip
    omero = {"channels": [{"label": "DNA"}, {"label": "actin"}]}
    if zarr_format == 3:
        group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales, "omero": omero}
    else:
        group.attrs.update({"multiscales": [{"version": "0.4", **multiscales[0]}], "omero": omero})

    image = open_image(path)
    assert image.axes == "CZYX" and image.level_shapes == [(2, 5, 64, 80), (2, 5, 32, 40)]
    assert image.spacing == pytest.approx({"Z": 1.5, "Y": 0.5, "X": 0.5}) and image.unit == "µm"
    assert image.channel_names == ["DNA", "actin"]
    plane = image.plane(Z=3)
    np.testing.assert_array_equal(plane.read(5, 6, 30, 40), data[:, 3, 5:30, 6:40].transpose(1, 2, 0))
    np.testing.assert_array_equal(plane.read(5, 6, 30, 40, level=1), data[:, 3, ::2, ::2][:, 5:30, 6:40].transpose(1, 2, 0))
    assert plane.yxc().channel_names == ["DNA", "actin"]


def test_zarr_group_without_metadata(tmp_path):
    group = zarr.open_group(tmp_path / "levels.zarr", mode="w")
    group.create_array("0", data=np.ones((40, 50), np.float32))
    group.create_array("1", data=np.ones((20, 25), np.float32))
    image = open_image(tmp_path / "levels.zarr")
    assert image.axes == "YX" and image.level_shapes == [(40, 50), (20, 25)]
    zarr.open_group(tmp_path / "other.zarr", mode="w").create_array("labels", data=np.ones((4, 4), np.uint8))
    with pytest.raises(InvalidImageError, match="no array '0'.*labels"):
        open_image(tmp_path / "other.zarr")


# -- arrays in memory, axes, metadata -------------------------------------------
@pytest.mark.parametrize(
    "shape, axes",
    [
        ((64, 80), "YX"), ((64, 80, 3), "YXS"), ((64, 80, 4), "YXS"), ((3, 64, 80), "CYX"), ((8, 64, 80), "CYX"),
        ((9, 64, 80), "ZYX"), ((64, 80, 5), "YXC"), ((64, 80, 1), "YXC"), ((10, 64, 80, 3), "ZYXS"),
        ((2, 10, 64, 80), "CZYX"), ((4, 2, 10, 64, 80), "TCZYX"), ((4, 10, 64, 80, 3), "TZYXS"),
    ],
)  # fmt: skip
def test_axes_guess(shape, axes):
    assert open_image(np.zeros(shape, np.uint8)).axes == axes


def test_numpy_overrides():
    data = np.zeros((12, 64, 80), np.uint16)
    image = open_image(data, axes="tyx", spacing=0.65, unit="micron", channel_names=["DAPI"])
    assert image.axes == "TYX" and image.spacing == {"Y": 0.65, "X": 0.65} and image.unit == "µm"
    assert image.channel_names == ["DAPI"] and image.path is None and image.levels[0] is data
    assert open_image(image) is image
    again = open_image(image, spacing={"y": 0.5})
    assert again.spacing == {"Y": 0.5, "X": 0.65} and again.unit == "µm" and image.spacing["Y"] == 0.65
    assert open_image(data, axes="ZYX", spacing=(2.0, 0.5, 0.5)).spacing == {"Z": 2.0, "Y": 0.5, "X": 0.5}
    assert "axes='TYX'" in repr(image) and "'Y': 0.65" in repr(image) and "shape=(12, 64, 80)" in repr(image)


@pytest.mark.parametrize("unit", ["um", "µm", "μm", "micron", "microns", "micrometer", "\\u00B5m", " UM "])
def test_unit_normalised(unit):
    assert open_image(np.zeros((4, 4)), spacing=1.0, unit=unit).unit == "µm"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"axes": "YXZ"}, "has 3 letters but"),
        ({"axes": "XX"}, "not valid"),
        ({"axes": "ZY"}, "not valid"),
        ({"axes": "YQ"}, "not valid"),
        ({"spacing": {"Z": 1.0}}, "not a spatial axis"),
        ({"spacing": -1.0}, "positive"),
        ({"channel_names": ["a", "b"]}, "2 channel names .* for 1 channels"),
        ({"plane": {"Y": 0}}, "plane.*Y"),
    ],
)
def test_bad_overrides(kwargs, match):
    with pytest.raises(InvalidImageError, match=match):
        open_image(np.zeros((64, 80), np.uint8), **kwargs)


def test_plane_and_yxc():
    rng = np.random.default_rng(4)
    data = rng.integers(0, 255, (2, 7, 3, 40, 50), dtype=np.uint8)
    image = open_image(data, axes="TZCYX", spacing=(3.0, 0.5, 0.5), channel_names=["r", "g", "b"])
    with pytest.raises(InvalidImageError, match=r"axes 'TZCYX'.*'T': 2, 'Z': 7.*\.plane\(T=\.\.\., Z=\.\.\.\)"):
        image.yxc()
    with pytest.raises(InvalidImageError, match="plane\\(Z=7\\) is outside"):
        image.plane(Z=7)
    with pytest.raises(InvalidImageError, match="no non-spatial axis 'S'"):
        image.plane(S=0)
    plane = image.plane(T=1, z=5)
    assert plane.axes == "CYX" and plane.shape == (3, 40, 50) and plane.spacing == {"Y": 0.5, "X": 0.5}
    np.testing.assert_array_equal(np.asarray(plane), data[1, 5])
    np.testing.assert_array_equal(plane[::-1, 3:-3:2, [4, 0, 9]], data[1, 5][::-1, 3:-3:2, [4, 0, 9]])
    view = plane.yxc()
    assert view.axes == "YXC" and view.shape == (40, 50, 3) and view.channel_names == ["r", "g", "b"]
    np.testing.assert_array_equal(view[...], data[1, 5].transpose(1, 2, 0))
    np.testing.assert_array_equal(plane.read(39, 0, 40, 50), data[1, 5, :, 39:40, :].transpose(1, 2, 0))
    for region in [(0, 0, 41, 10), (-1, 0, 5, 5), (5, 5, 5, 6), (0, 10, 5, 3)]:
        with pytest.raises(InvalidImageError, match="outside level 0"):
            plane.read(*region)

    grey = open_image(rng.random((30, 20)))
    assert grey.yxc().shape == (30, 20, 1) and grey.read(0, 0, 30, 20).shape == (30, 20, 1)
    single = open_image(np.zeros((1, 1, 30, 20, 3), np.uint8), axes="TZYXS")
    assert single.yxc().shape == (30, 20, 3)
    with pytest.raises(InvalidImageError, match=r"\.plane\(C=\.\.\.\)"):
        open_image(np.zeros((2, 30, 20, 3), np.uint8), axes="CYXS").yxc()


def test_dask_array():
    da = pytest.importorskip("dask.array")
    data = np.random.default_rng(5).integers(0, 255, (5, 100, 120), dtype=np.uint8)
    image = open_image(da.from_array(data, chunks=(1, 50, 50)), axes="ZYX")
    np.testing.assert_array_equal(image.plane(Z=2).read(10, 10, 60, 70)[..., 0], data[2, 10:60, 10:70])


# -- identity ----------------------------------------------------------------
class CountingArray:
    """A duck-typed lazy array that counts the pixels read from it."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim, self.read = data, data.shape, data.dtype, data.ndim, 0

    def __getitem__(self, key):
        out = self.data[key]
        self.read += out.size
        return out


def test_identity_of_arrays():
    data = np.zeros((2048, 2048), np.uint16)  # 8 MiB: sampled, not hashed whole
    counting = CountingArray(data)
    first = open_image(counting).identity()
    assert 0 < counting.read <= 16 * 64 * 64
    assert open_image(data).identity() == first
    data[0, 0] = 1  # inside the first sampled block
    assert open_image(data).identity() != first
    small = np.arange(100 * 100, dtype=np.uint8).reshape(100, 100)
    before = open_image(small).identity()
    small[50, 77] += 1  # small arrays are hashed whole
    assert open_image(small).identity() != before
    stack = open_image(np.zeros((3, 64, 64), np.uint8), axes="ZYX")
    assert len({stack.identity(), stack.plane(Z=0).identity(), stack.plane(Z=1).identity()}) == 3
    assert stack.identity() != open_image(np.zeros((3, 64, 64), np.uint8), axes="CYX").identity()


def test_identity_of_files(tmp_path):
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8))
    first = open_image(path).identity()
    assert open_image(path).identity() == first
    tifffile.imwrite(path, np.ones((64, 64), np.uint8))
    assert open_image(path).identity() != first

    group = zarr.open_group(tmp_path / "b.zarr", mode="w")
    group.create_array("0", data=np.zeros((64, 64), np.uint8), chunks=(32, 32))
    before = open_image(tmp_path / "b.zarr").identity()
    group["0"][:] = 1
    assert open_image(tmp_path / "b.zarr").identity() != before


# -- bad input ---------------------------------------------------------------
def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        open_image(tmp_path / "missing.tif")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.tif").write_bytes(b"hello world" * 10)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "folder").mkdir()
    cases = {
        "empty.png": "empty.png' is empty",
        "junk.tif": "junk.tif' is named like a TIFF file but is not one",
        "junk.png": "junk.png' is not a readable image",
        "notes.txt": "notes.txt': unsupported format \\(.txt\\)",
        "folder": "folder' is a directory but not a zarr store",
    }
    for name, match in cases.items():
        with pytest.raises(InvalidImageError, match=match):
            open_image(tmp_path / name)

    whole = tmp_path / "whole.tif"
    pixels = np.random.default_rng(6).integers(0, 255, (512, 512), np.uint8)
    tifffile.imwrite(whole, pixels, tile=(128, 128), compression="zlib")
    data = whole.read_bytes()
    (tmp_path / "truncated.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError, match="truncated.tif' is truncated"):
        open_image(tmp_path / "truncated.tif")
    (tmp_path / "cut.tif").write_bytes(data[:100])
    with pytest.raises(InvalidImageError, match="cut.tif' is not a readable TIFF"):
        open_image(tmp_path / "cut.tif")
    corrupt = bytearray(data)
    offset = tifffile.TiffFile(whole).pages[0].dataoffsets[5]
    corrupt[offset : offset + 64] = os.urandom(64)
    (tmp_path / "corrupt.tif").write_bytes(bytes(corrupt))
    with pytest.raises(InvalidImageError, match="cannot read level 0 of .*corrupt.tif"):
        open_image(tmp_path / "corrupt.tif")[...]


@pytest.mark.parametrize(
    "source, match",
    [
        (np.zeros((0, 10)), "empty"),
        (np.zeros((10, 10), np.complex64), "complex"),
        (np.array([[None, 1]], dtype=object), "dtype object"),
        (np.array([["a"]]), "dtype <U1"),
        (np.zeros(10), "needs at least 2"),
        (np.zeros((2,) * 7), "at most 6"),
        (object(), "type 'object'"),
    ],
)
def test_bad_arrays(source, match):
    with pytest.raises(InvalidImageError, match=match):
        open_image(source)
