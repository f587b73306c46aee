"""Map the layer folders at the repository root (DESIGN.md) onto plait.* subpackages."""

from setuptools import find_packages, setup

LAYERS = {"ir": "plait.ir", "planner": "plait.planner", "codegen": "plait.codegen",
          "scheduler": "plait.scheduler", "cluster": "plait.cluster"}

packages = find_packages(include=["plait", "plait.*"])
package_dir = {"plait": "plait"}
for folder, name in LAYERS.items():
    package_dir[name] = folder
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
