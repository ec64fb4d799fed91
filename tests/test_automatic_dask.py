"""segment_all on a 2-worker Dask LocalCluster (processes, loopback): same result as one process, workers may die."""

import os
import signal
import sys

import numpy as np
import pytest

import samkit
from samkit.automatic import distributed, embed, segment_all, segment_all_many
from samkit.cli import main
from samkit.errors import AutosaveError
from samkit.metrics import evaluate
from samkit.testing import OracleModel, mosaic

from test_session import dsb_pairs

dask = pytest.importorskip("dask")
pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import this test module

# 256 px windows: a 1024 px scene has 25 windows for two workers to share; a prompt every 2 px so that the result is
# every nucleus, exactly (the defaults are tested in test_defaults.py)
OPTIONS = dict(tile_size=256, halo=8, points_per_side=128)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
        with Client(cluster) as client:
            yield client
        cluster.close()


@pytest.fixture(scope="module")
def scene(real_data):
    return mosaic(dsb_pairs(real_data), (1024, 1024))


def test_two_workers_give_the_single_process_result(client, scene):
    image, truth = scene
    alone = segment_all(image, OracleModel(truth), **OPTIONS)
    seen = []
    spread = segment_all(image, OracleModel(truth), client=client, progress=lambda d, n, eta: seen.append((d, n)), **OPTIONS)
    np.testing.assert_array_equal(np.asarray(spread), np.asarray(alone))
    assert evaluate(truth, spread).ap.tolist() == [1.0, 1.0, 1.0]
    assert seen[-1] == (25, 25) and [d for d, _ in seen] == list(range(1, 26))
    ran = client.run(distributed.loaded_models)  # each worker built the model once, for all its windows
    assert len(ran) == 2 and set(ran.values()) == {1}


def test_a_worker_killed_mid_run_is_replaced_without_duplicates(client, scene):
    image, truth = scene
    alone = segment_all(image, OracleModel(truth), **OPTIONS)
    pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one(done, total, eta):
        if done == 4 and not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    slow = OracleModel(truth, delay=0.3)  # windows in flight when the worker dies
    spread = segment_all(image, slow, client=client, progress=kill_one, **OPTIONS)
    assert killed
    np.testing.assert_array_equal(np.asarray(spread), np.asarray(alone))
    assert len(spread.objects) == len(np.unique(truth)) - 1


class DeadlyOracle(OracleModel):
    """Kills its process when it embeds the first window, every time."""

    def label_window(self, pixels, window):
        if window[:2] == (0, 0):
            os._exit(1)
        return super().label_window(pixels, window)


def test_a_window_that_always_kills_its_worker_is_a_clear_error(client, scene, tmp_path):
    image, truth = scene
    out = tmp_path / "labels"
    with pytest.raises(samkit.errors.WorkerLostError, match="died on the same window"):
        segment_all(image[:512, :512], DeadlyOracle(truth[:512, :512]), client=client, out=out, **OPTIONS)
    with pytest.raises(AutosaveError, match="no saved label image"):
        samkit.LabelImage.open(out)
    client.wait_for_workers(2, timeout=60)


def test_many_images_and_shared_embedding_store(client, scene, tmp_path):
    import tifffile

    image, truth = scene
    paths = [tmp_path / "left.tif", tmp_path / "right.tif"]
    tifffile.imwrite(paths[0], image[:400, :500])
    tifffile.imwrite(paths[1], image[500:900, 300:1000])
    cache = tmp_path / "embeddings"
    assert embed(paths[1], "classical", cache=cache, tile_size=256, halo=16, client=client) == 6
    assert samkit.Session(paths[1], "classical", tile_size=256, halo=16, cache=cache).embedded().all()  # the workers' store

    options = dict(tile_size=256, halo=16, points_per_side=64)  # several windows per image for the workers to share
    spread = segment_all_many(paths, "classical", client=client, out=tmp_path / "labels", cache=cache, **options)
    assert [s.path.name for s in spread] == ["left", "right"]
    for path, labels in zip(paths, spread):
        alone = segment_all(path, "classical", **options)
        assert len(alone.objects) > 20
        np.testing.assert_array_equal(np.asarray(labels), np.asarray(alone))

    out = tmp_path / "cli.tif"
    address = client.scheduler.address
    assert main(["segment", str(paths[0]), "-o", str(out), "--model", "classical", "--tile-size", "256", "--halo", "16",
                 "--points-per-side", "64", "--scheduler", address, "--no-progress"]) == 0  # fmt: skip
    np.testing.assert_array_equal(tifffile.imread(out), np.asarray(spread[0]))
