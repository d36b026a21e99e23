"""Sweeps past one machine: GridSearchCV over fastmlp's estimator on a Dask cluster, through
joblib's dask backend (the `dist` extra). A real dask.distributed.LocalCluster with 2 worker
processes stands in for the machines."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
distributed = pytest.importorskip("distributed")

from joblib import parallel_config  # noqa: E402  (after the importorskips)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from fastmlp.datasets import digits_train_test  # noqa: E402
from fastmlp.sklearn import MLPClassifier  # noqa: E402


def _search(n_jobs):
    estimator = MLPClassifier((16,), activation="tanh", max_iter=4, random_state=0)
    grid = {"learning_rate_init": [0.005, 0.02], "alpha": [0.0, 1e-3]}
    return GridSearchCV(estimator, grid, cv=3, n_jobs=n_jobs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")  # distributed's port / memory notices
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_grid_search_runs_on_a_dask_cluster_and_matches_the_serial_search():
    X, y, X_test, y_test = digits_train_test()
    serial = _search(n_jobs=1).fit(X, y)  # also compiles the kernels into the on-disk cache
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        search = _search(n_jobs=-1)
        with parallel_config(backend="dask"), distributed.get_task_stream(client) as stream:
            search.fit(X, y)
        # the fits ran as tasks in both workers' processes
        workers = {task["worker"] for task in stream.data}
        assert len(stream.data) >= 12 and len(workers) == 2, (len(stream.data), workers)
    # the same 12 fits (4 settings x 3 folds), the same models: the same scores
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )
    assert search.best_params_ == serial.best_params_
    assert search.score(X_test, y_test) > 0.9
    assert ConvergenceWarning  # the filter above names it
