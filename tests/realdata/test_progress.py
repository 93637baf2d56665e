"""Progress while a collection is read and featurised: shown when asked (on a terminal by
default), silent with --no-progress."""
from __future__ import annotations

from pathlib import Path

import pytest

from grdr import realdata
from grdr.realdata._stream import SHOW_PROGRESS
from grdr.realdata.protocol import RealSpec, prepare

FIXTURES = Path(realdata.__file__).parent / "fixtures"


@pytest.mark.parametrize("show", [True, False])
def test_reading_and_featurising_show_progress_unless_silenced(capfd, show):
    prepare.cache_clear()
    token = SHOW_PROGRESS.set(show)
    try:
        prepare(RealSpec(format="beir", path=str(FIXTURES / "limit-small"), feature_dim=64))
    finally:
        SHOW_PROGRESS.reset(token)
        prepare.cache_clear()
    err = capfd.readouterr().err
    stages = ("counting documents", "reading corpus.jsonl", "fitting TF-IDF", "featurising")
    if show:
        for stage in stages:
            assert stage in err, (stage, err[-500:])
    else:
        assert not any(stage in err for stage in stages), err[-500:]
