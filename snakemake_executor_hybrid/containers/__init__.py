"""Rules with a ``container:`` image, run through podman, docker or apptainer."""
