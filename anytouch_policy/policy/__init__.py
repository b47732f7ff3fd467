"""The pouring policy: bundle schema (config), the head and its decisions (head), bundles on disk (bundle), and the
runtime the ROS nodes and the sim evaluation load (runtime). Import from the submodules: nothing is re-exported,
so reading a bundle's config does not build the runtime."""
