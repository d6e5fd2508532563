"""Network architectures shared unchanged by every objective (see `models.factory`)."""
from models import conv  # noqa: F401, E402  (registers the "dcgan" and "weaker" architectures)
from models.factory import ARCHITECTURES, ArchConfig, NetFactory, register_architecture

__all__ = ["ARCHITECTURES", "ArchConfig", "NetFactory", "register_architecture"]
