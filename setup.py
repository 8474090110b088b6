"""Build and install sgpy, compiling its cffi extension ``sgpy._sgffi``."""

from setuptools import find_packages, setup

setup(
    name="sgpy",
    version="0.1.0",
    description="Send SCSI commands to Linux devices through the SCSI generic (sg) driver",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    python_requires=">=3.9",
    packages=find_packages(include=["sgpy", "sgpy.*"]),
    package_data={"sgpy": ["py.typed", "_sg.h", "_sg.c", "sandbox/*.c"]},
    setup_requires=["cffi>=1.15"],
    cffi_modules=["sgpy/_sg_build.py:ffibuilder"],
    install_requires=["cffi>=1.15", "attrs>=22.2"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "pytest-asyncio>=0.21"],
        "docs": ["sphinx>=5"],
    },
    entry_points={
        "pytest11": ["sgpy = sgpy.pytest_plugin"],
        "console_scripts": ["sgpy = sgpy.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Hardware",
        "Typing :: Typed",
    ],
    zip_safe=False,
)
