"""samkit.measure on real labels: equal to scikit-image's regionprops_table, in physical units,
the same tile by tile as in memory, from OME-TIFF metadata, and clear errors for bad input."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import label as connected, regionprops_table
from skimage.morphology import remove_small_objects

import samkit
import samkit.data
from samkit.errors import InvalidImageError, InvalidPropertyError
from samkit.labels import LabelImage
from samkit.measurement import measure, tiled
from samkit.testing import mosaic

from conftest import load_dsb

DSB_IDS = ["0114f484a16c", "432f367a4c5b", "699f2992cd71", "ca20076870e8", "fe9adb627a6f"]
STATS = ("mean", "min", "max", "std", "median")
LENGTHS = ("perimeter", "axis_major_length", "axis_minor_length", "feret_diameter_max")
PLAIN = ("eccentricity", "solidity", "extent")


def skimage_table(labels, image, spacing, token, channels, *, shape=True):
    """``regionprops_table`` of the same properties, renamed to samkit's columns."""
    ndim = labels.ndim
    isotropic = len(set(spacing)) == 1
    props = ["label", "centroid", "bbox", "area", "equivalent_diameter_area", "axis_major_length", "axis_minor_length"]
    if shape:
        props += ["feret_diameter_max", "solidity", "extent"]
        props += (["eccentricity", "orientation"] + (["perimeter"] if isotropic else [])) if ndim == 2 else []
    props += [] if image is None else [f"intensity_{s}" for s in STATS]
    raw = regionprops_table(labels, image, properties=props, spacing=spacing)
    axes = "zyx"[3 - ndim :]
    area = "area" if ndim == 2 else "volume"
    out = {"label": raw["label"], f"{area}_{token}{ndim}": raw["area"]}
    for a, axis in enumerate(axes):
        out[f"centroid_{axis}_{token}"] = raw[f"centroid-{a}"]
        out[f"bbox_{axis}0_px"] = raw[f"bbox-{a}"]
        out[f"bbox_{axis}1_px"] = raw[f"bbox-{a + ndim}"]
    out[f"equivalent_diameter_{token}"] = raw["equivalent_diameter_area"]
    for name in LENGTHS:
        if name in raw:
            out[f"{name}_{token}"] = raw[name]
    for name in PLAIN:
        if name in raw:
            out[name] = raw[name]
    if "orientation" in raw:
        out["orientation_rad"] = raw["orientation"]
    if "perimeter" in raw:
        out["circularity"] = np.where(raw["perimeter"] > 0, 4 * math.pi * raw["area"] / raw["perimeter"] ** 2, np.nan)
    for c, channel in enumerate(channels):
        key = f"-{c}" if image is not None and image.ndim > ndim else ""
        suffix = f"_{channel}" if channel else ""
        for stat in STATS:
            out[f"{stat}_intensity{suffix}"] = raw[f"intensity_{stat}{key}"]
        out[f"integrated_intensity{suffix}_{token}{ndim}"] = raw[f"intensity_mean{key}"] * raw["area"]
    return pd.DataFrame(out)


def assert_matches(table, expected):
    """Every column of ``expected`` is in ``table``: integers equal, floats within 1e-12 relative."""
    assert list(table["label"]) == list(expected["label"])
    for column in expected.columns:
        have, want = table[column].to_numpy(), expected[column].to_numpy()
        if want.dtype.kind in "iu":
            np.testing.assert_array_equal(have, want, err_msg=column)
        else:
            np.testing.assert_allclose(have, want, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=column)


@pytest.fixture(scope="module")
def nuclei():
    return samkit.data.nuclei()


# -- values equal scikit-image's ------------------------------------------------------


@pytest.mark.parametrize("spacing", [None, (0.5, 0.25)], ids=["pixels", "anisotropic"])
@pytest.mark.parametrize("image_id", DSB_IDS)
def test_dsb_matches_regionprops(real_data, image_id, spacing):
    image, labels = load_dsb(real_data, image_id)
    unit = None if spacing is None else "um"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # perimeter is NaN for anisotropic spacing
        table = measure(labels, image, spacing=spacing, unit=unit, properties=["all"])
    token = "px" if spacing is None else "um"
    expected = skimage_table(labels, image, spacing or (1.0, 1.0), token, ["ch0", "ch1", "ch2"])
    assert_matches(table, expected)
    assert table.columns[0] == "label" and len(table) == len(np.unique(labels)) - 1
    if spacing is not None:
        assert table["perimeter_um"].isna().all() and table["circularity"].isna().all()


@pytest.mark.parametrize("spacing", [0.65, (0.5, 0.25)], ids=["isotropic", "anisotropic"])
def test_stardist_matches_regionprops(real_data, spacing):
    folder = real_data / "nuclei" / "stardist"
    labels, image = tifffile.imread(folder / "mask2d.tif"), tifffile.imread(folder / "img2d.tif")  # uint16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = measure(labels, image, spacing=spacing, unit="µm", properties=("basic", "size", "shape", "intensity"))
    spacing = (spacing, spacing) if np.isscalar(spacing) else spacing
    assert_matches(table, skimage_table(labels, image, spacing, "um", [""]))


def test_packaged_nuclei_basic_columns(nuclei):
    """The default "basic" group, on the nuclei shipped with samkit (runs without ../shared)."""
    image, labels = nuclei
    table = measure(labels, image[..., 0], spacing=0.5, unit="micron")
    assert list(table.columns) == [
        "label", "centroid_y_um", "centroid_x_um", "bbox_y0_px", "bbox_x0_px", "bbox_y1_px", "bbox_x1_px",
        "area_um2", "mean_intensity",
    ]  # fmt: skip
    expected = regionprops_table(labels, image[..., 0], properties=("area", "intensity_mean"), spacing=(0.5, 0.5))
    np.testing.assert_array_equal(table["area_um2"], expected["area"])
    np.testing.assert_allclose(table["mean_intensity"], expected["intensity_mean"], rtol=1e-12)
    assert table.attrs["spacing"] == (0.5, 0.5) and table.attrs["unit"] == "µm"
    assert table.attrs["shape"] == labels.shape and table.attrs["units"]["area_um2"] == "µm²"
    pixels = measure(labels)
    assert "area_px2" in pixels and "centroid_x_px" in pixels and pixels.attrs["unit"] is None


def test_3d_matches_regionprops(real_data):
    """Nuclei as 3D lenses: a DSB2018 label image in the middle planes, its objects shrunk by
    one pixel above and below; planes 2 um apart, pixels 0.5 um."""
    image, labels = load_dsb(real_data, "432f367a4c5b")
    labels, image = labels[:260], image[:260, :, 0]
    labels = np.where(np.isin(labels, labels[-1]), 0, labels)  # no objects cut flat by the crop
    inner = np.where(ndimage.minimum_filter(labels, 3) == ndimage.maximum_filter(labels, 3), labels, 0)
    labels = np.stack([inner, labels, labels, inner])
    image = np.stack([image // 2, image, image, image // 2])
    spacing = (2.0, 0.5, 0.5)
    table = measure(labels, image, spacing=spacing, unit="um", properties=["all"])
    assert "volume_um3" in table and "integrated_intensity_um3" in table and "perimeter_um" not in table
    assert_matches(table, skimage_table(labels, image, spacing, "um", [""]))


@pytest.mark.filterwarnings("ignore:Failed to get convex hull image")
def test_flat_3d_object_gives_nan_and_warning():
    labels = np.zeros((3, 20, 20), np.uint8)
    labels[1, 2:8, 2:8] = 1  # one plane: no 3D convex hull
    labels[:, 10:16, 11:17] = 2
    with pytest.warns(UserWarning, match=r"feret_diameter_max is NaN for 1 objects .*\(labels 1\)"):
        table = measure(labels, spacing=(2.0, 1.0, 1.0), properties=["volume", "feret_diameter_max"])
    alone = (labels == 2).astype(np.uint8)
    expected = regionprops_table(alone, properties=["feret_diameter_max"], spacing=(2.0, 1.0, 1.0))
    assert np.isnan(table["feret_diameter_max_unit"][0])
    assert table["feret_diameter_max_unit"][1] == expected["feret_diameter_max"][0]


def test_extra_functions_like_skimage(nuclei):
    image, labels = nuclei

    def pixel_count(mask):
        return mask.sum()

    def p90(mask, intensity):
        return np.percentile(intensity[mask], 90)

    table = measure(labels, image, channel_names=["R", "G", "B"], properties=[], extra=[pixel_count, p90])
    raw = regionprops_table(labels, image, properties=["label"], extra_properties=[pixel_count, p90])
    assert list(table.columns) == ["label", "pixel_count", "p90_R", "p90_G", "p90_B"]
    np.testing.assert_array_equal(table["pixel_count"], raw["pixel_count"])
    for c, name in enumerate("RGB"):
        np.testing.assert_array_equal(table[f"p90_{name}"], raw[f"p90-{c}"])


def test_weighted_centroid_and_aliases(nuclei):
    image, labels = nuclei
    spacing = (0.5, 0.25)
    table = measure(labels, image[..., 1], spacing=spacing, properties=["weighted_centroid", "num_pixels"])
    raw = regionprops_table(labels, image[..., 1], properties=["centroid_weighted", "num_pixels"], spacing=spacing)
    np.testing.assert_allclose(table["centroid_weighted_y_unit"], raw["centroid_weighted-0"], rtol=1e-12)
    np.testing.assert_allclose(table["centroid_weighted_x_unit"], raw["centroid_weighted-1"], rtol=1e-12)
    np.testing.assert_array_equal(table["num_pixels"], raw["num_pixels"])


# -- units and channels from image metadata --------------------------------------------


@pytest.fixture(scope="module")
def examplehuman(real_data, tmp_path_factory):
    """ExampleHuman's 3 channels as one OME-TIFF (CYX, 0.65 µm pixels, named channels), and
    nuclei labels from Otsu thresholding of the DNA channel."""
    folder = real_data / "cells" / "examplehuman"
    channels = np.stack([tifffile.imread(next(folder.glob(f"*d{c}.tif"))) for c in range(3)])  # (3, 512, 512) uint8
    path = tmp_path_factory.mktemp("examplehuman") / "examplehuman.ome.tif"
    metadata = {"axes": "CYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeYUnit": "µm", "Channel": {"Name": ["DNA", "PH3", "cytoplasm"]}}  # fmt: skip
    tifffile.imwrite(path, channels, ome=True, metadata=metadata)
    dna = channels[0]
    labels = connected(remove_small_objects(dna > threshold_otsu(dna), max_size=19))
    return path, channels, labels


def test_examplehuman_ome_tiff_units_and_channels(examplehuman):
    path, channels, labels = examplehuman
    image = samkit.open_image(path)
    table = measure(labels, image, properties=("basic", "intensity"))
    names = ["DNA", "PH3", "cytoplasm"]
    assert table.attrs["spacing"] == (0.65, 0.65) and table.attrs["unit"] == "µm"
    assert table.attrs["channel_names"] == names
    assert {"area_um2", "centroid_y_um", "mean_intensity_DNA", "median_intensity_PH3"} <= set(table)
    assert "integrated_intensity_cytoplasm_um2" in table
    assert len(table) > 100
    expected = skimage_table(labels, np.moveaxis(channels, 0, -1), (0.65, 0.65), "um", names, shape=False)
    assert_matches(table, expected[[c for c in expected if "length" not in c and "diameter" not in c]])
    # the labels as an Image carry the pixel size too; explicit arguments win
    labelled = samkit.open_image(labels, spacing=0.65, unit="um")
    assert measure(labelled).equals(table[measure(labelled).columns])
    nm = measure(labels, image, spacing=650.0, unit="nm", channel_names=["a", "b", "c"])
    assert "area_nm2" in nm and "mean_intensity_b" in nm and nm.attrs["unit"] == "nm"


# -- large label images, tile by tile ---------------------------------------------------


@pytest.fixture(scope="module")
def scene(real_data):
    """A 1000 x 1100 mosaic of DSB2018 images with their labels, renumbered (~1300 nuclei)."""
    pairs = [load_dsb(real_data, i) for i in ("432f367a4c5b", "550450e4bff4", "699f2992cd71", "fe9adb627a6f")]
    image, labels = mosaic(pairs, (1000, 1100))
    return image, labels.astype(np.uint32)


class Spy:
    """A lazy array (like zarr or dask) that records the regions read from it."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype, self.chunks = array.shape, array.dtype, array.chunks

    def __getitem__(self, key):
        self.reads.append(key)
        return self.array[key]


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_zarr_tile_by_tile_equals_in_memory(scene, dtype, monkeypatch):
    image, labels = scene
    image = image if dtype == "uint8" else image.astype(np.float32) * np.float32(0.37) + np.float32(0.01)
    properties = ("basic", "intensity", "perimeter", "solidity", "eccentricity", "centroid_weighted")
    in_memory = measure(labels, image, spacing=0.3, unit="um", properties=properties)

    chunks = (96, 112)  # cut hundreds of nuclei
    store = zarr.create_array(zarr.storage.MemoryStore(), shape=labels.shape, chunks=chunks, dtype=labels.dtype)
    store[:] = labels
    pixels = zarr.create_array(zarr.storage.MemoryStore(), shape=image.shape, chunks=chunks + (3,), dtype=image.dtype)
    pixels[:] = image
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", 2 * chunks[0] * chunks[1])  # blocks of 2 chunks
    spy = Spy(store)
    tiles = measure(spy, pixels, spacing=0.3, unit="um", properties=properties)

    pd.testing.assert_frame_equal(tiles, in_memory, check_exact=True)
    assert _crossing(in_memory, chunks) > 200  # objects across chunk borders, measured whole
    largest = max(math.prod(s.stop - s.start for s in key) for key in spy.reads)
    assert largest <= 4 * chunks[0] * chunks[1]  # blocks and windows, never the whole image
    assert all(s.start % c == 0 for key in spy.reads[:10] for s, c in zip(key, chunks))  # blocks of whole chunks


def _crossing(table, chunks) -> int:
    y0, x0, y1, x1 = (table[f"bbox_{c}_px"].to_numpy() for c in ("y0", "x0", "y1", "x1"))
    return int(np.sum((y0 // chunks[0] != (y1 - 1) // chunks[0]) | (x0 // chunks[1] != (x1 - 1) // chunks[1])))


def test_label_image_in_one_call(scene, monkeypatch):
    image, labels = scene
    session_labels = LabelImage(labels.shape, initial=labels)  # what a segmentation session builds (zarr)
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", 256 * 512)
    properties = ("basic", "intensity", "perimeter")
    table = measure(session_labels, image, properties=properties)
    pd.testing.assert_frame_equal(table, measure(labels, image, properties=properties), check_exact=True)


def test_dask_labels(scene, monkeypatch):
    da = pytest.importorskip("dask.array")
    image, labels = scene
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", 200 * 200)
    lazy = da.from_array(labels, chunks=(200, 200))
    table = measure(lazy, da.from_array(image, chunks=(200, 200, 3)), properties=("basic", "intensity"))
    pd.testing.assert_frame_equal(table, measure(labels, image, properties=("basic", "intensity")), check_exact=True)


def test_disconnected_object_across_blocks(nuclei, monkeypatch):
    """One id in two far-apart places (and in several blocks): measured once, from all its pixels."""
    image, labels = nuclei
    labels = labels.astype(np.int32)
    labels[labels == 7] = 3
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", 64 * 696)
    properties = ("basic", "intensity", "solidity")
    table = measure(labels, image, properties=properties)
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", 1 << 24)
    pd.testing.assert_frame_equal(table, measure(labels, image, properties=properties), check_exact=True)
    assert (table["label"] == 3).sum() == 1


def test_3d_zarr_tile_by_tile_equals_in_memory(nuclei, monkeypatch):
    image, labels = nuclei
    inner = np.where(ndimage.minimum_filter(labels, 3) == ndimage.maximum_filter(labels, 3), labels, 0)
    labels = np.stack([inner, labels, labels, inner])
    image = np.stack([image[..., 0]] * 4)
    properties = ("basic", "intensity", "axis_major_length")
    in_memory = measure(labels, image, spacing=(2.0, 0.5, 0.5), properties=properties)
    store = zarr.create_array(zarr.storage.MemoryStore(), shape=labels.shape, chunks=(2, 64, 80), dtype=labels.dtype)
    store[:] = labels
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", 2 * 64 * 80)
    tiles = measure(store, image, spacing=(2.0, 0.5, 0.5), properties=properties)
    pd.testing.assert_frame_equal(tiles, in_memory, check_exact=True)


def test_sparse_large_ids(nuclei):
    """Ids far beyond the number of pixels (e.g. hashes) are binned by sorting, with the same values."""
    image, labels = nuclei
    properties = ("basic", "intensity", "solidity")
    dense = measure(labels, image, properties=properties)
    sparse = measure(labels.astype(np.uint64) * (1 << 40), image, properties=properties)
    np.testing.assert_array_equal(sparse["label"], dense["label"] * (1 << 40))
    pd.testing.assert_frame_equal(sparse.drop(columns="label"), dense.drop(columns="label"), check_exact=True)


def test_nan_pixels_give_nan_statistics_like_regionprops(real_data, monkeypatch):
    """A NaN pixel makes every intensity statistic of its object NaN (scikit-image's min and
    median included), in memory, tile by tile and in windows across tile borders."""
    image, labels = load_dsb(real_data, "0114f484a16c")
    image = image / 3.0
    found = ndimage.center_of_mass(labels > 0, labels, range(1, 8))
    centres = {i: (int(y), int(x)) for i, (y, x) in zip(range(1, 8), found)}
    hit = [i for i in (1, 3, 6) if labels[centres[i]] == i]
    assert len(hit) >= 2
    for i in hit:
        image[centres[i]][0] = np.nan  # channel 0 only: the other channels stay finite
    properties = ("basic", "intensity", "centroid_weighted")
    expected = skimage_table(labels, image, (1.0, 1.0), "px", ["ch0", "ch1", "ch2"], shape=False)
    weighted = regionprops_table(labels, image, properties=["centroid_weighted"])
    in_memory = measure(labels, image, properties=properties)
    assert_matches(in_memory, expected.drop(columns=[c for c in expected if c.startswith(("axis", "equivalent"))]))
    for a, axis in enumerate("yx"):
        for c in range(3):
            have = in_memory[f"centroid_weighted_{axis}_ch{c}_px"]
            np.testing.assert_allclose(have, weighted[f"centroid_weighted-{a}-{c}"], rtol=1e-12, equal_nan=True)
    rows = in_memory["label"].isin(hit)
    for stat in STATS:
        assert in_memory.loc[rows, f"{stat}_intensity_ch0"].isna().all(), stat
        assert in_memory.loc[~rows, f"{stat}_intensity_ch0"].notna().all(), stat
        assert in_memory[f"{stat}_intensity_ch1"].notna().all(), stat

    chunks = (64, 64)  # blocks of one chunk: objects across borders are measured in windows
    store = zarr.create_array(zarr.storage.MemoryStore(), shape=labels.shape, chunks=chunks, dtype=labels.dtype)
    store[:] = labels
    monkeypatch.setattr(tiled, "BLOCK_PIXELS", chunks[0] * chunks[1])
    for subset in [properties, ("intensity_min", "intensity_max"), ("intensity_median",)]:
        tiles = measure(store, image, properties=subset)
        pd.testing.assert_frame_equal(tiles, measure(labels, image, properties=subset), check_exact=True)
        assert tiles.loc[tiles["label"].isin(hit)].filter(like="_ch0").isna().all().all()
    assert _crossing(in_memory, chunks) > 0


# -- bad input --------------------------------------------------------------------------


def test_empty_labels_give_empty_table_with_columns(nuclei):
    image, labels = nuclei
    properties = ("basic", "shape", "intensity")
    full = measure(labels, image, spacing=0.5, unit="um", properties=properties)
    empty = measure(np.zeros_like(labels), image, spacing=0.5, unit="um", properties=properties)
    assert list(empty.columns) == list(full.columns) and len(empty) == 0
    assert (empty.dtypes == full.dtypes).all()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"labels": "float"}, InvalidImageError, r"labels: .*integer.*float64"),
        ({"labels": "bool"}, InvalidImageError, r"labels: .*not dtype bool"),
        ({"labels": "negative"}, InvalidImageError, r"labels: negative value -1"),
        ({"labels": "4d"}, InvalidImageError, r"labels: expected a 2D .* or 3D"),
        ({"intensity": "cropped"}, InvalidImageError, r"intensity: shape \(520, 600\) does not match labels of shape"),
        ({"spacing": (1.0, 2.0, 3.0)}, InvalidImageError, r"spacing \(1.0, 2.0, 3.0\) has 3 values for 2D labels"),
        ({"spacing": (0.5, -1)}, InvalidImageError, r"spacing must hold positive"),
        ({"properties": ["area", "roundness"]}, InvalidPropertyError, r"'roundness'; valid groups: .*circularity"),
        ({"properties": "intensity", "intensity": None}, InvalidPropertyError, r"needs an intensity image"),
        ({"channel_names": ["a", "b"]}, InvalidImageError, r"channel_names: 2 names .* for 1 intensity channels"),
        ({"extra": [lambda m: 1.0]}, InvalidPropertyError, r"extra: .*no usable name"),
    ],
)
def test_bad_input_names_the_argument(nuclei, kwargs, error, match):
    image, labels = nuclei
    args = {"labels": labels, "intensity": image[..., 0]}
    bad = {
        "float": labels.astype(float), "bool": labels > 0, "4d": labels[None, None], "cropped": image[:, :600, 0],
        "negative": np.where(labels == 3, -1, labels).astype(np.int16),
    }  # fmt: skip
    for key, value in kwargs.items():
        args[key] = bad.get(value, value) if isinstance(value, str) and key in ("labels", "intensity") else value
    labels_arg = args.pop("labels")
    intensity = args.pop("intensity")
    with pytest.raises(error, match=match):
        measure(labels_arg, intensity, **args)


def test_2d_only_property_in_3d_and_perimeter_warning(nuclei):
    _, labels = nuclei
    with pytest.raises(InvalidPropertyError, match="'perimeter' is defined for 2D labels only"):
        measure(np.stack([labels, labels]), properties="perimeter")
    with pytest.warns(UserWarning, match="perimeter and circularity are NaN"):
        table = measure(labels, spacing=(1.0, 0.5), properties="size")
    assert table["perimeter_unit"].isna().all()
