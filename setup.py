"""Install minidet: `pip install -e ".[test]"` for development, `pip install .` to use it."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="minidet",
    version="0.1.0",
    description="One-shot object detection (YOLO v1) from scratch in NumPy and CUDA, with every backward pass written out.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # `kernels/` (the CUDA twins of the hot paths) is a top-level package beside minidet,
    # so it is importable from an installed and from an editable minidet alike.
    packages=find_packages(include=["minidet", "minidet.*", "kernels", "kernels.*"]),
    install_requires=[
        "numpy>=1.24",
        "numba>=0.59",
        "numba-cuda>=0.4",
        "pillow>=10",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "pyyaml>=5.1",  # data.yaml of YOLO-layout datasets
    ],
    extras_require={
        "gpu": ["cupy-cuda12x>=13", "numba-cuda[cu12]>=0.4"],
        "notebooks": ["jupyter", "ipykernel"],
        "test": ["pytest>=7", "nbclient>=0.7", "nbformat>=5", "ipykernel>=6"],
    },
    entry_points={"console_scripts": ["minidet = minidet.cli:main"]},
)
