"""The recorded libvirt 9.0 exchanges with QEMU 7.2 (../shared/anchors/libvirt-9.0),
replayed against qmpdl reply by reply."""
