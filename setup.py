"""Build and install sgpy, compiling its cffi extension ``sgpy._sgffi``.

The iSCSI extension ``sgpy._iscsiffi`` (over libiscsi) is built only where
libiscsi's header ``<iscsi/iscsi.h>`` is installed (Debian: libiscsi-dev),
so sgpy installs without it; ``sgpy.iscsi`` then says what is missing.
"""

import os

from setuptools import find_packages, setup

CFFI_MODULES = ["sgpy/_sg_build.py:ffibuilder"]
if any(os.path.exists(os.path.join(d, "iscsi", "iscsi.h")) for d in ("/usr/include", "/usr/local/include")):
    CFFI_MODULES.append("sgpy/_iscsi_build.py:ffibuilder")

setup(
    name="sgpy",
    version="0.1.0",
    description="Send SCSI commands to Linux devices through the SCSI generic (sg) driver",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    python_requires=">=3.9",
    packages=find_packages(include=["sgpy", "sgpy.*"]),
    package_data={"sgpy": ["py.typed", "_sg.h", "_sg.c", "_iscsi.h", "_iscsi.c", "sandbox/*.c"]},
    setup_requires=["cffi>=1.15"],
    cffi_modules=CFFI_MODULES,
    install_requires=["cffi>=1.15", "attrs>=22.2"],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "pytest-asyncio>=0.21", "mypy>=1.0"],
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
