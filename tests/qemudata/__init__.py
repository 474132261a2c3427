"""The recorded QEMU answers (qmpdl.qemudata) and the commands built on them."""
