"""Summaries, plots and export of object tables, on the packaged DSB2018 nuclei."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from skimage.measure import regionprops_table

import samkit
from samkit.errors import InvalidImageError, InvalidTableError
from samkit.measurement.export import export_table, read_table, save_labels
from samkit.measurement.plots import column_label, histogram, label_overlay, scatter
from samkit.measurement.summary import summarize

SPACING = 0.5  # µm per pixel
STATS = ["mean", "median", "std", "min", "max"]


@pytest.fixture(scope="module")
def nuclei():
    return samkit.data.nuclei()


@pytest.fixture(scope="module")
def table(nuclei):
    """The nuclei measured by scikit-image, named by the samkit.measure convention."""
    image, labels = nuclei
    props = regionprops_table(
        labels, image[..., 0], spacing=(SPACING, SPACING),
        properties=("label", "area", "centroid", "perimeter", "eccentricity", "intensity_mean", "bbox"),
    )  # fmt: skip
    table = pd.DataFrame(props).rename(columns={
        "area": "area_um2", "centroid-0": "centroid_y_um", "centroid-1": "centroid_x_um",
        "perimeter": "perimeter_um", "intensity_mean": "mean_intensity_DNA",
    })  # fmt: skip
    table["label"] = table["label"].astype(np.uint32)
    table["class"] = pd.Categorical(np.where(table["eccentricity"] > 0.7, "elongated", "round"))
    table["image"] = np.where(table["centroid_x_um"] < 170, "left", "right")
    table.attrs = {
        "spacing": {"Y": SPACING, "X": SPACING}, "unit": "µm", "channel_names": ["DNA"], "shape": labels.shape,
    }  # fmt: skip
    return table


# -- summaries ----------------------------------------------------------------------------


def test_summary_overall_equals_pandas_and_density_is_count_per_area(table, nuclei):
    summary = summarize(table)
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row["count"] == len(table)
    image_area = nuclei[1].size * SPACING**2  # from attrs shape x spacing
    assert row["region_area_um2"] == pytest.approx(image_area)
    assert row["density_per_um2"] == pytest.approx(len(table) / image_area)
    for column in ("area_um2", "perimeter_um", "mean_intensity_DNA", "centroid_y_um"):
        for stat in STATS:
            assert row[f"{column}_{stat}"] == pytest.approx(getattr(table[column], stat)())
    assert not any(c.startswith(("label", "bbox")) for c in summary.columns)
    assert summary.attrs["unit"] == "µm"


def test_summary_by_group_equals_pandas_groupby(table):
    summary = summarize(table, "class", area=1000.0)
    expected = table.groupby("class", observed=True)[["area_um2", "eccentricity"]].agg(STATS)
    assert list(summary["class"]) == list(expected.index)
    assert list(summary["count"]) == list(table.groupby("class", observed=True).size())
    np.testing.assert_allclose(summary["density_per_um2"], summary["count"] / 1000.0)
    for (column, stat), values in expected.items():
        np.testing.assert_allclose(summary[f"{column}_{stat}"], values)
    assert list(summary.columns[:4]) == ["class", "count", "region_area_um2", "density_per_um2"]


def test_summary_by_two_columns_with_an_area_per_group(table):
    areas = {("left", "elongated"): 100.0, ("left", "round"): 200.0, ("right", "elongated"): 300.0}
    areas[("right", "round")] = 400.0
    summary = summarize(table, ["image", "class"], area=areas, columns=["area_um2"])
    counts = table.groupby(["image", "class"], observed=True).size()
    for _, row in summary.iterrows():
        key = (row["image"], row["class"])
        assert row["count"] == counts[key]
        assert row["density_per_um2"] == pytest.approx(counts[key] / areas[key])
    assert [c for c in summary.columns if c.startswith("area_um2")] == [f"area_um2_{s}" for s in STATS]


def test_summary_without_known_area_has_no_density_and_pixel_units(table):
    plain = table.copy()
    plain.attrs = {}
    assert not any("density" in c for c in summarize(plain).columns)
    pixels = table.drop(columns=["area_um2"]).assign(area_px2=1.0)
    pixels.attrs = {"spacing": None, "unit": None}
    assert "density_per_px2" in summarize(pixels, area=10.0).columns


def test_summary_bad_input(table):
    with pytest.raises(InvalidTableError, match="no group column 'kind'.*area_um2"):
        summarize(table, "kind")
    with pytest.raises(InvalidTableError, match="'class' holds category values, not numbers"):
        summarize(table, columns=["class"])
    with pytest.raises(InvalidTableError, match="no entry for the group"):
        summarize(table, "class", area={"round": 10.0})
    with pytest.raises(InvalidTableError, match="positive"):
        summarize(table, area=-1.0)


# -- plots --------------------------------------------------------------------------------


def test_column_labels_are_readable():
    assert column_label("area_um2") == "area (µm²)"
    assert column_label("centroid_y_px") == "centroid y (px)"
    assert column_label("volume_nm3") == "volume (nm³)"
    assert column_label("mean_intensity_DNA") == "mean intensity DNA"
    assert column_label("integrated_intensity_DNA_um2") == "integrated intensity DNA (µm²)"
    assert column_label("area_unit2") == "area (unit²)"  # a pixel size without a unit
    assert column_label("orientation_rad") == "orientation (rad)"
    assert column_label("area_um2_mean") == "area mean (µm²)"  # summary columns
    assert column_label("ratio_m", unit="") == "ratio m"  # attrs["units"] says: no unit
    assert column_label("area_um2", unit="µm²") == "area (µm²)"


def test_histogram_bars_are_numpy_histogram_counts(table):
    figure = histogram(table, "area_um2", bins=12)
    ax = figure.axes[0]
    counts, edges = np.histogram(table["area_um2"], bins=12)
    heights = [bar.get_height() for bar in ax.containers[0]]
    np.testing.assert_array_equal(heights, counts)
    np.testing.assert_allclose([bar.get_x() for bar in ax.containers[0]], edges[:-1])
    assert ax.get_xlabel() == "area (µm²)"
    assert figure._repr_png_().startswith(b"\x89PNG")  # shows itself in Jupyter, pyplot or not

    grouped = histogram(table, "area_um2", by="class", bins=edges).axes[0]
    assert [t.get_text() for t in grouped.get_legend().get_texts()] == ["elongated", "round"]
    for container, (_, rows) in zip(grouped.containers, table.groupby("class", observed=True)):
        np.testing.assert_array_equal([bar.get_height() for bar in container], np.histogram(rows["area_um2"], edges)[0])


def test_scatter_points_are_the_data(table):
    figure = scatter(table, "area_um2", "perimeter_um", color="mean_intensity_DNA")
    ax, colourbar = figure.axes
    points = ax.collections[0]
    np.testing.assert_allclose(points.get_offsets(), table[["area_um2", "perimeter_um"]].to_numpy())
    np.testing.assert_allclose(points.get_array(), table["mean_intensity_DNA"])
    labels = (ax.get_xlabel(), ax.get_ylabel(), colourbar.get_ylabel())
    assert labels == ("area (µm²)", "perimeter (µm)", "mean intensity DNA")

    by_class = scatter(table, "area_um2", "eccentricity", color="class").axes[0]
    assert [c.get_label() for c in by_class.collections] == ["elongated", "round"]
    round_rows = table[table["class"] == "round"]
    np.testing.assert_allclose(by_class.collections[1].get_offsets(), round_rows[["area_um2", "eccentricity"]])


def _check_overlay(figure, labels, table, column, step=1):
    """Every displayed pixel's colour maps back to the value of the object under it."""
    ax = figure.axes[0]
    shown = ax.images[-1]
    values = shown.get_array()
    sub = labels[::step, ::step]
    assert values.shape == sub.shape
    lookup = dict(zip(table["label"], table[column]))
    expected = np.array([lookup.get(v, np.nan) if v else np.nan for v in sub.ravel()]).reshape(sub.shape)
    np.testing.assert_array_equal(values.mask, np.isnan(expected))
    np.testing.assert_allclose(values.filled(np.nan), expected)
    rgba = shown.to_rgba(values)
    objects = ~values.mask
    np.testing.assert_allclose(rgba[objects], shown.cmap(shown.norm(expected[objects])), atol=1e-6)
    assert (rgba[~objects][:, 3] == 0).all()  # background and unlisted objects are transparent
    assert figure.axes[1].get_ylabel() == column_label(column)


def test_label_overlay_colours_map_back_to_values(table, nuclei):
    image, labels = nuclei
    partial = table.iloc[3:]  # three objects without a row: drawn transparent
    _check_overlay(label_overlay(labels, partial, "area_um2"), labels, partial, "area_um2")
    with_image = label_overlay(labels, table, "eccentricity", image=image, max_size=200)
    assert len(with_image.axes[0].images) == 2
    _check_overlay(with_image, labels, table, "eccentricity", step=4)  # ceil(696 / 200)


def test_label_overlay_reads_zarr_and_label_images(table, nuclei):
    labels = nuclei[1]
    stored = zarr.create_array(zarr.storage.MemoryStore(), shape=labels.shape, chunks=(128, 128), dtype=labels.dtype)
    stored[:] = labels
    _check_overlay(label_overlay(stored, table, "perimeter_um", max_size=300), labels, table, "perimeter_um", step=3)
    session_labels = samkit.LabelImage(labels.shape, initial=labels)
    _check_overlay(label_overlay(session_labels, table, "area_um2"), labels, table, "area_um2")


def test_label_overlay_reads_a_reduced_pyramid_level(table, nuclei, tmp_path):
    mosaic = np.tile(nuclei[1], (2, 2))  # 1040 x 1392: OME-Zarr levels 0 and 1 (520 x 696)
    save_labels(mosaic, tmp_path / "mosaic.zarr", spacing=SPACING, unit="um")
    pyramid = samkit.open_image(tmp_path / "mosaic.zarr/labels/objects")
    figure = label_overlay(pyramid, table, "area_um2", max_size=696)
    _check_overlay(figure, mosaic, table, "area_um2", step=2)  # level 1 is every 2nd pixel
    assert figure.axes[0].images[-1].get_extent() == [-0.5, 1391.5, 1039.5, -0.5]  # full-resolution pixels

    class Unread:  # a level 0 that must not be read
        shape, dtype = mosaic.shape, mosaic.dtype

        def __getitem__(self, key):
            raise AssertionError("level 0 was read")

    two_levels = samkit.Image([Unread(), mosaic[::2, ::2]], "YX")
    _check_overlay(label_overlay(two_levels, table, "area_um2", max_size=696), mosaic, table, "area_um2", step=2)


def test_plots_bad_input(table, nuclei):
    with pytest.raises(InvalidTableError, match="no column 'size'; its columns are: label, area_um2"):
        histogram(table, "size")
    with pytest.raises(InvalidTableError, match="'image' holds .* not numbers; numeric columns are: label, area_um2"):
        scatter(table, "image", "area_um2")
    with pytest.raises(InvalidTableError, match="more than once"):
        label_overlay(nuclei[1], pd.concat([table, table]), "area_um2")
    with pytest.raises(InvalidImageError, match="one plane"):
        label_overlay(np.stack([nuclei[1]] * 2), table, "area_um2")
    with pytest.raises(InvalidImageError, match="image has shape"):
        label_overlay(nuclei[1], table, "area_um2", image=nuclei[0][:100])


def test_outputs_of_samkit_measure(nuclei, tmp_path):
    """A table from samkit.measure: units from its attrs, density from its shape."""
    from samkit import measure

    image, labels = nuclei
    table = measure(labels, image[..., 0], spacing=SPACING, unit="um", channel_names=["DNA"])
    summary = summarize(table)
    assert summary["density_per_um2"].item() == pytest.approx(len(table) / (labels.size * SPACING**2))
    assert summary.attrs["units"]["density_per_um2"] == "1/µm²"
    assert summary.attrs["units"]["area_um2_mean"] == "µm²"
    assert histogram(table, "area_um2").axes[0].get_xlabel() == "area (µm²)"
    assert scatter(summary, "count", "area_um2_mean").axes[0].get_ylabel() == "area mean (µm²)"
    save_labels(labels, tmp_path / "nuclei.zarr", table=table)
    assert samkit.open_image(tmp_path / "nuclei.zarr/labels/objects").spacing == {"Y": SPACING, "X": SPACING}
    pixels = measure(labels)  # no pixel size: attrs spacing (1, 1), no unit
    assert "density_per_px2" in summarize(pixels).columns
    save_labels(labels, tmp_path / "pixels.tif", table=pixels)
    assert samkit.open_image(tmp_path / "pixels.tif").spacing == {}


# -- export -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_round_trip_keeps_values_dtypes_and_attrs(table, tmp_path, suffix):
    path = export_table(table, tmp_path / f"objects{suffix}")
    back = read_table(path)
    pd.testing.assert_frame_equal(back, table, check_categorical=False, check_exact=True)
    assert back.attrs == json.loads(json.dumps(table.attrs))  # JSON: the shape tuple comes back as a list
    if suffix == ".csv":
        assert json.loads((tmp_path / "objects.json").read_text())["attrs"]["unit"] == "µm"
        assert pd.read_csv(path)["area_um2"].tolist() == table["area_um2"].tolist()  # any CSV reader, full precision


def test_summary_exports_too(table, tmp_path):
    summary = summarize(table, "class")
    back = read_table(export_table(summary, tmp_path / "summary.csv"))
    pd.testing.assert_frame_equal(back, summary, check_categorical=False)


def test_parquet_without_pyarrow_says_what_to_install(table, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install samkit\[parquet\]"):
        export_table(table, tmp_path / "objects.parquet")
    assert not list(tmp_path.iterdir())


def test_tiff_labels_read_back_with_pixel_size(table, nuclei, tmp_path):
    labels = nuclei[1]
    save_labels(labels, tmp_path / "nuclei.tif", table=table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nuclei.csv", "nuclei.json", "nuclei.tif"]
    image = samkit.open_image(tmp_path / "nuclei.tif")
    assert image.spacing == {"Y": SPACING, "X": SPACING} and image.unit == "µm"
    np.testing.assert_array_equal(np.asarray(image), labels)
    with tifffile.TiffFile(tmp_path / "nuclei.tif") as tif:
        page = tif.pages[0]
        assert page.is_tiled and page.compression == 8  # zlib (deflate)
        assert page.tags["ResolutionUnit"].value == 3  # cm, for readers without OME-XML
    pd.testing.assert_frame_equal(read_table(tmp_path / "nuclei.csv"), table, check_categorical=False)


def test_3d_and_64_bit_labels(tmp_path, nuclei):
    stack = np.stack([nuclei[1], nuclei[1][::-1]]).astype(np.int64) * 1000
    save_labels(stack, tmp_path / "stack.tif", spacing=(2.0, 0.5, 0.5), unit="um")
    image = samkit.open_image(tmp_path / "stack.tif")
    assert (image.axes, image.dtype, image.spacing) == ("ZYX", np.uint32, {"Z": 2.0, "Y": 0.5, "X": 0.5})
    np.testing.assert_array_equal(np.asarray(image), stack)
    with pytest.raises(InvalidImageError, match=r"save as \.zarr"):
        save_labels(stack * 2**32, tmp_path / "huge.tif")
    save_labels(stack * 2**32, tmp_path / "huge.zarr", spacing=(2.0, 0.5, 0.5), unit="um")
    volume = samkit.open_image(tmp_path / "huge.zarr/labels/objects")
    assert (volume.axes, volume.dtype, volume.spacing) == ("ZYX", np.int64, {"Z": 2.0, "Y": 0.5, "X": 0.5})
    np.testing.assert_array_equal(np.asarray(volume), stack * 2**32)


def test_ome_zarr_labels_read_back_by_zarr_and_samkit(table, nuclei, tmp_path):
    labels = nuclei[1]
    session_labels = samkit.LabelImage(labels.shape, initial=labels)  # a zarr-backed LabelImage, copied chunk by chunk
    save_labels(session_labels, tmp_path / "nuclei.zarr", table=table, name="nuclei")
    root = zarr.open_group(tmp_path / "nuclei.zarr", mode="r")
    assert root.attrs["ome"]["version"] == "0.5"
    assert root["labels"].attrs["ome"]["labels"] == ["nuclei"]
    group = root["labels/nuclei"]
    ome = group.attrs["ome"]
    assert ome["image-label"]["source"] == {"image": "../../"}
    (multiscale,) = ome["multiscales"]
    assert [a["name"] for a in multiscale["axes"]] == ["y", "x"] and multiscale["axes"][0]["unit"] == "micrometer"
    scale = {"type": "scale", "scale": [SPACING, SPACING]}
    assert multiscale["datasets"] == [{"path": "0", "coordinateTransformations": [scale]}]
    np.testing.assert_array_equal(group["0"][:], labels)
    assert group["0"].metadata.dimension_names == ("y", "x")

    image = samkit.open_image(tmp_path / "nuclei.zarr" / "labels" / "nuclei")
    assert image.spacing == {"Y": SPACING, "X": SPACING} and image.unit == "µm"
    np.testing.assert_array_equal(np.asarray(image), labels)
    back = read_table(tmp_path / "nuclei.zarr/labels/nuclei/table.csv")
    pd.testing.assert_frame_equal(back, table, check_categorical=False)


def test_ome_zarr_pyramid_of_a_large_zarr_label_image(nuclei, tmp_path):
    mosaic = np.tile(nuclei[1], (2, 2))  # 1040 x 1392: one reduced level (520 x 696 <= 1024)
    source = zarr.create_array(tmp_path / "source.zarr", shape=mosaic.shape, chunks=(256, 256), dtype=mosaic.dtype)
    source[:] = mosaic
    save_labels(source, tmp_path / "mosaic.zarr", spacing={"Y": 0.4, "X": 0.5}, unit="nm")
    group = zarr.open_group(tmp_path / "mosaic.zarr/labels/objects", mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    assert [d["coordinateTransformations"][0]["scale"] for d in datasets] == [[0.4, 0.5], [0.8, 1.0]]
    np.testing.assert_array_equal(group["0"][:], mosaic)
    np.testing.assert_array_equal(group["1"][:], mosaic[::2, ::2])  # nearest: ids never mixed
    image = samkit.open_image(tmp_path / "mosaic.zarr/labels/objects")
    assert image.spacing == {"Y": 0.4, "X": 0.5} and image.unit == "nm" and len(image.levels) == 2


def test_existing_outputs_are_never_replaced_without_overwrite(table, nuclei, tmp_path):
    labels = nuclei[1]
    (tmp_path / "objects.csv").write_text("precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_table(table, tmp_path / "objects.csv")
    assert (tmp_path / "objects.csv").read_text() == "precious"
    assert not (tmp_path / "objects.json").exists()
    export_table(table, tmp_path / "objects.csv", overwrite=True)
    assert len(read_table(tmp_path / "objects.csv")) == len(table)

    save_labels(labels, tmp_path / "a.zarr")
    with pytest.raises(FileExistsError):
        save_labels(labels[::-1], tmp_path / "a.zarr")
    np.testing.assert_array_equal(samkit.open_image(tmp_path / "a.zarr/labels/objects")[:], labels)
    save_labels(labels[::-1], tmp_path / "a.zarr", overwrite=True)
    np.testing.assert_array_equal(samkit.open_image(tmp_path / "a.zarr/labels/objects")[:], labels[::-1])

    (tmp_path / "b.csv").write_text("precious")  # the TIFF's table would land here
    with pytest.raises(FileExistsError, match="b.csv"):
        save_labels(labels, tmp_path / "b.tif", table=table)
    assert not (tmp_path / "b.tif").exists()
    (tmp_path / "folder.zarr").mkdir()
    (tmp_path / "folder.zarr" / "notes.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not a zarr store"):
        save_labels(labels, tmp_path / "folder.zarr", overwrite=True)
    assert (tmp_path / "folder.zarr" / "notes.txt").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no leftovers


def test_export_bad_input(table, nuclei, tmp_path):
    with pytest.raises(InvalidTableError, match=r"use one of the suffixes \.csv, \.parquet"):
        export_table(table, tmp_path / "objects.xlsx")
    with pytest.raises(InvalidImageError, match=r"\.tif, \.tiff, \.zarr"):
        save_labels(nuclei[1], tmp_path / "labels.png")
    with pytest.raises(InvalidImageError, match="integers"):
        save_labels(nuclei[1].astype(float), tmp_path / "labels.tif")
    with pytest.raises(InvalidImageError, match="spacing"):
        save_labels(nuclei[1], tmp_path / "labels.tif", spacing=(1.0, 2.0, 3.0, 4.0))
    assert not list(tmp_path.iterdir())
