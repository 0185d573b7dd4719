"""The machine the portal runs on: capacity, slot pools, memory, serving, logging."""
