"""QEMU's vCPU dirty page rate limit: quota table and throttle thread (``service``), the
throttle controllers to choose from (``controllers``) and QEMU's own arithmetic
(``adjust``)."""
