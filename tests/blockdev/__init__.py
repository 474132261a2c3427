"""A libvirt domain with disks and a NIC: the block queries against QEMU 7.2."""
