"""vCPU backends: where the vCPUs run and how their dirty pages are tracked."""
