"""Fixtures of the deployment tests: the embedded demo faces, built once per session."""
import os.path as osp

import pytest


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """A built demo tree (TinyFace layout) in a temporary folder."""
    from lrfr.datasets.converters.demo import ensure_demo
    return ensure_demo(str(tmp_path_factory.mktemp('deploy_demo') / 'demo_tinyface'))


@pytest.fixture(scope='session')
def probe_files(demo_root):
    """Twelve real demo probe faces (native LR, various sizes)."""
    import os
    folder = osp.join(demo_root, 'Testing_Set', 'Probe')
    return [osp.join(folder, name) for name in sorted(os.listdir(folder))[:12]]
