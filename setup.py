"""Install lrfr: ``pip install -e .`` (add ``[demo]`` for the embedded demo faces, ``[tests]`` for pytest,
``[deploy]`` for ONNX export and faiss search, ``[tensorboard]`` for TensorBoard logging); installs the
``lrfr-identify`` command.

The configs ship inside the package as ``lrfr/.mim/configs`` (mmengine resolves ``_base_ = 'lrfr::...'`` there,
as for mmpretrain): in the checkout that folder is a link to ``configs/``, so an editable install reads the
checkout's configs, and a built wheel or sdist gets a copy through ``package_data``.
"""
import os
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(HERE, 'lrfr', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def mim_files() -> list:
    """Package data under ``lrfr/.mim``: the model index and every config (followed through the link)."""
    files = ['.mim/model-index.yml']
    root = osp.join(HERE, 'lrfr')
    for folder, _, names in os.walk(osp.join(root, '.mim', 'configs'), followlinks=True):
        files += [osp.relpath(osp.join(folder, n), root) for n in sorted(names) if n.endswith('.py')]
    return files


def read_requirements(name: str) -> list:
    path = osp.join(HERE, 'requirements', f'{name}.txt')
    with open(path, encoding='utf-8') as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='lrfr',
    version=read_version(),
    description='Low-resolution face recognition toolbox (TinyFace, SR heads, CSRI) on OpenMMLab',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    include_package_data=True,
    package_data={'lrfr': mim_files()},
    install_requires=read_requirements('runtime'),
    extras_require=dict(demo=read_requirements('demo'), tests=read_requirements('tests'),
                        tensorboard=read_requirements('tensorboard'), deploy=read_requirements('deploy')),
    entry_points=dict(console_scripts=['lrfr-identify = lrfr.apis.identify:main']),
    zip_safe=False,
)
