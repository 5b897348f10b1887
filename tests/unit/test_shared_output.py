import os
import threading
import time

import pytest

from mindcode.errors import MindcodeError
from mindcode.train.shared_output import STALE_S, check_shared_output


def test_rank_0_stops_with_one_line_when_it_cannot_see_the_other_ranks(tmp_path):
    with pytest.raises(MindcodeError, match=r"does not see the output of ranks 1, 2 after 0 s: training.output_dir "
                                            r"must be on a filesystem every node shares"):
        check_shared_output(tmp_path, 0, 3, timeout=0.3)


def test_markers_written_by_the_other_ranks_while_rank_0_waits_are_seen(tmp_path):
    other = threading.Timer(0.3, check_shared_output, args=(tmp_path, 1, 2))
    other.start()
    check_shared_output(tmp_path, 0, 2, timeout=10)
    other.join()
    assert sorted(p.name for p in (tmp_path / ".ranks").iterdir()) == ["rank_0", "rank_1"]


def test_a_previous_runs_marker_does_not_count(tmp_path):
    check_shared_output(tmp_path, 1, 2)
    old = time.time() - STALE_S - 60
    os.utime(tmp_path / ".ranks" / "rank_1", (old, old))
    with pytest.raises(MindcodeError, match="rank 1 after"):
        check_shared_output(tmp_path, 0, 2, timeout=0.3)
