"""Tools around qmpdl: talking raw QMP to any endpoint, starting real QEMU as an oracle."""
