"""ament_python package anytouch_ros: ROS 2 nodes (anytouch_ros) over a ROS-free core (anytouch_policy)."""

from glob import glob

from setuptools import find_packages, setup

package_name = "anytouch_ros"
# One console script per node module, so `ros2 run anytouch_ros <node>` works for every node that exists.
nodes = sorted(path.rsplit("/", 1)[-1][: -len(".py")] for path in glob(f"{package_name}/*_node.py"))

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["anytouch_ros", "anytouch_ros.*", "anytouch_policy", "anytouch_policy.*"]),
    package_data={"anytouch_policy.model": ["presets/*.json"], "anytouch_policy.pretrain": ["clip-tiny.json"],
                  "anytouch_policy.sim": ["sensor_models/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", glob("config/*.yaml") + glob("config/*.json")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="anytouch_ros developers",
    maintainer_email="dev@anytouch-ros.local",
    description="Tactile-only pouring with AnyTouch on an xArm 6 + Robotiq 2F-140: nodes, encoder, policy, sim rig.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "anytouch = anytouch_policy.cli.main:main",
            *[f"{node} = {package_name}.{node}:main" for node in nodes],
        ],
    },
)
