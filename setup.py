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
        # Choose by the CUDA version the driver supports (nvidia-smi's "CUDA Version", or
        # `minidet doctor`): 12.x -> gpu-cuda12, 13.x -> gpu-cuda13. "gpu" is gpu-cuda12.
        "gpu": ["cupy-cuda12x>=13", "numba-cuda[cu12]>=0.4"],
        "gpu-cuda12": ["cupy-cuda12x>=13", "numba-cuda[cu12]>=0.4"],
        "gpu-cuda13": ["cupy-cuda13x>=13.6", "numba-cuda[cu13]>=0.30"],
        "notebooks": ["jupyter", "ipykernel"],
        # The CUDA 13 compilers, for tests/test_kernels_sass.py (kernels to SASS, no GPU needed):
        # NVVM and NVRTC for Numba's PTX, ptxas, and cuobjdump with the nvdisasm it runs.
        "test": ["pytest>=7", "nbclient>=0.7", "nbformat>=5", "ipykernel>=6", "nbconvert>=7",
                 "nvidia-cuda-nvcc==13.*", "nvidia-nvvm==13.*", "nvidia-cuda-nvrtc==13.*",
                 "nvidia-cuda-cuobjdump==13.*", "nvidia-cuda-nvdisasm==13.*"],
        # Test-only: the parity test of the optimizer against torch.optim.SGD (CI installs it).
        "reference": ["torch==2.13.0"],
        "book": ["nbclient>=0.7", "nbformat>=5", "ipykernel>=6", "nbconvert>=7"],  # python -m minidet.course build
    },
    package_data={"minidet.course": ["*.json"]},  # the measured exercise record (variants.RECORD)
    entry_points={"console_scripts": ["minidet = minidet.cli:main"]},
)
