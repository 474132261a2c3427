"""QEMU's vCPU dirty page rate limit: quota table, controller and throttle thread."""
