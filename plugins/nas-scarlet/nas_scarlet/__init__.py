"""ScarletNAS for nas_core: learnable equivariant stabilizer, ScarletNAS space, SCARLET-A/B/C."""

from nas_scarlet.les import LearnableSkip, attach_les, drop_les, fold_les
from nas_scarlet.space import PUBLISHED, REPORTED, ScarletSpace, scarlet_space

__all__ = ["PUBLISHED", "REPORTED", "LearnableSkip", "ScarletSpace", "attach_les", "drop_les", "fold_les", "scarlet_space"]
