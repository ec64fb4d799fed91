import numpy as np
import pytest

from samkit.intensity import to_rgb8


def test_uint8_rgb_unchanged_and_alpha_dropped():
    rgba = np.random.default_rng(0).integers(0, 256, (7, 9, 4), dtype=np.uint8)
    out = to_rgb8(rgba)
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    np.testing.assert_array_equal(out, rgba[..., :3])


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 1)])
def test_grey_repeated_to_rgb(shape):
    grey = np.arange(30, dtype=np.uint8).reshape(shape)
    out = to_rgb8(grey)
    assert out.shape == (6, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey.reshape(6, 5))


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float64])
def test_percentile_scaling(dtype):
    image = (np.arange(10_000).reshape(100, 100) * 3 + 500).astype(dtype)
    out = to_rgb8(image, percentiles=(1, 99))
    low, high = np.percentile(image, (1, 99))
    assert out.dtype == np.uint8
    assert out[image <= low].max() == 0 and out[image >= high].min() == 255
    # linear in between
    mid = image[50, 0]
    assert abs(int(out[50, 0, 0]) - round((float(mid) - low) / (high - low) * 255)) <= 1


def test_fixed_value_range_and_constant_image():
    image = np.array([[0, 1000, 2000, 4000]], np.uint16)
    np.testing.assert_array_equal(to_rgb8(image, value_range=(0, 2000))[0, :, 0], [0, 128, 255, 255])
    assert to_rgb8(np.full((3, 3), 7.5)).max() == 0


def test_bool_image():
    out = to_rgb8(np.eye(3, dtype=bool))
    np.testing.assert_array_equal(out[..., 1], np.eye(3) * 255)


@pytest.mark.parametrize("dtype, offset", [(np.uint32, 2**28), (np.int64, 2**40), (np.float64, 1e9)])
def test_a_large_offset_keeps_the_contrast(real_data, dtype, offset):
    import tifffile

    image = tifffile.imread(real_data / "nuclei" / "stardist" / "img2d.tif")  # uint16, values 0..235
    shifted = image.astype(dtype) + dtype(offset)
    np.testing.assert_array_equal(to_rgb8(shifted), to_rgb8(image))


def test_a_session_on_an_offset_image_finds_the_same_objects(real_data):
    import tifffile
    from scipy import ndimage

    from samkit.engine import Session

    image = tifffile.imread(real_data / "nuclei" / "stardist" / "img2d.tif")
    truth = tifffile.imread(real_data / "nuclei" / "stardist" / "mask2d.tif")
    plain = Session(image, "classical")
    shifted = Session(image.astype(np.int64) + 2**40, "classical")
    boxes = ndimage.find_objects(truth)
    for i in np.unique(truth)[1:6]:
        depth = ndimage.distance_transform_edt(truth[boxes[i - 1]] == i)
        y, x = np.unravel_index(np.argmax(depth), depth.shape)
        point = [[boxes[i - 1][0].start + y, boxes[i - 1][1].start + x]]
        expected, found = plain.segment(points=point, labels=[1]), shifted.segment(points=point, labels=[1])
        assert expected.area > 0 and found.bbox == expected.bbox and np.array_equal(found.crop, expected.crop)
