"""tools/test.py's output requests: the plot title names the config and the checkpoint with its run folder."""
import importlib.util
import os.path as osp
import sys

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _test_tool():
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        spec = importlib.util.spec_from_file_location('lrfr_test_tool', osp.join(REPO, 'tools', 'test.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(osp.join(REPO, 'tools'))
    return module


def test_plot_title_and_metric_options(tmp_path):
    tool = _test_tool()
    assert tool.plot_title('configs/demo/csri.py', 'work_dirs/csri/final.pth') == 'csri.py | csri/final.pth'
    assert tool.plot_title('lrfr::demo/a.py', None) == 'a.py | random-init'
    cfg = Config(dict(test_evaluator=[dict(type='IdentificationMetric'), dict(type='VerificationMetric')]))
    tool.request_outputs(cfg, None, str(tmp_path), None, 'a.py | r/final.pth')
    assert cfg.test_evaluator[0]['plot_title'] == 'a.py | r/final.pth'
    assert cfg.test_evaluator[0]['plot_dir'] == str(tmp_path) and 'plot_title' not in cfg.test_evaluator[1]
