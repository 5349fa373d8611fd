"""CMC / PR plots end at the gallery size (the official mode's 1,000-rank cut-off only matters for galleries
larger than that), and the identification metric puts its ``plot_title`` (config and checkpoint) in titles."""
import numpy as np
import pytest

import lrfr.evaluation.reporting as reporting
from lrfr.evaluation.functional import evaluate_identification
from lrfr.structures import DISTRACTOR_LABEL


@pytest.fixture
def drawn(monkeypatch):
    """Each saved figure's title and curves (x, y) as drawn, then saved as usual."""
    figures = []
    save = reporting._save

    def record(plt, fig, path):
        ax = fig.axes[0]
        figures.append(dict(title=ax.get_title(), xlim=ax.get_xlim(),
                            lines=[(line.get_xdata(), line.get_ydata()) for line in ax.lines]))
        return save(plt, fig, path)

    monkeypatch.setattr(reporting, '_save', record)
    return figures


def _result(num_gallery=30, ap_mode='official'):
    rng = np.random.default_rng(0)
    labels = np.concatenate([np.arange(5), np.full(num_gallery - 5, DISTRACTOR_LABEL)])
    return evaluate_identification(rng.normal(size=(5, 4)), np.arange(5), rng.normal(size=(num_gallery, 4)),
                                   labels, ap_mode=ap_mode)


def test_pr_curve_stops_at_the_gallery_size(tmp_path, drawn):
    res = _result(30)
    assert res['max_rank'] == 1000 and res['num_gallery'] == 30  # official mode: cut-off past the gallery
    reporting.plot_pr(res, str(tmp_path / 'pr.png'))
    recall, precision = drawn[-1]['lines'][0]
    assert len(recall) == 30
    # at the last rank every true match is retrieved: recall 100 %, precision = 1 match / 30 items
    assert recall[-1] == pytest.approx(100) and precision[-1] == pytest.approx(100 / 30)
    reporting.plot_pr(res, str(tmp_path / 'pr10.png'), max_rank=10)
    assert len(drawn[-1]['lines'][0][0]) == 10


def test_cmc_stops_at_the_gallery_size(tmp_path, drawn):
    reporting.plot_cmc(_result(30), str(tmp_path / 'cmc.png'))
    ranks, _ = drawn[-1]['lines'][0]
    assert list(ranks) == list(range(1, 31)) and drawn[-1]['xlim'] == (1, 30)
    reporting.plot_cmc(_result(80), str(tmp_path / 'cmc80.png'))
    assert len(drawn[-1]['lines'][0][0]) == 50 and drawn[-1]['xlim'] == (1, 50)


def test_metric_plot_titles_name_what_was_evaluated(tmp_path, drawn):
    import torch
    from mmengine.structures import BaseDataElement

    from lrfr.evaluation.metrics import IdentificationMetric
    metric = IdentificationMetric(plot_dir=str(tmp_path), plot_title='my_config.py | final.pth')
    rng = np.random.default_rng(1)
    samples = []
    for i, (label, subset) in enumerate([(1, 'probe'), (2, 'probe'), (1, 'gallery'), (2, 'gallery'),
                                         (DISTRACTOR_LABEL, 'gallery')]):
        sample = BaseDataElement(metainfo=dict(subset=subset, sample_idx=i, img_path=f'{i}.jpg'),
                                 embedding=torch.tensor(rng.normal(size=4), dtype=torch.float32),
                                 gt_label=torch.tensor([label]))
        samples.append(sample.to_dict())
    metric.process({}, samples)
    metric.compute_metrics(metric.results)
    assert [f['title'] for f in drawn] == ['CMC\nmy_config.py | final.pth',
                                           'Precision-Recall\nmy_config.py | final.pth']
