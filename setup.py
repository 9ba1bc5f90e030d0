"""Packaging for tlgen."""

import re

from setuptools import find_packages, setup

with open("tlgen/__init__.py") as f:
    version = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

JAX = ">=0.10,<0.13"

with open("README.md") as f:
    long_description = f.read()

setup(
    name="tlgen",
    version=version,
    description="Time-lapse video generation in JAX/Flax: timescale autoencoder, "
                "flow-based animation, long-video GANs.",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["tlgen", "tlgen.*"]),   # tlgen.configs too (configs/ links to it)
    install_requires=[
        f"jax{JAX}",
        "flax>=0.12,<0.13",
        "optax>=0.2.5,<0.3",
        "orbax-checkpoint>=0.12,<0.13",
        "grain>=0.2.18,<0.3",
        "tensorflow-datasets>=4.9.9,<5",
        "array-record>=0.8,<0.9",
        "importlib_resources>=6",   # tensorflow-datasets imports it (declaring it for Python < 3.9)
        "einops>=0.8,<0.9",
        "ml-collections>=1.1,<2",
        "numpy>=2.0,<3",
        "imageio>=2.37,<3",
        "imageio-ffmpeg>=0.6,<1",
        "opencv-python-headless>=4.10",
        "pillow>=10",
        "scipy>=1.13",
        "matplotlib>=3.8",
        "tensorboardX>=2.6,<3",
        "tqdm>=4.66",
        "safetensors>=0.4",
        "filelock>=3.12",      # JAX's compilation cache evicts under a file lock
    ],
    extras_require={   # the JAX build for an accelerator, in tlgen's range of versions
        "cuda12": [f"jax[cuda12]{JAX}"],
        "cuda13": [f"jax[cuda13]{JAX}"],
        "tpu": [f"jax[tpu]{JAX}"],
        "test": ["pytest>=8", "pytest-xdist>=3.8", "nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["tlgen=tlgen.cli.main:entry"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
