"""Grid search scaled out on a Dask cluster through joblib's dask backend
(the ``distributed`` extra): the same results as in one process.

The cluster is real: a ``LocalCluster`` of two worker processes, started
once for the module. Worker processes are spawned and inherit ``sys.path``,
so they import skrcnn from wherever this process does; everything sent to
them is skrcnn objects, NumPy arrays and tuples.
"""

import logging

import joblib
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from scenes import colour_scenes
from test_workflow import MODELS, SEARCHES, assert_same_search, grid

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.filterwarnings(
        "ignore::sklearn.exceptions.ConvergenceWarning"),
]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def data():
    return colour_scenes(18)


def _search(model, X, y, **kwargs):
    return GridSearchCV(clone(model), grid(model), error_score="raise",
                        **kwargs).fit(X, y)


@pytest.mark.parametrize("search", sorted(SEARCHES))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_grid_search_on_a_dask_cluster_equals_one_process(client, data,
                                                          model, search):
    X, y = data
    model = MODELS[model]()
    kwargs = SEARCHES[search]
    local = _search(model, X, y, n_jobs=1, **kwargs)
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_backend("dask"):
            on_cluster = _search(model, X, y, **kwargs)
    # The fits really ran on the cluster's workers.
    workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2
    assert tasks.data and {task["worker"] for task in tasks.data} <= workers
    assert_same_search(local, on_cluster, X)
