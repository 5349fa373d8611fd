"""Install lrfr: ``pip install -e .`` (add ``[demo]`` for the embedded demo faces, ``[tests]`` for pytest,
``[deploy]`` for ONNX export and faiss search); installs the ``lrfr-identify`` command."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(HERE, 'lrfr', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


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
    install_requires=read_requirements('runtime'),
    extras_require=dict(demo=read_requirements('demo'), tests=read_requirements('tests'),
                        deploy=read_requirements('deploy')),
    entry_points=dict(console_scripts=['lrfr-identify = lrfr.apis.identify:main']),
    zip_safe=False,
)
