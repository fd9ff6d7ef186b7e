"""Installer for the MME (Masked Motion Encoding) plugin for MMAction2."""
from setuptools import find_packages, setup


def read_version() -> str:
    """Read ``__version__`` from ``mme_plugin/version.py`` without importing it."""
    scope: dict = {}
    with open('mme_plugin/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mme_plugin',
    version=read_version(),
    description='Masked Motion Encoding (MME, CVPR 2023) as an MMAction2 / '
    'MMEngine registry plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mme_plugin', 'mme_plugin.*']),
    python_requires='>=3.8',
    # No hard torch pin: users on GPUs bring their own CUDA build.
    install_requires=[
        'torch>=1.13',
        'mmengine>=0.10,<0.11',
        'mmcv-lite>=2.0.0rc4,<2.2.0',
        'mmaction2>=1.2.0,<1.3',
        'einops',
        'numpy<2',
        'opencv-python',
        'av',
    ],
    extras_require={'decord': ['decord'], 'tests': ['pytest', 'pytest-timeout']},
    license='Apache-2.0',
)
