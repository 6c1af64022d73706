"""Builds the C kernels (fastcoder.kernels._qmatmul) with cffi; metadata lives in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["fastcoder/kernels/build_cffi.py:ffibuilder"])
