"""Past one device: a tensor-parallel group over torch.distributed (launch, join, gather) and the
sharding of a decoder between its ranks.  Imports ``models`` and below; the model, never the driver."""
