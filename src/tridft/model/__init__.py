# Register the extra head kinds (dipole, generic scalars/vectors/tensors) in HEAD_TYPES,
# so that build_head -- and so load_model -- knows them wherever a model is rebuilt.
from tridft.model import extra_heads  # noqa: F401
